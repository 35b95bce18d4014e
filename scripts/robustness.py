"""Robustness of the shipped pipeline: Dice per acquisition-protocol variant, and Dice and EF error per kind of heart.

    python scripts/robustness.py --manifest ../shared/data/manifest.csv --out docs

writes docs/robustness.json and docs/robustness.md (rendered from the JSON by scripts/robustness_report.py).

What is measured is what a user gets: `segment` (the registry's default segmenter, the default test-time
augmentation) and `adapt-segment` with the shipped adapter of the vendor, each volume run through the
product's own path (unetgan.methods.make_segmenter, unetgan.evaluation.score_volume, as `unetgan evaluate`).

Protocol variants
  phantom: studies simulated with other protocols (slice thickness and count, pixel size) and one cropped
           so that the heart sits near a corner of the field of view.
  dev data: the Philips validation subjects of the LV-Unet and the Siemens `dev_labelled` subjects, each
           image resampled (with its expert labels where the grid changes) to imitate another protocol.
           The M&Ms headers state 1 x 1 x 1 mm voxels (the true slice spacing is lost), so these variants are
           stated relative to the stored grid, not in mm.
Kinds of heart
  phantom: normal, dilated, hypertrophic and infarcted hearts (unetgan.phantom, `heart=`), ED and ES frames;
           EF (unetgan.measurements.ejection_fraction) from the predicted and from the true labels of those two
           frames (voxel counts on one grid: the same ratio as the volumes in mL).
  dev data: the subjects grouped by their expert labels (GROUPS below); EF from the ED/ES blood-pool voxel
           counts, as docs/results.md does for the M&Ms data.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetgan import postprocess
from unetgan.errors import InputError
from unetgan.evaluation import score_volume, summarise
from unetgan.io.geometry import Geometry, ImageData
from unetgan.io.labelled import LabelledVolume
from unetgan.io.manifest import load_item
from unetgan.measurements import ejection_fraction
from unetgan.methods import make_segmenter, weight_files
from unetgan.phantom import load_profile, make_study
from unetgan.phantom.profiles import with_overrides
from unetgan.phantom.subjects import HEART_KINDS
from unetgan.registry import find_model
from unetgan.training.sick_hearts import wall_thickness_mm
from unetgan.tta import DEFAULT_TTA

BLOOD_POOL, MYOCARDIUM = 1, 2
DEV_VENDORS = ("Philips", "Siemens")  # choice_cv.DEV_SPLITS says which rows
PHANTOM_VENDORS = ("Philips", "Siemens")
PHANTOM_SEEDS = (0, 1, 2)
PHANTOM_PHASES = 8  # enough for an end-systolic frame; few, to keep the simulation cheap
WORST_SHOWN = 3
# an off-centre field of view: a window of this share of the matrix, the heart this many pixels from its corner
CROP_SHARE, CROP_MARGIN = 0.7, 6
COARSER, FINER = 1.5, 1.4

# dev-subject groups by their expert labels (a subject may fall in several; "other": none). The M&Ms pixels are
# stated as 1 mm (about right in-plane, docs/../shared/data/README.md), so "mm" here is pixels of the stored grid.
# The thresholds were set on this set's spread so that each group holds a few subjects: no dev subject reaches
# the clinical marks of dilatation or hypertrophy (an LV of 60 mm across is rare here, a 12 mm wall absent).
GROUPS = {
    "large ED cavity": ("the ED blood pool's largest short-axis section is at least 55 mm across "
                        "(diameter of the circle of its area)", lambda t: t["ed_diameter_mm"] >= 55.0),
    "thick wall": ("the median ED wall (unetgan.training.sick_hearts.wall_thickness_mm) is at least 8 mm",
                   lambda t: t["ed_wall_mm"] >= 8.0),
    "small ES cavity": ("the ES blood pool holds fewer than 2,500 voxels of the stored grid",
                        lambda t: t["es_pool_voxels"] < 2500),
    "reduced EF": ("the expert labels' EF (ED/ES voxel counts) is under 40 %", lambda t: t["expert_ef"] < 40.0),
}


# ---- variants of a labelled volume: (image, labels, spacing) -> (image, labels, spacing) ----------------------

def thicker_slices(image, labels, spacing):
    """Each slice twice as thick on the same slice positions: the slice profile is widened to cover half of
    each neighbour (weights 1/4, 1/2, 1/4 along z; the end slices repeat themselves). The labels are the
    truth at the slice centres and stay."""
    kernel = np.array([0.25, 0.5, 0.25])
    return ndimage.convolve1d(image.astype(np.float32), kernel, axis=0, mode="nearest"), labels, spacing


def every_other_slice(image, labels, spacing):
    """Half the slices at twice the spacing (coverage kept)."""
    return image[::2], labels[::2], (spacing[0], spacing[1], spacing[2] * 2)


def thicker_and_fewer(image, labels, spacing):
    """Twice as thick and twice the spacing: thicker_slices, then every other slice."""
    return every_other_slice(*thicker_slices(image, labels, spacing))


def coarser_pixels(image, labels, spacing, factor=COARSER):
    """Pixels `factor` times larger in-plane, shown back on the stored grid (as a scanner interpolates its
    reconstruction): smoothed against aliasing (sigma (factor - 1) / 2 pixels, scikit-image's rule),
    downsampled, and resampled back linearly. The labels stay on the stored grid."""
    rows, cols = image.shape[1:]
    smooth = ndimage.gaussian_filter(image.astype(np.float32), sigma=(0, (factor - 1) / 2, (factor - 1) / 2))
    small = ndimage.zoom(smooth, (1, 1 / factor, 1 / factor), order=1)
    back = ndimage.zoom(small, (1, rows / small.shape[1], cols / small.shape[2]), order=1)
    return back, labels, spacing


def finer_pixels(image, labels, spacing, factor=FINER):
    """`factor` times more pixels over the same field of view (linear for the image, nearest for the labels);
    the stated spacing shrinks with them."""
    zoom = (1, factor, factor)
    return (ndimage.zoom(image.astype(np.float32), zoom, order=1), ndimage.zoom(labels, zoom, order=0),
            (spacing[0] / factor, spacing[1] / factor, spacing[2]))


def crop_window(labels: np.ndarray) -> tuple[slice, slice]:
    """In-plane window of CROP_SHARE of the matrix placed so that the heart (the labelled LV over all slices)
    sits CROP_MARGIN pixels from its bottom-right corner, or as near as the stored field of view allows."""
    heart = np.isin(labels, (BLOOD_POOL, MYOCARDIUM)).any(axis=tuple(range(labels.ndim - 2)))
    if not heart.any():
        raise InputError("no labelled heart to move off centre")
    window = []
    for axis, size in enumerate(heart.shape):
        present = np.flatnonzero(heart.any(axis=1 - axis))
        width = int(round(CROP_SHARE * size))
        start = int(np.clip(present[-1] + 1 + CROP_MARGIN - width, 0, size - width))
        window.append(slice(min(start, int(present[0])), min(start, int(present[0])) + width))
    return window[0], window[1]


def off_centre(image, labels, spacing):
    """A smaller field of view with the heart near its corner (crop_window); the spacing stays."""
    rows, cols = crop_window(labels)
    return image[..., rows, cols], labels[..., rows, cols], spacing


DEV_VARIANTS = {
    "stored grid": None,
    "slices 2x thicker (same positions)": thicker_slices,
    "every other slice (2x spacing)": every_other_slice,
    "slices 2x thicker, every other slice": thicker_and_fewer,
    f"pixels {COARSER:g}x coarser in-plane": coarser_pixels,
    f"pixels {FINER:g}x finer in-plane": finer_pixels,
    "heart off centre (cropped field of view)": off_centre,
}

# phantom protocols: (description, profile overrides, image transform)
PHANTOM_VARIANTS = {
    "the vendor's profile (8 mm slices + 2 mm gap)": ({}, None),
    "5 mm slices, no gap, 20 slices": ({"slice_thickness_mm": 5.0, "slice_gap_mm": 0.0, "n_slices": 20}, None),
    "6 mm slices, no gap, 20 slices (past base and apex)": ({"slice_thickness_mm": 6.0, "slice_gap_mm": 0.0, "n_slices": 20}, None),
    "10 mm slices, no gap, 8 slices": ({"slice_thickness_mm": 10.0, "slice_gap_mm": 0.0, "n_slices": 8}, None),
    "pixels 0.7 mm": ({"pixel_spacing_mm": 0.7}, None),
    "pixels 2.0 mm": ({"pixel_spacing_mm": 2.0}, None),
    "heart off centre (cropped field of view)": ({}, off_centre),
}


def group_traits(ed_labels: np.ndarray, es_labels: np.ndarray) -> dict:
    """The numbers GROUPS judges a subject by, from its expert ED and ES labels (stored grid, 1 mm pixels)."""
    ed_pool, es_pool = int((ed_labels == BLOOD_POOL).sum()), int((es_labels == BLOOD_POOL).sum())
    largest_section = float((ed_labels == BLOOD_POOL).sum(axis=(1, 2)).max())
    return {"ed_pool_voxels": ed_pool, "es_pool_voxels": es_pool,
            "ed_diameter_mm": round(2 * np.sqrt(largest_section / np.pi), 1),
            "ed_wall_mm": round(wall_thickness_mm(ed_labels, (1.0, 1.0)), 1),
            "expert_ef": round(ejection_fraction(ed_pool, es_pool) or 0.0, 1)}


def groups_of(traits: dict) -> list[str]:
    found = [name for name, (_, rule) in GROUPS.items() if rule(traits)]
    return found or ["other"]


# ---- measuring --------------------------------------------------------------------------------------------------

def pipelines(vendor: str) -> dict:
    """Name -> make_segmenter arguments of the shipped pipeline(s) for a vendor's images."""
    runs = {"segment": {"method": "default", "tta": DEFAULT_TTA}}
    if vendor != "Philips":  # the source vendor has no adapter of its own
        runs["adapt-segment"] = {"method": "unetgan", "adapter": find_model(vendor, "adapter").name, "tta": DEFAULT_TTA}
    return runs


class Segmenters:
    """make_segmenter once per pipeline, kept for every volume; `model`: another LV-Unet in every pipeline."""

    def __init__(self, model: str | None = None):
        self.made, self.model = {}, model

    def __call__(self, spec: dict):
        spec = {**spec, "model": self.model} if self.model else spec
        key = json.dumps(spec, sort_keys=True)
        if key not in self.made:
            self.made[key] = make_segmenter(**spec)
        return self.made[key]


def scored(segmenter, volume: LabelledVolume, transform=None) -> dict:
    image, labels, spacing = volume.image.array, volume.labels, volume.image.geometry.spacing
    if transform is not None:
        image, labels, spacing = transform(image, labels, spacing)
    moved = LabelledVolume(volume.subject, volume.vendor, volume.phase, ImageData(image, Geometry(spacing)), labels)
    predicted = segmenter(image, spacing).labels
    row = score_volume(moved, predicted)
    row["shape"] = list(image.shape)
    return row


def dev_volumes(manifest: str) -> list[LabelledVolume]:
    """The dev volumes of choice_cv.dev_items (the same subjects), GE's cines left out (contoured frames only)."""
    from choice_cv import dev_items

    return [v for item in dev_items(manifest) if item.vendor in DEV_VENDORS for v in load_item(item)]


def measure_dev(manifest: str, segmenters: Segmenters, log) -> tuple[dict, dict]:
    volumes = dev_volumes(manifest)
    variants = {}
    for name, transform in DEV_VARIANTS.items():
        started, rows = time.time(), {}
        for volume in volumes:
            for pipeline, spec in pipelines(volume.vendor).items():
                rows.setdefault(pipeline, []).append(scored(segmenters(spec), volume, transform))
        variants[name] = summarised(rows, started, f"dev      {name:45}", log)
    by_subject = {}
    for volume in volumes:
        by_subject.setdefault((volume.vendor, volume.subject), {})[volume.phase] = volume.labels
    traits = {subject: {"vendor": vendor, **group_traits(phases["ED"], phases["ES"])}
              for (vendor, subject), phases in sorted(by_subject.items())}
    for entry in traits.values():
        entry["groups"] = groups_of(entry)
    stored = variants["stored grid"]
    kinds = {}
    for pipeline in ("segment", "adapt-segment"):
        per_volume = stored[pipeline]["per_volume"]
        for group in [*GROUPS, "other"]:
            members = {s for s, t in traits.items() if group in t["groups"]}
            kinds.setdefault(group, {})[pipeline] = heart_table([r for r in per_volume if r["subject"] in members])
    return variants, {"traits": traits, "groups": kinds,
                      "rules": {name: text for name, (text, _) in GROUPS.items()}}


def table(per_volume: list[dict]) -> dict:
    """Dice over all volumes and per vendor, and the worst volumes."""
    everyone = [{**row, "vendor": "all"} for row in per_volume]
    summary = summarise(everyone)["all"] | {"per_vendor": {v: {k: e[k]["mean"] for k in ("blood_pool", "myocardium", "mean")}
                                                            for v, e in summarise(per_volume).items()}}
    worst = sorted(per_volume, key=lambda row: row["dice"]["mean"])[:WORST_SHOWN]
    return {"all": {k: summary[k]["mean"] for k in ("blood_pool", "myocardium", "mean")} | {"n": summary["n"]},
            "per_vendor": summary["per_vendor"],
            "worst": [{"subject": r["subject"], "vendor": r["vendor"], "phase": r["phase"], **r["dice"]} for r in worst],
            "per_volume": per_volume}


def summarised(rows: dict[str, list[dict]], started: float, label: str, log) -> dict:
    """Each pipeline's table of one variant, the variant's seconds, and a progress line."""
    variant = {pipeline: table(per_volume) for pipeline, per_volume in rows.items()}
    variant["seconds"] = round(time.time() - started, 1)
    log(f"{label} " + "  ".join(f"{p} {t['all']['mean']:.3f}" for p, t in variant.items() if p != "seconds"))
    return variant


def ef_pairs(per_volume: list[dict]) -> list[tuple[float, float]]:
    """(expert, predicted) EF in points per subject with both phases, from the blood-pool counts."""
    by_subject = {}
    for row in per_volume:
        by_subject.setdefault((row["vendor"], row["subject"]), {})[row["phase"]] = row
    pairs = []
    for phases in by_subject.values():
        if {"ED", "ES"} <= set(phases):
            ed, es = phases["ED"], phases["ES"]
            truth = ejection_fraction(ed["reference_blood_pool_voxels"], es["reference_blood_pool_voxels"])
            found = ejection_fraction(ed["predicted_blood_pool_voxels"], es["predicted_blood_pool_voxels"])
            if truth is not None and found is not None:
                pairs.append((truth, found))
    return pairs


def heart_table(per_volume: list[dict]) -> dict:
    if not per_volume:
        return {"n_subjects": 0}
    pairs = ef_pairs(per_volume)
    errors = [found - truth for truth, found in pairs]
    dice = {k: float(np.nanmean([r["dice"][k] for r in per_volume])) for k in ("blood_pool", "myocardium", "mean")}
    return {"n_subjects": len({(r["vendor"], r["subject"]) for r in per_volume}), "n_volumes": len(per_volume),
            "dice": dice, "worst_mean": min(r["dice"]["mean"] for r in per_volume),
            "ef_mae": float(np.mean(np.abs(errors))) if errors else None,
            "ef_bias": float(np.mean(errors)) if errors else None,
            "ef_worst": float(max(errors, key=abs)) if errors else None,
            "ef_expert_mean": float(np.mean([t for t, _ in pairs])) if pairs else None,
            "ef_found_mean": float(np.mean([f for _, f in pairs])) if pairs else None,
            "per_volume": per_volume}


def phantom_profile(vendor: str, overrides: dict) -> dict:
    profile = load_profile(vendor)
    spacing = overrides.get("pixel_spacing_mm")
    rest = {k: v for k, v in overrides.items() if k != "pixel_spacing_mm"}
    profile = {**profile, **rest, "n_phases": PHANTOM_PHASES}
    if spacing is not None:  # the same field of view on a matrix of that pixel size
        fov = max(n * s for n, s in zip(profile["recon_matrix"], profile["pixel_spacing_mm"]))
        profile = with_overrides(profile, matrix=int(round(fov / spacing)))
    return profile


def phantom_volumes(vendor: str, profile: dict, seed: int, heart: str) -> list[LabelledVolume]:
    study = make_study(profile, seed=seed, heart=heart)
    name = f"{vendor.lower()}-{heart}-{seed}"
    return [LabelledVolume(name, vendor, phase, ImageData(study.image[frame], Geometry(study.spacing)), study.labels[frame])
            for phase, frame in (("ED", study.ed_frame), ("ES", study.es_frame))]


def measure_phantom(segmenters: Segmenters, log) -> tuple[dict, dict]:
    variants = {}
    for name, (overrides, transform) in PHANTOM_VARIANTS.items():
        started, rows = time.time(), {}
        for vendor in PHANTOM_VENDORS:
            profile = phantom_profile(vendor, overrides)
            for seed in PHANTOM_SEEDS:
                for volume in phantom_volumes(vendor, profile, seed, "normal"):
                    for pipeline, spec in pipelines(vendor).items():
                        rows.setdefault(pipeline, []).append(scored(segmenters(spec), volume, transform))
        variants[name] = summarised(rows, started, f"phantom  {name:45}", log)
    kinds = {}
    for heart in HEART_KINDS:
        started, rows = time.time(), {}
        for vendor in PHANTOM_VENDORS:
            profile = phantom_profile(vendor, {})
            for seed in PHANTOM_SEEDS:
                volumes = phantom_volumes(vendor, profile, seed, heart)
                for pipeline, spec in pipelines(vendor).items():
                    rows.setdefault(pipeline, []).extend(scored(segmenters(spec), v) for v in volumes)
        kinds[heart] = {pipeline: heart_table(per_volume) for pipeline, per_volume in rows.items()}
        kinds[heart]["seconds"] = round(time.time() - started, 1)
        log(f"phantom  {heart:45} " + "  ".join(f"{p} Dice {t['dice']['mean']:.3f} EF MAE {t['ef_mae']:.1f}"
                                                for p, t in kinds[heart].items() if p != "seconds"))
    return variants, kinds


def provenance(model: str | None = None) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    weights = {"segment": weight_files("default", model)}
    for vendor in PHANTOM_VENDORS:
        for name, spec in pipelines(vendor).items():
            if name == "adapt-segment":
                weights[f"adapt-segment {vendor}"] = weight_files("unetgan", model, spec["adapter"]) | {"adapter_name": spec["adapter"]}
    return {"command": f"python {' '.join(sys.argv)}", "cpu": cpu, "tta": DEFAULT_TTA,
            "postprocessing": postprocess.description(), "weights": weights} | ({"model": model} if model else {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--only", choices=("dev", "phantom"), help="measure one half; the other is kept from the JSON")
    parser.add_argument("--model", help="a research LV-Unet (registry name or file) in place of the default segmenter")
    parser.add_argument("--stem", default="robustness", help="writes OUT/STEM.json and OUT/STEM.md (default robustness)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.stem}.json"
    result = json.loads(path.read_text()) if args.only and path.exists() else {}
    segmenters, started = Segmenters(args.model), time.time()

    def log(text):
        print(text, flush=True)

    try:
        if args.only != "phantom":
            result["dev_variants"], result["dev_kinds"] = measure_dev(args.manifest, segmenters, log)
            path.write_text(json.dumps(result, indent=1))  # a long run keeps what it has measured
        if args.only != "dev":
            result["phantom_variants"], result["phantom_kinds"] = measure_phantom(segmenters, log)
    except InputError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    result["provenance"] = provenance(args.model) | {"seconds": round(time.time() - started, 1)}
    path.write_text(json.dumps(result, indent=1))
    from robustness_report import write_markdown  # the page, rendered from the JSON alone

    write_markdown(result, out / f"{args.stem}.md")
    print(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
