"""Choose postprocess.MIN_END_SLICE_COVERAGE on the Philips training subjects (never the validation or dev
subjects that docs/results.md reports), and write the table behind the choice to docs/end_slices.md.

    python scripts/end_slice_threshold.py --manifest ../shared/data/manifest.csv

The shipped default segmenter (`unetgan segment`: lvunet-robust, flip4) runs on every labelled Philips
training volume outside the LV-Unet's validation subjects with the end-slice rule off; each candidate
threshold is then applied to those same masks and scored against the expert's contours.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "UnetGANSlicer"))

from unetgan import postprocess  # noqa: E402
from unetgan.evaluate_run import predicted_volumes  # noqa: E402
from unetgan.evaluation import dice_per_structure  # noqa: E402
from unetgan.io.manifest import read_manifest  # noqa: E402
from unetgan.methods import make_segmenter  # noqa: E402
from unetgan.registry import load_lvunet  # noqa: E402

CANDIDATES = (0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)  # 0: the rule off


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs/end_slices")
    args = parser.parse_args()
    validation = set(load_lvunet("lvunet-robust").metadata["validation_subjects"])
    items = [i for i in read_manifest(args.manifest, ["Philips"], ["train_labelled"], require_labels=True)
             if i.subject not in validation]
    segmenter = make_segmenter("default", device=torch.device("cpu"))
    shipped = postprocess.MIN_END_SLICE_COVERAGE
    postprocess.MIN_END_SLICE_COVERAGE = 0.0  # the masks before the rule; each candidate is applied below
    volumes = [(volume, labels) for item in items for volume, labels in predicted_volumes(segmenter, item)]
    rows = []
    for threshold in CANDIDATES:
        scores = np.array([[d["blood_pool"], d["myocardium"], d["mean"]] for d in
                           (dice_per_structure(postprocess.drop_open_end_slices(labels, threshold), v.labels, v.valid)
                            for v, labels in volumes)], dtype=float)
        means = np.nanmean(scores, axis=0)
        rows.append({"threshold": threshold, "blood_pool": means[0], "myocardium": means[1], "mean": means[2]})
        print(f"{threshold:.2f}  blood pool {means[0]:.4f}  myocardium {means[1]:.4f}  mean {means[2]:.4f}", flush=True)
    best = max(rows, key=lambda r: (round(r["mean"], 6), -r["threshold"]))
    report = {"command": " ".join(["python"] + sys.argv), "subjects": len({v.subject for v, _ in volumes}),
              "volumes": len(volumes), "rows": rows, "chosen": best["threshold"], "shipped": shipped}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = ["# End slices: the coverage threshold", "",
             f"Made by `{report['command']}`. The shipped default segmenter on the {report['volumes']} labelled "
             f"volumes (ED and ES) of the {report['subjects']} Philips training subjects outside the LV-Unet's "
             "validation subjects, the end-slice rule (unetgan/postprocess.py) applied with each threshold to the "
             "same masks. The highest mean Dice chooses `MIN_END_SLICE_COVERAGE`; the subjects docs/results.md "
             "reports never took part.", "",
             "| threshold (share of 10-degree sectors with myocardium) | blood pool | myocardium | mean |",
             "|---|---|---|---|"]
    for r in rows:
        name = "off" if r["threshold"] == 0 else f"{r['threshold']:.2f}"
        bold = "**" if r is best else ""
        lines.append(f"| {bold}{name}{bold} | {r['blood_pool']:.4f} | {r['myocardium']:.4f} | {bold}{r['mean']:.4f}{bold} |")
    lines += ["", f"Chosen: {best['threshold']:.2f}; unetgan/postprocess.py ships {shipped:.2f}"
              + (" (the same)." if shipped == best["threshold"] else " (**differs**: update it).")]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
