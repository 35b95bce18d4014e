"""Make lvunet-soup the default segmenter and pair the shipped adapters with it (session 8, issues #12 and #17).

    python scripts/register_lvunet_soup.py      # after scripts/make_lvunet_soup.sh

Registers runs/lvunet_soup.safetensors first among the segmenters, then, for every adapter that was trained
against lvunet-robust and that the product or docs/results.md uses, writes a copy whose translations
lvunet-soup segments (`unetgan pair-adapter`: the same generator weights, the old pairing kept on record) and
registers it under the same name, so every default and every results column keeps its place. Then
`python Testing/test_slicer_files.py --write` and `python scripts/models_table.py`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "UnetGANSlicer"))

from unetgan.weights import sha256_of  # noqa: E402

UNETGAN = str(ROOT / ".venv" / "bin" / "unetgan")
REGISTRY = ROOT / "UnetGANSlicer" / "Resources" / "Models" / "models.json"
SOUP = "runs/lvunet_soup.safetensors"
INGREDIENTS = ("runs/unet_tta_distilled_generic/last.safetensors", "runs/unet_tta_distilled_gentle/last.safetensors",
               "runs/unet_robust_averaged/average.safetensors")
ADAPTERS = ("adapter-siemens-small", "adapter-siemens", "adapter-ge", "adapter-ge-without-SCD0000101",
            "adapter-ge-without-SCD0000201", "adapter-ge-without-SCD0000301", "adapter-siemens-no-feature-loss",
            "adapter-siemens-l1-cycle")


def run(*command: str) -> None:
    subprocess.run(command, check=True, cwd=ROOT)


def main() -> int:
    run(UNETGAN, "register", SOUP, "--first", "--name", "lvunet-soup", "--kind", "segmenter", "--source-vendor",
        "Philips", "--made-by",
        "scripts/make_lvunet_soup.sh (= python scripts/soup_lvunet.py " + " ".join(INGREDIENTS) + f" -o {SOUP}: "
        "the uniform weight average of three continuations of lvunet-robust, made by VARIANT=generic "
        "scripts/train_tta_distilled_unet.sh, VARIANT=gentle scripts/train_tta_distilled_unet.sh and "
        "scripts/train_robust_unet_averaged.sh --epochs 5 after scripts/train_robust_unet_continued.sh; "
        "ingredient SHA256 " + ", ".join(sha256_of(ROOT / path) for path in INGREDIENTS) + ")",
        "--description", "Soup LV-Unet: the weight average of three continuations of lvunet-robust (two taught its "
        "four-flip output, one weight-averaged); in one pass as good as lvunet-robust with four flips")
    entries = {m["name"]: m for m in json.loads(REGISTRY.read_text())["models"]}
    for name in ADAPTERS:
        entry = entries[name]
        out = f"runs/paired/{entry['file']}"
        run(UNETGAN, "pair-adapter", name, "--segmenter", "lvunet-soup", "-o", out)
        vendors = [a for flag, key in (("--source-vendor", "source_vendor"), ("--target-vendor", "target_vendor"))
                   if entry.get(key) for a in (flag, entry[key])]
        run(UNETGAN, "register", out, "--name", name, "--kind", "adapter", *vendors, "--made-by",
            f"unetgan pair-adapter {name} --segmenter lvunet-soup -o {out} (scripts/register_lvunet_soup.py: the "
            f"same weights, segmented by lvunet-soup) of the file made by: {entry['command']}",
            "--description", entry["description"].replace("segmenter lvunet-robust", "trained against lvunet-robust")
            + "; segmenter lvunet-soup (paired in session 8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
