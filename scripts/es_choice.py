"""How ED and ES are chosen on full cines: the frames' own extremes (the rule before) against ES read among the
frames that are not one-frame dips of the volume curve (the rule now), on the GE (Sunnybrook) cines.

    OMP_NUM_THREADS=1 python scripts/es_choice.py --manifest ../shared/data/manifest.csv --out docs/es_choice.json \
        [--runs /tmp/es_choice] [--adapters auto Siemens]

Runs the product as a user does (`unetgan adapt-segment` on each cine's DICOM folder) with each adapter
(auto: the DICOM Manufacturer's, i.e. GE; Siemens: what the web page chose before it read the Manufacturer),
reads the per-frame blood-pool volumes of its measurements.json and its labelmap, and compares, per rule:
the chosen ED and ES frames (1-based) with the expert's (the two phases Sunnybrook contoured, the larger
cavity being ED), and the EF on the slices the expert contoured at both phases with the expert's EF on the
same slices (the whole-ventricle EF has no expert value: Sunnybrook contours only some slices). Also the
myocardial volume's variation over the cycle ((max - min) / mean). Writes one JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from unetgan.io.images import read_image
from unetgan.io.manifest import read_manifest
from unetgan.io.sunnybrook import cine_phase_names, load_contoured_phases
from unetgan.measurements import (OUTLIER_MIN_FRACTION_OF_EDV, OUTLIER_ROBUST_SDS, choose_ed_es, dip_frames,
                                  ejection_fraction, smoothed_curve)
from unetgan.plausibility import MAX_MYOCARDIAL_VARIATION_PERCENT

RULES = ("before", "now", "peaks_too")


def one_frame_outliers(volumes) -> np.ndarray:
    """Dips and peaks by the product's dip rule (both signs): the rule tried for ED too, and not kept."""
    volumes = np.asarray(volumes, float)
    smooth = smoothed_curve(volumes)
    residual = volumes - smooth
    threshold = max(OUTLIER_ROBUST_SDS * 1.4826 * float(np.median(np.abs(residual))),
                    OUTLIER_MIN_FRACTION_OF_EDV * float(smooth.max()))
    return np.abs(residual) > threshold


def chosen(volumes, rule: str) -> tuple[int, int]:
    if rule == "peaks_too":
        kept = np.flatnonzero(~one_frame_outliers(volumes))
        values = np.asarray(volumes, float)[kept]
        return int(kept[values.argmax()]), int(kept[values.argmin()])
    return choose_ed_es(volumes, robust=rule == "now")


def run_product(image: Path, out: Path, adapter: str) -> None:
    if (out / "measurements.json").is_file():
        return  # a previous run of this script: its outputs are the product's
    command = [sys.executable, "-m", "unetgan", "adapt-segment", str(image), "-o", str(out), "--adapter", adapter]
    subprocess.run(command, check=True, env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))


def expert(item) -> dict:
    """The expert's ED and ES frames (0-based), the slices contoured at both and the EF on them."""
    volumes = {v.phase: v for v in cine_phase_names(load_contoured_phases(item))}
    ed, es = volumes["ED"], volumes["ES"]
    slices = ed.valid["blood_pool"] & es.valid["blood_pool"]
    blood = {name: int((v.labels[slices] == 1).sum()) for name, v in volumes.items()}
    return {"ed": int(ed.image.meta["frame"]), "es": int(es.image.meta["frame"]), "slices": slices,
            "ef": ejection_fraction(blood["ED"], blood["ES"])}


def study(item, runs: Path, adapter: str) -> dict:
    out = runs / f"{item.subject}_{adapter}"
    run_product(item.image, out, adapter)
    measurements = json.loads((out / "measurements.json").read_text())
    labels = read_image(out / "labelmap.nrrd").frames
    volumes = [f["blood_pool_ml"] for f in measurements["frames"]]
    reference = expert(item)
    row = {"subject": item.subject, "adapter": adapter, "adapter_used": measurements.get("adapter"),
           "frames": len(volumes), "blood_pool_ml": volumes,
           "dip_frames": [int(t) + 1 for t in np.flatnonzero(dip_frames(volumes))],
           "expert": {"ed_frame_number": reference["ed"] + 1, "es_frame_number": reference["es"] + 1,
                      "ef_percent_on_contoured_slices": round(reference["ef"], 1),
                      "contoured_slices": int(reference["slices"].sum())},
           "myocardial_volume_variation_percent": measurements.get("myocardial_volume_variation_percent")}
    for name in RULES:
        ed, es = chosen(volumes, name)
        on_slices = ejection_fraction(float((labels[ed][reference["slices"]] == 1).sum()),
                                      float((labels[es][reference["slices"]] == 1).sum()))
        row[name] = {"ed_frame_number": ed + 1, "es_frame_number": es + 1, "edv_ml": volumes[ed],
                     "esv_ml": volumes[es],
                     "ef_percent": round(ejection_fraction(volumes[ed], volumes[es]), 1),
                     "ef_percent_on_contoured_slices": round(on_slices, 1),
                     "ef_error_on_contoured_slices": round(on_slices - reference["ef"], 1),
                     "es_frames_from_expert": cyclic_distance(es, reference["es"], len(volumes)),
                     "ed_frames_from_expert": cyclic_distance(ed, reference["ed"], len(volumes))}
    return row


def cyclic_distance(a: int, b: int, n: int) -> int:
    return int(min((a - b) % n, (b - a) % n))


def summary(rows: list[dict]) -> dict:
    found = {}
    for adapter in dict.fromkeys(r["adapter"] for r in rows):
        chosen = [r for r in rows if r["adapter"] == adapter]
        found[adapter] = {name: {
            "mean_abs_ef_error_on_contoured_slices": round(float(np.mean(
                [abs(r[name]["ef_error_on_contoured_slices"]) for r in chosen])), 1),
            "mean_es_frames_from_expert": round(float(np.mean([r[name]["es_frames_from_expert"] for r in chosen])), 2),
            "mean_ed_frames_from_expert": round(float(np.mean([r[name]["ed_frames_from_expert"] for r in chosen])), 2),
        } for name in RULES}
        found[adapter]["studies_whose_es_changed"] = sum(
            r["before"]["es_frame_number"] != r["now"]["es_frame_number"] for r in chosen)
        found[adapter]["studies_whose_ed_changed_with_peaks_too"] = sum(
            r["before"]["ed_frame_number"] != r["peaks_too"]["ed_frame_number"] for r in chosen)
        found[adapter]["studies_above_myocardial_variation_bound"] = sum(
            (r["myocardial_volume_variation_percent"] or 0) > MAX_MYOCARDIAL_VARIATION_PERCENT for r in chosen)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/es_choice.json"))
    parser.add_argument("--runs", type=Path, default=Path("/tmp/es_choice"), help="where the product's outputs go")
    parser.add_argument("--adapters", nargs="+", default=["auto", "Siemens"])
    args = parser.parse_args()
    items = [i for i in read_manifest(args.manifest, vendors=["GE"]) if i.is_cine]
    rows = [study(item, args.runs, adapter) for adapter in args.adapters for item in items]
    report = {"command": "OMP_NUM_THREADS=1 python scripts/es_choice.py --manifest ../shared/data/manifest.csv "
                         f"--out {args.out} --adapters {' '.join(args.adapters)}",
              "frame_numbering": "1-based: frame 1 is the first phase",
              "rules": {"before": "ED and ES: the frames with the largest and smallest blood-pool volume",
                        "now": "ED the same; ES the smallest among the frames that are not one-frame dips of the "
                               "volume curve (unetgan.measurements.choose_ed_es)",
                        "peaks_too": "ED and ES among the frames that are neither one-frame dips nor peaks (tried, "
                                     "not kept)"},
              "myocardial_variation_bound_percent": MAX_MYOCARDIAL_VARIATION_PERCENT,
              "summary": summary(rows), "studies": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))
    for r in rows:
        expert, before, now = r["expert"], r["before"], r["now"]
        print(f"{r['subject']} {r['adapter']:8s} expert ED/ES {expert['ed_frame_number']}/{expert['es_frame_number']} "
              f"EF {expert['ef_percent_on_contoured_slices']}; before {before['ed_frame_number']}/"
              f"{before['es_frame_number']} EF {before['ef_percent']} ({before['ef_percent_on_contoured_slices']} on "
              f"the expert's slices); now {now['ed_frame_number']}/{now['es_frame_number']} EF {now['ef_percent']} "
              f"({now['ef_percent_on_contoured_slices']}); dips {r['dip_frames']}; myocardium varies "
              f"{r['myocardial_volume_variation_percent']} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
