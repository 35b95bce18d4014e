"""Cross-validated choices: the default segmenter, test-time augmentation, the end-slice thresholds and each
target vendor's adapter, each chosen by leave-one-subject-out over the dev subjects, with a nested estimate.

Usage: python scripts/choice_cv.py --manifest ../shared/data/manifest.csv --out docs [--candidate NAME=FILE ...]

The dev subjects are the LV-Unet's 10 Philips validation subjects (no segmenter here trained on them), the 10
Siemens `dev_labelled` subjects and the 3 GE (Sunnybrook) cines. For every candidate each volume runs through
the product's own path (`unetgan.methods.make_segmenter`, runtime auto, heart box, clean-up), and a subject's
score is the mean Dice (blood pool and myocardium, 3D) of its volumes. A set of subjects is scored by the mean
over vendors of each vendor's mean, so that ten Philips subjects do not outvote three GE ones.

For each choice:
- every candidate's figure over all dev subjects (mean per vendor, the spread over subjects, and its difference
  from the shipped choice, subject by subject);
- the nested leave-one-subject-out estimate: for each subject, the candidate that scores best on all the *other*
  subjects is chosen and scored on the one left out. Its mean is a figure no choice was made on: what choosing
  this way is worth on a new subject. How often each candidate was chosen says how stable the choice is.

The networks run once per candidate with the end-slice clean-up off (its thresholds at 0); the clean-up is then
applied here to each volume with each pair of thresholds (`postprocess.trim_end_slices`, the product's own code).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from unetgan import postprocess
from unetgan.errors import InputError
from unetgan.evaluate_run import predicted_volumes
from unetgan.evaluation import score_volume
from unetgan.io.manifest import read_manifest
from unetgan.methods import make_segmenter
from unetgan.registry import find_model, load_lvunet, read_registry
from unetgan.runtime import cpu_description, resolve_runtime
from unetgan.tta import DEFAULT_TTA, TTA_FLIPS
from unetgan.weights import sha256_of

VENDORS = ("Philips", "Siemens", "GE")
DEV_SPLITS = {"Philips": ["train_labelled"], "Siemens": ["dev_labelled"], "GE": ["dev_labelled"]}
COVERAGES = (0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)  # 0: the open-ring rule off
BASAL_RATIOS = (0.0, 0.5, 0.65, 0.8)  # 0: the basal shrinking rule off
SHIPPED_THRESHOLDS = (postprocess.MIN_END_SLICE_COVERAGE, postprocess.MIN_BASAL_AREA_RATIO)


def dev_items(manifest: str) -> list:
    validation = load_lvunet("lvunet-clean").metadata["validation_subjects"]
    items = []
    for vendor in VENDORS:
        items += read_manifest(manifest, [vendor], DEV_SPLITS[vendor], require_labels=True,
                               subjects=validation if vendor == "Philips" else None)
    return items


def untrimmed(spec: dict, items: list) -> list[tuple]:
    """(volume, labels) of the dev volumes of spec["vendors"] through one pipeline (make_segmenter's other
    arguments), the end-slice clean-up off."""
    saved = postprocess.MIN_END_SLICE_COVERAGE, postprocess.MIN_BASAL_AREA_RATIO
    postprocess.MIN_END_SLICE_COVERAGE, postprocess.MIN_BASAL_AREA_RATIO = 0.0, 0.0  # read by clean_frame when called
    try:
        segmenter = make_segmenter(**{k: v for k, v in spec.items() if k != "vendors"})
        return [pair for item in items if item.vendor in spec["vendors"] for pair in predicted_volumes(segmenter, item)]
    finally:
        postprocess.MIN_END_SLICE_COVERAGE, postprocess.MIN_BASAL_AREA_RATIO = saved


def subject_scores(pairs: list[tuple], thresholds=SHIPPED_THRESHOLDS) -> dict[str, float]:
    """'vendor subject' -> mean Dice of its volumes after the clean-up with these thresholds."""
    per_subject: dict[str, list[float]] = {}
    for volume, labels in pairs:
        trimmed = postprocess.trim_end_slices(labels, *thresholds)
        per_subject.setdefault(f"{volume.vendor} {volume.subject}", []).append(score_volume(volume, trimmed)["dice"]["mean"])
    # a volume with one structure uncontoured (Sunnybrook ES frames: the blood pool only) has no mean: left out,
    # as in docs/results.md's mean column
    return {key: float(np.nanmean(values)) for key, values in sorted(per_subject.items()) if np.isfinite(values).any()}


def vendor_of(key: str) -> str:
    return key.split(" ", 1)[0]


def balanced(scores: dict[str, float], keys) -> float:
    """Mean over vendors of each vendor's mean over these subjects."""
    by_vendor: dict[str, list[float]] = {}
    for key in keys:
        by_vendor.setdefault(vendor_of(key), []).append(scores[key])
    return float(np.mean([np.mean(v) for v in by_vendor.values()]))


def per_vendor(scores: dict[str, float], keys=None) -> dict:
    keys = list(scores) if keys is None else keys
    out = {}
    for vendor in VENDORS:
        values = [scores[k] for k in keys if vendor_of(k) == vendor]
        if values:
            out[vendor] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                           "n": len(values)}
    return out


def choice(candidates: dict[str, dict[str, float]], shipped: str) -> dict:
    """Every candidate's figure and the nested leave-one-subject-out estimate of choosing among them.
    candidates: name -> subject scores, the shipped candidate first (a tie goes to the earlier candidate)."""
    names = list(candidates)
    subjects = sorted(set.intersection(*(set(s) for s in candidates.values())))
    reference = candidates[shipped]
    figures = {}
    for name, scores in candidates.items():
        differences = [scores[k] - reference[k] for k in subjects]
        figures[name] = {"balanced_mean": balanced(scores, subjects), "per_vendor": per_vendor(scores, subjects),
                         "per_subject": {k: scores[k] for k in subjects},
                         "difference_from_shipped": {"mean": float(np.mean(differences)),
                                                     "sd": float(np.std(differences, ddof=1)),
                                                     "subjects_better": int(sum(d > 1e-9 for d in differences)),
                                                     "subjects_worse": int(sum(d < -1e-9 for d in differences))}}
    picks, held_out = {name: 0 for name in names}, {}
    for left_out in subjects:
        rest = [k for k in subjects if k != left_out]
        best = max(names, key=lambda n: (balanced(candidates[n], rest), -names.index(n)))
        picks[best] += 1
        held_out[left_out] = {"chosen": best, "score": candidates[best][left_out]}
    estimate = {k: v["score"] for k, v in held_out.items()}
    return {"shipped": shipped, "subjects": len(subjects), "candidates": figures,
            "chosen_on_all": max(names, key=lambda n: (figures[n]["balanced_mean"], -names.index(n))),
            "nested": {"balanced_mean": balanced(estimate, subjects), "per_vendor": per_vendor(estimate, subjects),
                       "times_chosen": picks, "per_subject": held_out}}


class Runs:
    """Untrimmed predictions per pipeline, computed once."""

    def __init__(self, items, log):
        self.items, self.log, self.pairs = items, log, {}

    def __call__(self, label: str, spec: dict) -> list[tuple]:
        if label not in self.pairs:
            started = time.time()
            self.pairs[label] = untrimmed(spec, self.items)
            self.log(f"{label:60} {len(self.pairs[label]):3} volumes in {time.time() - started:5.0f} s")
        return self.pairs[label]


def product_specs(model: str | None, tta: str = DEFAULT_TTA) -> dict[str, dict]:
    """Per vendor, what the product runs for it: `segment` for the source vendor, the shipped adapter for the others."""
    return {"Philips": {"method": "default", "model": model, "tta": tta, "vendors": ("Philips",)},
            **{v: {"method": "unetgan", "model": model, "adapter": v, "tta": tta, "vendors": (v,)} for v in VENDORS[1:]}}


def product_scores(runs: Runs, label: str, model: str | None, tta: str = DEFAULT_TTA, thresholds=SHIPPED_THRESHOLDS):
    scores = {}
    for vendor, spec in product_specs(model, tta).items():
        scores |= subject_scores(runs(f"{label} / {vendor}", spec), thresholds)
    return scores


def segmenter_choice(runs: Runs, extra: dict[str, str], stored: dict | None = None) -> dict:
    """stored: an earlier run's segmenter choice; its candidates' subject scores are kept when their weight
    files are the same (only the extra candidates then run)."""
    shipped = find_model(None, "segmenter").name
    names = [shipped] + [e.name for e in read_registry() if e.kind == "segmenter" and e.name != shipped]
    files = {name: find_model(extra.get(name, name), "segmenter").file for name in [*names, *extra]}
    candidates = {}
    for name, file in files.items():
        kept = (stored or {}).get("candidates", {}).get(name)
        if kept is not None and stored.get("weights", {}).get(name) == sha256_of(file):
            candidates[name] = kept["per_subject"]
        else:
            candidates[name] = product_scores(runs, f"segmenter {name}", extra.get(name, name))
    result = choice(candidates, shipped)
    result["files"] = {name: file.name for name, file in files.items()}
    result["weights"] = {name: sha256_of(file) for name, file in files.items()}
    return result


def tta_choice(runs: Runs) -> dict:
    shipped = find_model(None, "segmenter").name
    names = [DEFAULT_TTA] + [t for t in TTA_FLIPS if t != DEFAULT_TTA]
    return choice({t: product_scores(runs, f"segmenter {shipped}" if t == DEFAULT_TTA else f"tta {t}", shipped, t)
                   for t in names}, DEFAULT_TTA)


def threshold_choice(runs: Runs) -> dict:
    shipped = find_model(None, "segmenter").name
    label = lambda c, r: f"coverage {c:.2f}, basal ratio {r:.2f}"  # noqa: E731
    cells = [SHIPPED_THRESHOLDS] + [(c, r) for c in COVERAGES for r in BASAL_RATIOS if (c, r) != SHIPPED_THRESHOLDS]
    return choice({label(*cell): product_scores(runs, f"segmenter {shipped}", shipped, DEFAULT_TTA, cell) for cell in cells},
                  label(*SHIPPED_THRESHOLDS))


def held_out_variants(entry, subjects, registered: dict) -> dict[str, str] | None:
    """subject -> the variant of a trained adapter that never saw that subject's images (`NAME-without-SUBJECT`,
    registered for every subject), or None. An adapter trained on the dev subjects' images (no labels) is scored
    on each subject by the variant trained without it, when every such variant is registered; an identity adapter
    saw no images."""
    variants = {subject: f"{entry.name}-without-{subject}" for subject in subjects}
    return None if entry.identity or not all(v in registered for v in variants.values()) else variants


def adapter_choice(runs: Runs, vendor: str) -> dict:
    """Leave-one-subject-out on the vendor's dev subjects: each adapter (with the default segmenter; a subject scored
    with the adapter's variant trained without it where there is one, held_out_variants), histogram matching
    alone, and no translation."""
    shipped = find_model(vendor, "adapter").name
    registered = {e.name: e for e in read_registry() if e.kind == "adapter"}
    adapters = [shipped] + [e.name for e in registered.values() if e.target_vendor == vendor
                            and e.name != shipped and "-without-" not in e.name]  # held-out checks score one subject only
    subjects = sorted({item.subject for item in runs.items if item.vendor == vendor})
    candidates, held_out = {}, []
    for name in adapters:
        spec = {"method": "unetgan", "model": find_model(None, "segmenter").name, "adapter": name, "tta": DEFAULT_TTA,
                "vendors": (vendor,)}
        variants = held_out_variants(registered[name], subjects, registered)
        if variants:
            held_out.append(name)
            candidates[name] = {f"{vendor} {subject}": subject_scores(runs(f"adapter {variant}", spec | {"adapter": variant}))[
                f"{vendor} {subject}"] for subject, variant in variants.items()}
            continue
        label = f"segmenter {spec['model']} / {vendor}" if name == shipped else f"adapter {name}"
        candidates[name] = subject_scores(runs(label, spec))
    candidates["histogram matching only"] = subject_scores(runs(f"histogram matching / {vendor}", {
        "method": "histmatch", "model": find_model(None, "segmenter").name, "tta": DEFAULT_TTA, "vendors": (vendor,)}))
    candidates["no translation"] = subject_scores(runs(f"no translation / {vendor}", {
        "method": "default", "tta": DEFAULT_TTA, "vendors": (vendor,)}))
    result = choice(candidates, shipped)
    result["translation_share"] = translation_share(result)
    result["scored_held_out"] = held_out
    return result


def translation_share(adapter_result: dict) -> float:
    """The GAN's share at test time (README): what the shipped adapter adds to histogram matching alone, subject by
    subject with the same segmenter."""
    return -adapter_result["candidates"]["histogram matching only"]["difference_from_shipped"]["mean"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=FILE",
                        help="a segmenter file to add to the default segmenter's candidates (not registered)")
    parser.add_argument("--only-segmenter", action="store_true",
                        help="measure the default segmenter's choice only (new candidates; the stored ones are kept "
                             "when their weights are the same), keeping the other choices from the JSON")
    args = parser.parse_args()
    extra = dict(text.split("=", 1) for text in args.candidate)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    def log(text):
        print(text, flush=True)

    try:
        runs = Runs(dev_items(args.manifest), log)
        path = out / "choice_cv.json"
        if args.only_segmenter:
            result = json.loads(path.read_text())
            result["segmenter"] = segmenter_choice(runs, extra, result["segmenter"])
        else:
            result = {"segmenter": segmenter_choice(runs, extra), "tta": tta_choice(runs),
                      "end_slice_thresholds": threshold_choice(runs),
                      "adapter": {vendor: adapter_choice(runs, vendor) for vendor in VENDORS[1:]}}
    except InputError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    cpu = cpu_description()
    result["provenance"] = {"command": f"python {' '.join(sys.argv)}", "cpu": cpu, "runtime": resolve_runtime("auto", "cpu"),
                            "seconds": round(time.time() - started, 1),
                            "weights": {e.name: e.sha256 for e in read_registry() if e.sha256}
                            | {name: sha256_of(Path(file)) for name, file in extra.items()}}
    path.write_text(json.dumps(result, indent=1))
    from choice_cv_report import write_markdown  # the page, rendered from the JSON alone

    write_markdown(result, out / "choice_cv.md")
    print(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
