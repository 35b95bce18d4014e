"""Question: does a vendor classifier take the translations for the source vendor? Answer: docs/vendor_check.md (and .json).

Vendor-classifier check of the translations: docs/vendor_check.md and .json.

    OMP_NUM_THREADS=1 python research/analyses/vendor_check.py --manifest ../shared/data/manifest.csv --out docs

Siemens: a classifier is trained on real Philips training subjects vs real Siemens
`train_unlabelled` images, and judged on the LV-Unet's 10 Philips validation subjects vs the
Siemens `dev_labelled` images, raw and after each translation. GE (3 patients): one
classifier per patient, trained on the other two patients' images (leave one patient out),
judged on that patient's images; the figures are pooled over the three.
Seeds are fixed; every figure comes from this one command.
"""
from __future__ import annotations

import argparse
import sys
import time
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
from unetgan.training.datasets import labelled_volumes, split_subjects
from unetgan.vendor_check import balanced_accuracy, source_look_rate, train_vendor_classifier



def registered_adapters(vendor: str) -> list[str]:
    """Every adapter the registry has for this vendor, the shipped one (the vendor's first) first; the held-out
    check's adapters (trained without one patient, for that patient only) are not for all of the vendor's images."""
    return [e.name for e in read_registry() if e.kind == "adapter" and (e.target_vendor or "").lower() == vendor.lower()
            and "-without-" not in e.name]


def volumes_of(manifest, vendor, splits, subjects=None):
    """(array, spacing) per 3D volume; cines give one volume per frame."""
    out = []
    for item in read_manifest(manifest, [vendor], splits, subjects=subjects):
        image = read_image(item.image)
        out += [(frame, image.geometry.spacing) for frame in image.frames]
    return out


def network_slices(volumes, look) -> torch.Tensor:
    return torch.cat([look(array, spacing) for array, spacing in volumes])


def plain_slices(array, spacing) -> torch.Tensor:
    return prepare_volume(array, spacing)[0]


def looks(adapters: list[str]) -> dict:
    """Name -> function (array, spacing) -> network slices: raw, histogram-matched, each adapter's translation."""
    reference = load_reference(SOURCE_HISTOGRAM)
    out = {"no translation": plain_slices,
           "histogram matching": lambda a, s: prepare_volume(match_to_reference(a, reference), s)[0]}
    for name in adapters:
        generator = load_adapter(name)
        out[f"{name} ({find_model(name, 'adapter').sha256[:8]})"] = (
            lambda a, s, g=generator: translate_slices(g, adapter_slices(a, s, g), "cpu"))
    return out


def philips_slices(manifest) -> tuple[torch.Tensor, torch.Tensor]:
    """Real Philips network slices: the LV-Unet's training subjects (to train on) and its 10 validation subjects."""
    volumes = labelled_volumes(manifest, ["Philips"], ["train_labelled"], progress=False)
    _, val_ids = split_subjects([v.subject for v in volumes], 10, 0)  # the LV-Unet's own split
    part = {False: [], True: []}
    for v in volumes:
        part[v.subject in val_ids].append((v.image.array, v.image.geometry.spacing))
    return network_slices(part[False], plain_slices), network_slices(part[True], plain_slices)


def siemens_rows(manifest, steps, source_train, source_test) -> dict:
    classifier = train_vendor_classifier(source_train, network_slices(volumes_of(manifest, "Siemens", ["train_unlabelled"]), plain_slices),
                                         steps=steps, progress=True)
    test = volumes_of(manifest, "Siemens", ["dev_labelled"])
    rows = {}
    for name, look in looks(registered_adapters("Siemens")).items():
        slices = network_slices(test, look)
        rows[name] = {"balanced_accuracy": balanced_accuracy(classifier, source_test, slices),
                      "source_look_rate": source_look_rate(classifier, slices), "n_slices": int(slices.shape[0])}
    rows["real Philips (validation subjects)"] = {"source_look_rate": source_look_rate(classifier, source_test),
                                                  "n_slices": int(source_test.shape[0])}
    return rows


def ge_rows(manifest, steps, source_train, source_test) -> dict:
    """Leave one GE patient out: per patient, a classifier that never saw that patient's images."""
    patients = [i.subject for i in read_manifest(manifest, ["GE"], ["dev_labelled"])]
    frames = {p: volumes_of(manifest, "GE", ["dev_labelled"], subjects=[p]) for p in patients}
    votes: dict[str, list] = {}
    for held_out in patients:
        others = torch.cat([network_slices(frames[p], plain_slices) for p in patients if p != held_out])
        classifier = train_vendor_classifier(source_train, others, steps=steps, progress=True)
        source_rate = source_look_rate(classifier, source_test)
        for name, look in looks(registered_adapters("GE")).items():
            slices = network_slices(frames[held_out], look)
            votes.setdefault(name, []).append((source_look_rate(classifier, slices), slices.shape[0], source_rate))
    rows = {}
    for name, entries in votes.items():
        n = sum(e[1] for e in entries)
        rate = sum(e[0] * e[1] for e in entries) / n
        source_rate = sum(e[2] for e in entries) / len(entries)
        rows[name] = {"balanced_accuracy": 0.5 * (source_rate + 1 - rate), "source_look_rate": rate, "n_slices": n}
    rows["real Philips (validation subjects)"] = {"source_look_rate": source_rate, "n_slices": int(source_test.shape[0])}
    return rows


def markdown(report: dict) -> str:
    lines = ["# Vendor-classifier check of the translations", "",
             "Made by `" + report["command"] + "` (seeds fixed). A small CNN is trained on real Philips vs real "
             "target-vendor images (never on translated ones) and judges held-out images: **balanced accuracy** "
             "1.0 = real Philips and these images are told apart perfectly, 0.5 = they cannot be told apart; "
             "**source-look rate** = share of these images taken for Philips. See `research/analyses/vendor_check.py` for "
             "the splits (GE: leave one patient out).", ""]
    for vendor, rows in report["vendors"].items():
        lines += [f"## {vendor}", "", "| images | balanced accuracy | taken for Philips | slices |", "|---|---|---|---|"]
        for name, row in rows.items():
            acc = f"{row['balanced_accuracy']:.3f}" if "balanced_accuracy" in row else "-"
            lines.append(f"| {name} | {acc} | {row['source_look_rate']:.3f} | {row['n_slices']} |")
        lines.append("")
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
              "vendors": {}}
    source = philips_slices(args.manifest)
    report["vendors"]["Siemens"] = siemens_rows(args.manifest, args.steps, *source)
    report["vendors"]["GE"] = ge_rows(args.manifest, args.steps, *source)
    report["seconds"] = round(time.time() - started, 1)
    write_report(args.out, "vendor_check", report, markdown(report))


if __name__ == "__main__":
    main()
