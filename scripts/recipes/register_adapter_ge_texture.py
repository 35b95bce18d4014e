"""Make adapter-ge-texture-small the GE adapter (`--adapter GE`, and what a GE study gets) and move the previous
one, adapter-ge (the identity: histogram matching only), to the research registry.

    python scripts/recipes/register_adapter_ge_texture.py
    # after: research/recipes/adapter_ge_texture.sh adapter_ge_texture [train|distill|register], which trains the
    #        teacher (adapter-ge-texture) and its student and registers both in the research registry; the student
    #        leaves the research registry for the product's (its file and SHA256 unchanged)

Chosen by scripts/choice_cv.py (each GE patient scored by the same recipe's student trained without that patient's
images, adapter-ge-texture-small-without-<patient>) and by the vendor classifiers of research/analyses/vendor_check.py
(docs/models.md, 'adapter-ge-texture-small').
"""
from __future__ import annotations

import subprocess

from register_default_segmenter import RESEARCH_REGISTRY, ROOT, UNETGAN, move_to_research, take_out

NAME, PREVIOUS = "adapter-ge-texture-small", "adapter-ge"

if __name__ == "__main__":
    student = take_out(RESEARCH_REGISTRY, NAME)
    research_file = RESEARCH_REGISTRY.parent / student["file"]
    subprocess.run([UNETGAN, "register", str(research_file), "--name", NAME, "--kind", "adapter",
                    "--source-vendor", "Philips", "--target-vendor", "GE", "--made-by", student["command"],
                    "--description", "GE -> Philips: histogram matching, then a generator that also gives the images "
                    "Philips texture (8 filters, 4 blocks, 3x3 first and last convolutions, distilled from "
                    "adapter-ge-texture); its images are segmented by lvunet-sick-hearts"],
                   check=True, cwd=ROOT)
    research_file.unlink()  # the product's registry keeps the one copy
    # after it the first GE adapter (the previous one leaves), and the vendors stay in their order: Siemens, GE
    move_to_research(PREVIOUS, "Previous GE adapter (research): ")
    print(f"{NAME} is the GE adapter; {PREVIOUS} moved to {RESEARCH_REGISTRY.relative_to(ROOT)}")
