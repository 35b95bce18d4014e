"""Make adapter-siemens-texture-small the Siemens adapter (`--adapter Siemens`, and what a Siemens study gets) and
move the previous one, adapter-siemens-small, to the research registry.

    python scripts/recipes/register_adapter_siemens_texture.py
    # after: research/recipes/adapter_siemens_texture.sh (the teacher, registered in the research registry as
    #        adapter-siemens-texture) and
    #        TEACHER=adapter-siemens-texture OUT=runs/adapter_siemens_texture_small/adapter_siemens_texture_small.safetensors \
    #          scripts/recipes/distill_adapter_siemens.sh

Chosen by scripts/choice_cv.py (leave-one-subject-out over the Siemens dev subjects) and by the vendor classifiers
of research/analyses/vendor_check.py (docs/models.md, 'adapter-siemens-texture-small').
"""
from __future__ import annotations

import subprocess

from register_default_segmenter import RESEARCH_REGISTRY, ROOT, UNETGAN, move_to_research

NAME, PREVIOUS = "adapter-siemens-texture-small", "adapter-siemens-small"
STUDENT = "runs/adapter_siemens_texture_small/adapter_siemens_texture_small.safetensors"
DISTILL = ("TEACHER=adapter-siemens-texture OUT=" + STUDENT + " scripts/recipes/distill_adapter_siemens.sh "
           "(= OMP_NUM_THREADS=1 unetgan distill-adapter --teacher adapter-siemens-texture --manifest "
           "../shared/data/manifest.csv --source-split train_labelled --target-vendor Siemens --target-split "
           "train_unlabelled -o " + STUDENT + " --filters 8 --blocks 4 --edge-kernel 3 --steps 2000 --seed 0)")

if __name__ == "__main__":
    subprocess.run([UNETGAN, "register", STUDENT, "--first", "--name", NAME, "--kind", "adapter",
                    "--source-vendor", "Philips", "--target-vendor", "Siemens", "--made-by", DISTILL,
                    "--description", "Siemens -> Philips: histogram matching, then a generator that also gives the "
                    "images Philips texture (8 filters, 4 blocks, 3x3 first and last convolutions, distilled from "
                    "adapter-siemens-texture); its images are segmented by lvunet-sick-hearts"],
                   check=True, cwd=ROOT)
    move_to_research(PREVIOUS, "Previous Siemens adapter (research): ")
    print(f"{NAME} is the Siemens adapter; {PREVIOUS} moved to {RESEARCH_REGISTRY.relative_to(ROOT)}")
