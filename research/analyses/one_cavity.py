"""Question: what does the one-cavity step of the clean-up (unetgan.postprocess.keep_one_cavity: of the LV's blood
pool only the run of consecutive slices holding the most) change, and where? Answer: docs/one_cavity.json
(docs/models.md, 'End-slice clean-up', quotes it).

    python research/analyses/one_cavity.py --manifest ../shared/data/manifest.csv --out docs

Two sets of volumes, each through the product's path with the default segmenter, the clean-up as shipped but
with the one-cavity step off; the step is then applied to the same masks before the end-slice rules:
- the dev subjects of scripts/choice_cv.py, each through its vendor's pipeline (the set the step was found on:
  one Philips end-systolic volume, A8C9U8, with a blood pool past the base beyond a slice without one);
- the 45 Philips training subjects outside the LV-Unet's validation set (`segment`; the default segmenter
  trained on them, so they rarely fail, but no choice was made on them here).
Per set: the volumes the step changes, with their Dice before and after, and the mean Dice and EF error of the set
before and after.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # choice_cv, beside the product tools
from choice_cv import Runs, dev_items, product_specs  # noqa: E402
from robustness import ef_pairs  # noqa: E402
from unetgan import postprocess  # noqa: E402
from unetgan.evaluation import score_volume  # noqa: E402
from unetgan.io.manifest import read_manifest  # noqa: E402
from unetgan.registry import find_model, load_lvunet  # noqa: E402


def without_step(runs: Runs, label: str, spec: dict) -> list[tuple]:
    """The pipeline's masks with the one-cavity step off (and, as choice_cv.Runs gives them, the end-slice rules)."""
    shipped = postprocess.keep_one_cavity
    postprocess.keep_one_cavity = lambda labels: labels  # read by clean_frame when called
    try:
        return runs(label, spec)
    finally:
        postprocess.keep_one_cavity = shipped


def summary(rows: list[dict]) -> dict:
    errors = [abs(found - truth) for truth, found in ef_pairs(rows)]
    return {"volumes": len(rows), "mean_dice": float(np.nanmean([r["dice"]["mean"] for r in rows])),
            "blood_pool_dice": float(np.mean([r["dice"]["blood_pool"] for r in rows])),
            "ef_mae": float(np.mean(errors)) if errors else None, "ef_subjects": len(errors)}


def measure(pairs: list[tuple]) -> dict:
    before, after, changed = [], [], []
    for volume, labels in pairs:
        stepped = postprocess.keep_one_cavity(labels)
        before.append(score_volume(volume, postprocess.trim_end_slices(labels)))
        after.append(score_volume(volume, postprocess.trim_end_slices(stepped)))
        if stepped is not labels:
            changed.append({"vendor": volume.vendor, "subject": volume.subject, "phase": volume.phase,
                            "voxels_dropped": int((labels > 0).sum() - (stepped > 0).sum()),
                            "dice_before": before[-1]["dice"], "dice_after": after[-1]["dice"]})
    return {"changed": changed, "before": summary(before), "after": summary(after)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    model = find_model(None, "segmenter").name
    validation = load_lvunet("lvunet-clean").metadata["validation_subjects"]
    training = [item for item in read_manifest(args.manifest, ["Philips"], ["train_labelled"], require_labels=True)
                if item.subject not in validation]
    result = {"segmenter": model, "command": "python research/analyses/one_cavity.py --manifest "
                                             "../shared/data/manifest.csv --out docs", "sets": {}}
    dev = Runs(dev_items(args.manifest), print)
    result["sets"]["dev"] = measure([pair for vendor, spec in product_specs(model).items()
                                     for pair in without_step(dev, vendor, spec)])
    result["sets"]["philips_training"] = measure(without_step(Runs(training, print), "Philips", product_specs(model)["Philips"]))
    for name, figures in result["sets"].items():
        print(name, json.dumps(figures["before"]), "->", json.dumps(figures["after"]), f"{len(figures['changed'])} changed")
    out = Path(args.out) / "one_cavity.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
