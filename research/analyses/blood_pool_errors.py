"""Question: are the default segmenter's Philips blood-pool errors whole end slices or boundaries? Answer: docs/models.md.

Where the default segmenter's blood-pool errors lie on Philips: whole end slices (labelled where the expert
has no LV, or missed where the expert has one) against in-plane boundary errors.

    python research/analyses/blood_pool_errors.py --manifest ../shared/data/manifest.csv [--subjects validation|training] [--model M]

Voxel counts summed over the volumes, each also as a share of the expert's blood-pool voxels. The validation
subjects are the 10 the LV-Unets never trained on (their metadata's list); read their figures, never tune on them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "UnetGANSlicer"))

from unetgan.evaluate_run import predicted_volumes  # noqa: E402
from unetgan.evaluation import STRUCTURES  # noqa: E402
from unetgan.inference import pick_device  # noqa: E402
from unetgan.io.manifest import read_manifest  # noqa: E402
from unetgan.methods import make_segmenter  # noqa: E402
from unetgan.registry import load_lvunet  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--subjects", choices=["validation", "training"], default="validation")
    parser.add_argument("--model", help="an LV-Unet (registry name or .safetensors file) instead of the default one")
    args = parser.parse_args()
    validation = set(load_lvunet("lvunet-clean").metadata["validation_subjects"])
    items = [item for item in read_manifest(args.manifest, ["Philips"], ["train_labelled"], require_labels=True)
             if (item.subject in validation) == (args.subjects == "validation")]
    segmenter = make_segmenter("default", model=args.model, device=pick_device("auto"))
    blood = STRUCTURES["blood_pool"]
    counts = dict.fromkeys(("extra end slices", "missed end slices", "in-plane over", "in-plane under", "expert"), 0)
    volumes = 0
    for item in items:
        for volume, labels in predicted_volumes(segmenter, item, "mnms"):
            volumes += 1
            for predicted, expert in zip(labels == blood, volume.labels == blood):
                if not expert.any():
                    counts["extra end slices"] += int(predicted.sum())
                elif not predicted.any():
                    counts["missed end slices"] += int(expert.sum())
                else:
                    counts["in-plane over"] += int((predicted & ~expert).sum())
                    counts["in-plane under"] += int((expert & ~predicted).sum())
                counts["expert"] += int(expert.sum())
    print(f"{args.subjects} subjects, {volumes} volumes, {args.model or 'default segmenter'}, default settings:")
    for name, count in counts.items():
        print(f"  {name:18} {count:8d} voxels  {100 * count / counts['expert']:5.1f}% of the expert's blood pool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
