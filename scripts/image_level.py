"""The GAN's share in Dice through image-level adaptation of the training data (research: the LV-Unet also trained
on Philips images that the cycle's other generator renders in the Siemens look). Its share at test time (the
shipped adapters translating target images) is in docs/choice_cv.json (`adapter/VENDOR/translation_share`).

Usage: python scripts/image_level.py --manifest ../shared/data/manifest.csv --out docs \
           --translated runs/image_level/unet_translated/last.safetensors --control runs/image_level/unet_control/last.safetensors

Made by research/recipes/image_level_adaptation.sh: the two LV-Unets are the same fine-tuning of lvunet-soup2 but
for the translated share of the Philips samples, so their difference is the translation's share. Each runs through
what the product runs for each vendor (scripts/choice_cv.py's pipelines: `segment` for Philips, the shipped adapter
for Siemens and GE), and on Siemens also with histogram matching alone (no test-time translation).
Writes OUT/image_level.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from choice_cv import DEFAULT_TTA, Runs, dev_items, per_vendor, product_scores, subject_scores
from unetgan.errors import InputError
from unetgan.runtime import cpu_description, resolve_runtime
from unetgan.weights import sha256_of


def paired(treated: dict[str, float], control: dict[str, float]) -> dict:
    """Per vendor: the mean and sd over subjects of treated - control, and how many subjects gained."""
    out = {}
    for vendor, _ in per_vendor(treated).items():
        keys = [k for k in treated if k.startswith(vendor + " ") and k in control]
        differences = np.array([treated[k] - control[k] for k in keys])
        out[vendor] = {"mean": float(differences.mean()), "sd": float(differences.std(ddof=1)) if len(keys) > 1 else 0.0,
                       "subjects_better": int((differences > 1e-9).sum()), "n": len(keys)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--translated", required=True, help="the LV-Unet fine-tuned with translated Philips images")
    parser.add_argument("--control", required=True, help="the same fine-tuning without them")
    args = parser.parse_args()
    out, started = Path(args.out), time.time()
    try:
        runs = Runs(dev_items(args.manifest), lambda text: print(text, flush=True))
        models = {"translated": args.translated, "control": args.control}
        through_product = {name: product_scores(runs, f"segmenter {name}", file) for name, file in models.items()}
        histogram_only = {name: subject_scores(runs(f"histogram matching {name} / Siemens", {
            "method": "histmatch", "model": file, "tta": DEFAULT_TTA, "vendors": ("Siemens",)}))
            for name, file in models.items()}
    except InputError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    result = {
        "image_level": {
            "through_the_product": {name: per_vendor(scores) for name, scores in through_product.items()},
            "share_through_the_product": paired(through_product["translated"], through_product["control"]),
            "siemens_histogram_matching_only": {name: per_vendor(scores)["Siemens"] for name, scores in histogram_only.items()},
            "share_histogram_matching_only": paired(histogram_only["translated"], histogram_only["control"])["Siemens"],
        },
        "provenance": {"command": f"python {' '.join(sys.argv)}", "cpu": cpu_description(),
                       "runtime": resolve_runtime("auto", "cpu"), "seconds": round(time.time() - started, 1),
                       "weights": {name: sha256_of(Path(file)) for name, file in models.items()}},
    }
    (out / "image_level.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result["image_level"][k] for k in ("share_through_the_product", "share_histogram_matching_only")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
