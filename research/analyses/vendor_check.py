"""Question: does a vendor classifier take the translations for the source vendor? Answer: docs/vendor_check.md (and .json).

Vendor-classifier check of the translations: docs/vendor_check.md and .json.

    OMP_NUM_THREADS=1 python research/analyses/vendor_check.py --manifest ../shared/data/manifest.csv --out docs --steps 600

Siemens: a classifier is trained on real Philips training subjects vs real Siemens
`train_unlabelled` images, and judged on the LV-Unet's 10 Philips validation subjects vs the
Siemens `dev_labelled` images, raw and after each translation. GE (3 patients): one
classifier per patient, trained on the other two patients' images (leave one patient out),
judged on that patient's images; the figures are pooled over the three.
Two classifiers per split, trained the same way with the same seed: the raw one on the network
slices as they are, the texture one on every slice (both vendors, each look) histogram-matched
to the product's source reference (unetgan.vendor_check.matched_slices), so that it cannot
key on grey levels. Each is judged on images seen the way it was trained.
Seeds are fixed; every figure comes from this one command.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # report_files, beside the product tools
from report_files import write_report  # noqa: E402 - scripts/, put on the path above
from unetgan.histogram import load_reference, match_to_reference
from unetgan.inference import adapter_slices, translate_slices
from unetgan.io.images import read_image
from unetgan.io.manifest import read_manifest
from unetgan.methods import SOURCE_HISTOGRAM
from unetgan.preprocess import prepare_volume
from unetgan.registry import find_model, load_adapter, read_registry
from unetgan.runtime import cpu_description
from unetgan.training.datasets import labelled_volumes, split_subjects
from unetgan.vendor_check import (balanced_accuracy, content_mask, matched_slices, source_look_rate,
                                  train_vendor_classifier)


def registered_adapters(vendor: str) -> list[str]:
    """Every adapter the registry has for this vendor, the shipped one (the vendor's first) first; the held-out
    check's adapters (trained without one patient, for that patient only) are not for all of the vendor's images."""
    return [e.name for e in read_registry() if e.kind == "adapter" and (e.target_vendor or "").lower() == vendor.lower()
            and "-without-" not in e.name]


# the product's accuracy goals for the shipped adapters (the vendor's first registered one)
GOALS = {"raw": 0.60, "texture": 0.30, "real Philips": 0.90}
REAL_PHILIPS = "real Philips (validation subjects)"
CLASSIFIERS = ("raw", "texture")


def volumes_of(manifest, vendor, splits, subjects=None):
    """(array, spacing) per 3D volume; cines give one volume per frame."""
    out = []
    for item in read_manifest(manifest, [vendor], splits, subjects=subjects):
        image = read_image(item.image)
        out += [(frame, image.geometry.spacing) for frame in image.frames]
    return out


@dataclass
class Views:
    """The same slices as each classifier sees them: raw network slices, and histogram-matched (texture)."""

    raw: torch.Tensor
    texture: torch.Tensor

    def __getitem__(self, classifier: str) -> torch.Tensor:
        return getattr(self, classifier)

    @property
    def n(self) -> int:
        return int(self.raw.shape[0])


def views(volumes, look, reference) -> Views:
    """Each volume through the look, then (texture view) its network slices matched to the source reference."""
    raw, texture = [], []
    for array, spacing in volumes:
        slices = look(array, spacing)
        raw.append(slices)
        texture.append(matched_slices(slices, content_mask(array.shape, spacing), reference))
    return Views(torch.cat(raw), torch.cat(texture))


def plain_slices(array, spacing) -> torch.Tensor:
    return prepare_volume(array, spacing)[0]


def looks(adapters: list[str], reference) -> dict:
    """Name -> function (array, spacing) -> network slices: raw, histogram-matched, each adapter's translation."""
    out = {"no translation": plain_slices,
           "histogram matching": lambda a, s: prepare_volume(match_to_reference(a, reference), s)[0]}
    for name in adapters:
        generator = load_adapter(name)
        out[f"{name} ({find_model(name, 'adapter').sha256[:8]})"] = (
            lambda a, s, g=generator: translate_slices(g, adapter_slices(a, s, g), "cpu"))
    return out


def philips_views(manifest, reference) -> tuple[Views, Views]:
    """Real Philips slices: the LV-Unet's training subjects (to train on) and its 10 validation subjects."""
    volumes = labelled_volumes(manifest, ["Philips"], ["train_labelled"], progress=False)
    _, val_ids = split_subjects([v.subject for v in volumes], 10, 0)  # the LV-Unet's own split
    part = {False: [], True: []}
    for v in volumes:
        part[v.subject in val_ids].append((v.image.array, v.image.geometry.spacing))
    return views(part[False], plain_slices, reference), views(part[True], plain_slices, reference)


def train_both(source: Views, target: Views, steps: int) -> dict:
    """The raw and the texture classifier: the same procedure and seed, on the two views of the same slices."""
    return {c: train_vendor_classifier(source[c], target[c], steps=steps, progress=True) for c in CLASSIFIERS}


def siemens_rows(manifest, steps, reference, source_train: Views, source_test: Views) -> dict:
    classifiers = train_both(source_train, views(volumes_of(manifest, "Siemens", ["train_unlabelled"]), plain_slices, reference),
                             steps)
    test = volumes_of(manifest, "Siemens", ["dev_labelled"])
    rows = {}
    for name, look in looks(registered_adapters("Siemens"), reference).items():
        judged = views(test, look, reference)
        rows[name] = {"n_slices": judged.n}
        for c in CLASSIFIERS:
            rows[name][key(c, "balanced_accuracy")] = balanced_accuracy(classifiers[c], source_test[c], judged[c])
            rows[name][key(c, "source_look_rate")] = source_look_rate(classifiers[c], judged[c])
    rows[REAL_PHILIPS] = {"n_slices": source_test.n, **{key(c, "source_look_rate"): source_look_rate(classifiers[c], source_test[c])
                                                         for c in CLASSIFIERS}}
    return rows


def ge_rows(manifest, steps, reference, source_train: Views, source_test: Views) -> dict:
    """Leave one GE patient out: per patient, classifiers that never saw that patient's images."""
    patients = [i.subject for i in read_manifest(manifest, ["GE"], ["dev_labelled"])]
    frames = {p: volumes_of(manifest, "GE", ["dev_labelled"], subjects=[p]) for p in patients}
    votes: dict[str, dict[str, list]] = {}
    source_rates = {c: [] for c in CLASSIFIERS}
    for held_out in patients:
        others = [views(frames[p], plain_slices, reference) for p in patients if p != held_out]
        classifiers = train_both(source_train, Views(*(torch.cat([o[c] for o in others]) for c in CLASSIFIERS)), steps)
        for c in CLASSIFIERS:
            source_rates[c].append(source_look_rate(classifiers[c], source_test[c]))
        for name, look in looks(registered_adapters("GE"), reference).items():
            judged = views(frames[held_out], look, reference)
            for c in CLASSIFIERS:
                votes.setdefault(name, {}).setdefault(c, []).append((source_look_rate(classifiers[c], judged[c]), judged.n))
    source_rate = {c: sum(r) / len(r) for c, r in source_rates.items()}
    rows = {}
    for name, per_classifier in votes.items():
        rows[name] = {"n_slices": sum(n for _, n in per_classifier["raw"])}
        for c, entries in per_classifier.items():
            rate = sum(r * n for r, n in entries) / rows[name]["n_slices"]
            rows[name][key(c, "balanced_accuracy")] = 0.5 * (source_rate[c] + 1 - rate)
            rows[name][key(c, "source_look_rate")] = rate
    rows[REAL_PHILIPS] = {"n_slices": source_test.n, **{key(c, "source_look_rate"): source_rate[c] for c in CLASSIFIERS}}
    return rows


def key(classifier: str, figure: str) -> str:
    """The raw classifier's figures keep their original JSON keys; the texture classifier's get a prefix."""
    return figure if classifier == "raw" else f"{classifier}_{figure}"


def goal_checks(rows: dict, shipped: str) -> dict:
    """The accuracy goals for the shipped adapter, checked against the figures in `rows` (the JSON's)."""
    checks = {f"translations, {c} classifier": (rows[shipped][key(c, "source_look_rate")], GOALS[c]) for c in CLASSIFIERS}
    checks.update({f"real Philips, {c} classifier": (rows[REAL_PHILIPS][key(c, "source_look_rate")], GOALS["real Philips"])
                   for c in CLASSIFIERS})
    return {"adapter": shipped, "checks": {name: {"taken_for_philips": rate, "goal": goal, "met": rate >= goal}
                                           for name, (rate, goal) in checks.items()}}


def shipped_row(rows: dict, adapter: str) -> str:
    """The row of the vendor's shipped adapter (rows are named 'NAME (SHA256 prefix)')."""
    return next(name for name in rows if name.split(" (")[0] == adapter)


def on_cpu(report: dict) -> str:
    """Where the figures were made: another CPU's floating-point kernels train slightly different classifiers."""
    cpu = report.get("cpu")
    if cpu is None:
        return ""
    return (f" on {cpu['model']} ({cpu['instruction_set']}, {'with' if cpu['vnni'] else 'without'} VNNI; the classifiers "
            "train a little differently on CPUs with other floating-point kernels, so the rates move by a few points there)")


def markdown(report: dict) -> str:
    lines = ["# Vendor-classifier check of the translations", "",
             "Made by `" + report["command"] + "` (seeds fixed)" + on_cpu(report) + ". Two small CNNs per vendor are trained on real Philips vs "
             "real target-vendor images (never on translated ones) and judge held-out images. The **raw classifier** sees "
             "the network slices as they are. The **texture classifier** is trained and judged the same way, but every "
             "image it sees (both vendors' real images and each translation's output) is first histogram-matched to the "
             "product's Philips reference histogram, so grey levels cannot tell the vendors apart and it has to go by "
             "texture. Both judge with BatchNorm statistics averaged over 100 balanced training batches after training "
             "(not the moving average of the last batches, which made the verdicts swing from seed to seed). "
             "**Balanced accuracy** 1.0 = real Philips and these images are told apart perfectly, 0.5 = they "
             "cannot be told apart; **taken for Philips** = share of these images the classifier takes for Philips. "
             "See `research/analyses/vendor_check.py` for the splits (GE: leave one patient out).", "",
             f"Accuracy goals for the shipped adapters' translations: taken for Philips on at least {GOALS['raw']:.0%} of "
             f"slices by the raw classifier and on at least {GOALS['texture']:.0%} by the texture classifier, while real "
             f"Philips slices are taken for Philips at least {GOALS['real Philips']:.0%} of the time by both.", ""]
    for vendor, rows in report["vendors"].items():
        lines += [f"## {vendor}", "",
                  "| images | raw classifier: balanced accuracy | raw: taken for Philips | texture classifier: balanced accuracy "
                  "| texture: taken for Philips | slices |", "|---|---|---|---|---|---|"]
        for name, row in rows.items():
            cells = []
            for c in CLASSIFIERS:
                acc = row.get(key(c, "balanced_accuracy"))
                cells += ["-" if acc is None else f"{acc:.3f}", f"{row[key(c, 'source_look_rate')]:.3f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['n_slices']} |")
        goals = report["goals"][vendor]
        verdicts = [f"{name} {check['taken_for_philips']:.1%} (goal {check['goal']:.0%}): "
                    f"**{'met' if check['met'] else 'not met'}**" for name, check in goals["checks"].items()]
        lines += ["", f"Goals for the shipped adapter, {goals['adapter']}, taken for Philips: " + "; ".join(verdicts) + ".", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    report = {"command": f"python research/analyses/vendor_check.py --manifest {args.manifest} --out {args.out} --steps {args.steps}",
              "cpu": cpu_description(), "goal_thresholds": GOALS, "vendors": {}, "goals": {}}
    reference = load_reference(SOURCE_HISTOGRAM)
    source = philips_views(args.manifest, reference)
    report["vendors"]["Siemens"] = siemens_rows(args.manifest, args.steps, reference, *source)
    report["vendors"]["GE"] = ge_rows(args.manifest, args.steps, reference, *source)
    for vendor, rows in report["vendors"].items():
        report["goals"][vendor] = goal_checks(rows, shipped_row(rows, registered_adapters(vendor)[0]))
    report["seconds"] = round(time.time() - started, 1)
    write_report(args.out, "vendor_check", report, markdown(report))


if __name__ == "__main__":
    main()
