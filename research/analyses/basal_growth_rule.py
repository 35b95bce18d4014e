"""Question: does dropping basal slices whose blood pool outgrows the slices apical to them help? Answer: no, not shipped: docs/models.md.

A tried end-slice rule (docs/models.md, not shipped): drop basal slices whose blood pool is larger
than `growth` x the largest one apical to them (the left atrium segmented as LV at end-systole, as in the worst
Philips validation volume), scored on the default segmenter's masks of the Philips training subjects outside
the validation set at several thresholds.

    python research/analyses/basal_growth_rule.py --manifest ../shared/data/manifest.csv [--tta rot180]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "UnetGANSlicer"))

from unetgan.evaluate_run import predicted_volumes  # noqa: E402
from unetgan.evaluation import dice_per_structure  # noqa: E402
from unetgan.io.manifest import read_manifest  # noqa: E402
from unetgan.methods import make_segmenter  # noqa: E402
from unetgan.registry import load_lvunet  # noqa: E402
from unetgan.tta import DEFAULT_TTA, TTA_FLIPS  # noqa: E402

GROWTHS = (0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5)  # 0: the rule off


def drop_basal_growth(labels: np.ndarray, growth: float) -> np.ndarray:
    """Labels (Z, Y, X) without the basal slices, from the first one in the basal half whose blood pool exceeds
    `growth` x the largest apical to it (the base: the LV end with the larger blood pool)."""
    labels = labels.copy()
    blood = (labels == 1).sum((1, 2))
    lv = np.nonzero((labels > 0).any((1, 2)))[0]
    if len(lv) < 3 or growth <= 0:
        return labels
    order = list(lv) if blood[lv[-1]] >= blood[lv[0]] else list(lv[::-1])  # apex -> base
    largest = 0
    for i, z in enumerate(order):
        if i >= len(order) / 2 and largest > 0 and blood[z] > growth * largest:
            labels[order[i:]] = 0
            break
        largest = max(largest, blood[z])
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--tta", default=DEFAULT_TTA, choices=list(TTA_FLIPS))
    args = parser.parse_args()
    validation = set(load_lvunet("lvunet-robust").metadata["validation_subjects"])
    items = [i for i in read_manifest(args.manifest, ["Philips"], ["train_labelled"], require_labels=True)
             if i.subject not in validation]
    segmenter = make_segmenter("default", device=torch.device("cpu"), tta=args.tta)
    volumes = [(volume, labels) for item in items for volume, labels in predicted_volumes(segmenter, item)]
    for growth in GROWTHS:
        scores = np.array([[d["blood_pool"], d["myocardium"], d["mean"]] for d in
                           (dice_per_structure(drop_basal_growth(labels, growth), v.labels, v.valid)
                            for v, labels in volumes)], dtype=float)
        changed = sum(not np.array_equal(drop_basal_growth(labels, growth), labels) for _, labels in volumes)
        means = np.nanmean(scores, axis=0)
        print(f"growth {growth:.2f}: blood pool {means[0]:.4f}  myocardium {means[1]:.4f}  mean {means[2]:.4f}  "
              f"volumes changed {changed} of {len(volumes)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
