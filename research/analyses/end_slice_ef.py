"""Question: do the end-slice thresholds that tie on Dice differ in EF error? Answer: printed (docs/models.md,
'End-slice clean-up', names the pair kept).

    python research/analyses/end_slice_ef.py --manifest ../shared/data/manifest.csv [--model NAME]

The dev subjects of scripts/choice_cv.py, each through its vendor's pipeline with the default (or given)
segmenter, the end-slice rules off; each threshold pair is then applied to the same masks. Per pair: the balanced
mean Dice (as choice_cv.py computes it) and, per vendor, the EF error against the expert's (mean absolute, and
mean signed), from each subject's ED and ES blood pools.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # choice_cv, beside the product tools
from choice_cv import Runs, balanced, dev_items, product_specs  # noqa: E402
from robustness import ef_pairs  # noqa: E402
from unetgan import postprocess  # noqa: E402
from unetgan.evaluation import score_volume  # noqa: E402
from unetgan.registry import find_model  # noqa: E402

PAIRS = ((0.65, 0.65), (0.75, 0.65), (0.75, 0.0), (0.80, 0.65), (0.80, 0.0))


def measure(pairs_by_vendor: dict, thresholds: tuple[float, float]) -> str:
    dice, lines = {}, []
    for vendor, pairs in pairs_by_vendor.items():
        rows = []
        for volume, labels in pairs:
            rows.append(score_volume(volume, postprocess.trim_end_slices(labels, *thresholds)))
            dice.setdefault(f"{vendor} {volume.subject}", []).append(rows[-1]["dice"]["mean"])
        errors = [found - truth for truth, found in ef_pairs(rows)]
        lines.append(f"{vendor} EF error {np.mean(np.abs(errors)):.2f} (mean {np.mean(errors):+.2f}, n={len(errors)})")
    scores = {k: float(np.nanmean(v)) for k, v in dice.items() if np.isfinite(v).any()}
    return f"coverage {thresholds[0]:.2f}, basal ratio {thresholds[1]:.2f}: balanced Dice {balanced(scores, scores):.4f}; " \
        + "; ".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", help="segmenter (default: the default one)")
    args = parser.parse_args()
    model = find_model(args.model, "segmenter").name
    runs = Runs(dev_items(args.manifest), lambda text: None)
    pairs_by_vendor = {vendor: runs(vendor, spec) for vendor, spec in product_specs(model).items()}
    print(f"segmenter {model}")
    for thresholds in PAIRS:
        print(measure(pairs_by_vendor, thresholds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
