"""Question: why is the GE (Sunnybrook) myocardium Dice low? Answer: docs/ge_myocardium.md (and .json).

Why is the GE (Sunnybrook) myocardium Dice low? Per slice position, per contour convention.

    OMP_NUM_THREADS=1 python research/analyses/ge_myocardium.py --manifest ../shared/data/manifest.csv --out docs \
        [--method unetgan --adapter GE] [--model NAME]

Runs the pipeline as `unetgan evaluate` does (the whole cine, heart box on) and, on every image with both
Sunnybrook contours, measures: myocardium and blood-pool Dice; where the reference myocardium went
(predicted myocardium / blood pool / background) and where the predicted myocardium lies (reference
myocardium / cavity, i.e. trabeculae and papillary muscles, which Sunnybrook's endocardial contours
leave in the cavity / outside the epicardium). Slices are placed base (0) to apex (1) by their position
among the contoured slices of their frame. Writes docs/ge_myocardium.md and .json.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # report_files, beside the product tools
from report_files import write_report  # noqa: E402 - scripts/, put on the path above
from unetgan.evaluation import dice
from unetgan.evaluate_run import predicted_volumes
from unetgan.io.manifest import read_manifest
from unetgan.methods import make_segmenter

POSITIONS = ("base", "mid", "apex")


def slice_rows(volume, predicted: np.ndarray) -> list[dict]:
    both = np.flatnonzero(volume.valid["myocardium"])
    rows = []
    for rank, z in enumerate(both):
        reference, labels = volume.labels[z], predicted[z]
        ref_myo, pred_myo = reference == 2, labels == 2
        position = rank / max(1, len(both) - 1)
        rows.append({
            "subject": volume.subject, "frame": volume.image.meta["frame"], "slice": int(z),
            "position": POSITIONS[min(2, int(position * 3))],
            "myocardium_dice": dice(pred_myo, ref_myo), "blood_pool_dice": dice(labels == 1, reference == 1),
            "area_ratio_myocardium": float(pred_myo.sum() / max(1, ref_myo.sum())),
            "area_ratio_blood_pool": float((labels == 1).sum() / max(1, (reference == 1).sum())),
            # where the reference myocardium went
            "ref_myo_as_myo": float((ref_myo & pred_myo).sum() / max(1, ref_myo.sum())),
            "ref_myo_as_blood_pool": float((ref_myo & (labels == 1)).sum() / max(1, ref_myo.sum())),
            "ref_myo_as_background": float((ref_myo & (labels == 0)).sum() / max(1, ref_myo.sum())),
            # where the predicted myocardium lies
            "pred_myo_in_ref_cavity": float((pred_myo & (reference == 1)).sum() / max(1, pred_myo.sum())),
            "pred_myo_outside_ref_epicardium": float((pred_myo & (reference == 0)).sum() / max(1, pred_myo.sum())),
        })
    return rows


def contour_inventory(volumes) -> dict:
    counts = Counter()
    for v in volumes:
        counts["images with endocardial contour"] += int(v.valid["blood_pool"].sum())
        counts["images with both contours"] += int(v.valid["myocardium"].sum())
        counts["frames contoured"] += 1
        counts["frames with both contours somewhere"] += int(v.valid["myocardium"].any())
    return dict(counts)


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k not in ("subject", "frame", "slice", "position")]
    groups = {"all": rows, **{p: [r for r in rows if r["position"] == p] for p in POSITIONS}}
    return {name: {"n": len(group), **{k: float(np.mean([r[k] for r in group])) for k in keys}}
            for name, group in groups.items() if group}


def markdown(report: dict) -> str:
    s = report["summary"]
    cols = ["myocardium_dice", "blood_pool_dice", "area_ratio_myocardium", "area_ratio_blood_pool", "ref_myo_as_myo",
            "ref_myo_as_blood_pool", "ref_myo_as_background", "pred_myo_in_ref_cavity", "pred_myo_outside_ref_epicardium"]
    lines = ["# GE (Sunnybrook) myocardium, per slice position", "", f"Made by `{report['command']}`.", "",
             "Images with both contours only (Sunnybrook draws the epicardium on some images, mostly at ED). "
             "Inventory: " + ", ".join(f"{k}: {v}" for k, v in report["inventory"].items()) + ".", "",
             "| position | images | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
             "|---" * (len(cols) + 2) + "|"]
    for name, row in s.items():
        lines.append(f"| {name} | {row['n']} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--method", default="unetgan")
    parser.add_argument("--adapter", default="GE")
    parser.add_argument("--model")
    args = parser.parse_args()
    segmenter = make_segmenter(args.method, model=args.model, adapter=args.adapter if args.method == "unetgan" else None)
    rows, volumes_seen = [], []
    for item in read_manifest(args.manifest, ["GE"], ["dev_labelled"], require_labels=True):
        for volume, labels in predicted_volumes(segmenter, item):
            rows += slice_rows(volume, labels)
            volumes_seen.append(volume)
    command = "python research/analyses/ge_myocardium.py --manifest " + args.manifest + f" --out {args.out} --method {args.method}"
    command += f" --adapter {args.adapter}" if args.method == "unetgan" else ""
    command += f" --model {args.model}" if args.model else ""
    report = {"command": command, "inventory": contour_inventory(volumes_seen), "summary": summarise(rows), "slices": rows}
    write_report(args.out, "ge_myocardium", report, markdown(report))


if __name__ == "__main__":
    main()
