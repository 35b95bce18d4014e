"""Regenerate docs/results.md (the paper's Table 1 on the real data) with its JSON and figures.

    python scripts/results.py --manifest ../shared/data/manifest.csv --out docs

Rows: Philips (the LV-Unet's own validation subjects, never trained on), Siemens
(`dev_labelled`), GE (Sunnybrook contours). Columns: every method below. Models come
from the registry (Resources/Models/models.json) unless given as files: the shipped registry, then the research registry (research/models.json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from unetgan.evaluate_run import evaluate_manifest
from unetgan.evaluation import summarise
from unetgan.figures import before_after_row, comparison_rows
from unetgan.io.manifest import load_item, read_manifest
from unetgan.io.sunnybrook import cine_phase_names
from unetgan.methods import make_segmenter, segmenter_name, weight_files
from unetgan import postprocess
from unetgan.registry import find_model, load_adapter, load_lvunet, paired_segmenter
from unetgan.tta import DEFAULT_TTA

ROWS = {"Philips": ["train_labelled"], "Siemens": ["dev_labelled"], "GE": ["dev_labelled"]}
GE_PATIENTS = ("SCD0000101", "SCD0000201", "SCD0000301")


def measured_alike(cell: dict | None, tta: str, weights) -> bool:
    """A cell of an earlier run (--reuse) measured as this run would: same flip averaging, same clean-up, same
    weight files (a re-registered or newly shipped model is measured again)."""
    return (cell is not None and cell.get("tta", "none") == tta
            and cell.get("postprocessing") == postprocess.description() and cell.get("weights") == weights)


def columns(args) -> dict[str, dict]:
    """Column name -> evaluate_manifest keyword arguments (adapter given per target vendor)."""
    # the product's columns run its default test-time augmentation (tta.py); the comparison columns run
    # without it, as they were first measured (one flip per slice)
    cols = {
        "default (`segment`)": {"method": "default", "tta": DEFAULT_TTA},
        "clean Unet": {"method": "clean"},
        "noisy Unet": {"method": "noisy"},
        "augmented Unet": {"method": "augment"},
        "robust Unet": {"method": "robust"},
        "histogram matching": {"method": "histmatch"},
        "augmented Unet + hist. matching": {"method": "histmatch", "model": "lvunet-augment"},
        "robust Unet + hist. matching": {"method": "histmatch", "model": "lvunet-robust"},
        "Unet-GAN, clean Unet (first adapters)": {"method": "unetgan", "adapter": "adapter-{vendor}-clean-unet"},
        "Unet-GAN, augmented Unet (second adapters)": {"method": "unetgan", "adapter": "adapter-{vendor}-augment-unet"},
        # the GAN's own share: the shipped pipeline with and without its generator G_S (same LV-Unet)
        "shipped pipeline without G_S (its LV-Unet + hist. matching)": {"method": "histmatch", "model": "{paired}",
                                                                        "tta": DEFAULT_TTA},
        "Unet-GAN (shipped: `adapt-segment --adapter V`)": {"method": "unetgan", "adapter": "{vendor}", "tta": DEFAULT_TTA},
        # what four flips (4x the segmenter's time) would add to the default one pass ...
        "default, `--tta flip4`": {"method": "default", "tta": "flip4"},
        "Unet-GAN (shipped), `--tta flip4`": {"method": "unetgan", "adapter": "{vendor}", "tta": "flip4"},
        # ... and the earlier defaults (lvunet-robust with four flips), the same adapters
        "lvunet-robust, `--tta flip4` (an earlier default)": {"method": "robust", "tta": "flip4"},
        "Unet-GAN, lvunet-robust, `--tta flip4` (shipped earlier)": {
            "method": "unetgan", "adapter": "{vendor}", "model": "lvunet-robust", "tta": "flip4"},
    }
    # the shipped Siemens adapter is distilled from a trained one (docs/models.md): the teacher, for the
    # distillation's cost and as the reference of the ablations below (trained like it)
    if adapter_available("adapter-siemens") and find_model("Siemens", "adapter").name != "adapter-siemens":
        cols["Unet-GAN, the trained adapter the shipped one is distilled from"] = {
            "method": "unetgan", "adapter": "adapter-siemens", "only": "Siemens", "tta": DEFAULT_TTA}
    # the extra adapters of research/recipes/adapter_ablation_runs.sh, from the registry (or given as files)
    # held out: the shipped GE adapter's own recipe run without each patient where registered (an identity
    # adapter saw nothing: then the ablation runs without each patient)
    candidates = [{patient: f"{name}-without-{patient}" for patient in GE_PATIENTS}
                  for name in dict.fromkeys((adapter_for("GE", "{vendor}"), "adapter-ge"))]
    held_out = (dict(pair.split("=", 1) for pair in args.held_out_ge) if args.held_out_ge else
                next((c for c in candidates if all(adapter_available(a) for a in c.values())), None))
    if held_out and all(adapter_available(adapter) for adapter in held_out.values()):
        cols["Unet-GAN, GE adapter trained without the patient (held out)"] = {
            "method": "unetgan", "held_out": held_out, "only": "GE", "tta": DEFAULT_TTA}
    if args.paper_adapter:
        cols["Unet-GAN (paper losses, raw input)"] = {"method": "unetgan", "adapter": args.paper_adapter, "only": "Siemens"}
    for name, given, registered in (("Unet-GAN w/o feature loss", args.ablation_no_feature, "adapter-siemens-no-feature-loss"),
                                    ("Unet-GAN with L1 cycle loss", args.ablation_l1, "adapter-siemens-l1-cycle")):
        if given or adapter_available(registered):
            cols[name] = {"method": "unetgan", "adapter": given or registered, "only": "Siemens", "tta": DEFAULT_TTA}
    return cols


def model_available(name: str, kind: str = "segmenter") -> bool:
    try:
        find_model(name, kind)
        return True
    except Exception:
        return False


def adapter_available(name: str) -> bool:
    return model_available(name, "adapter")


def adapter_for(vendor: str, spec: str) -> str | None:
    if "{vendor}" not in spec:
        return spec
    if vendor == "Philips":  # source images through the Siemens adapter: does it keep anatomy?
        vendor = "Siemens"
    try:
        return find_model(spec.replace("{vendor}", vendor.lower() if spec != "{vendor}" else vendor), "adapter").name
    except Exception:
        return None


def held_out_report(manifest, vendor: str, adapters: dict[str, str], tta: str) -> dict:
    """Each subject segmented through an adapter whose training never saw that subject's images."""
    t, per_volume = time.time(), []
    for subject, adapter in adapters.items():
        report = evaluate_manifest(manifest, [vendor], ROWS[vendor], "unetgan", adapter=adapter, subjects=[subject],
                                   progress=False, quiet=True, tta=tta)
        per_volume += report["per_volume"]
    return {"method": "unetgan", "adapter": adapters, "tta": tta, "postprocessing": postprocess.description(),
            "weights": {subject: weight_files("unetgan", None, adapter) for subject, adapter in adapters.items()},
            "summary": summarise(per_volume), "per_volume": per_volume, "seconds": round(time.time() - t, 1)}


def cell(summary: dict, key: str) -> str:
    entry = summary[key]
    return "-" if entry["mean"] is None else f"{entry['mean']:.3f} ± {entry['sd']:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    parser.add_argument("--paper-adapter", help="Siemens adapter trained on raw (not histogram-matched) images")
    parser.add_argument("--ablation-no-feature", help="adapter file trained with --no-feature-loss (Siemens)")
    parser.add_argument("--ablation-l1", help="adapter file trained with --cycle-loss l1 (Siemens)")
    parser.add_argument("--held-out-ge", nargs="*", metavar="SUBJECT=ADAPTER",
                        help="GE adapters trained without one patient each (--target-exclude), for a held-out GE column")
    parser.add_argument("--vendors", nargs="*", default=list(ROWS))
    parser.add_argument("--reuse", action="store_true", help="keep cells already in results.json; compute only the missing ones")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    validation = load_lvunet("lvunet-clean").metadata["validation_subjects"]
    results, started = {}, time.time()
    if args.reuse and (out / "results.json").exists():
        listed = columns(args)  # a column no longer listed is dropped, not carried along unseen
        results = {vendor: {name: report for name, report in row.items() if name in listed}
                   for vendor, row in json.loads((out / "results.json").read_text()).items()}
    for vendor in args.vendors:
        subjects = validation if vendor == "Philips" else None
        for name, spec in columns(args).items():  # noqa: PLR1702
            if spec.get("only") and spec["only"] != vendor:
                continue
            adapter = adapter_for(vendor, spec["adapter"]) if "adapter" in spec else None
            if spec["method"] == "unetgan" and adapter is None and "held_out" not in spec:
                continue
            tta = spec.get("tta", "none")
            if "held_out" in spec:
                weights = {subject: weight_files("unetgan", None, a) for subject, a in spec["held_out"].items()}
                if not measured_alike(results.get(vendor, {}).get(name), tta, weights):
                    results.setdefault(vendor, {})[name] = held_out_report(args.manifest, vendor, spec["held_out"], tta)
                    print(f"{vendor:8} {name:30} mean Dice {cell(results[vendor][name]['summary'][vendor], 'mean')}", flush=True)
                continue
            model = spec.get("model")
            if model == "{paired}":
                shipped = adapter_for(vendor, "{vendor}")
                model = paired_segmenter(load_adapter(shipped)) if shipped else None
                if model is None:
                    continue
            needed = segmenter_name(spec["method"], model)
            if needed and not model_available(needed):
                print(f"{vendor:8} {name:30} skipped: {needed} is not in the registry")
                continue
            if measured_alike(results.get(vendor, {}).get(name), tta, weight_files(spec["method"], model, adapter)):
                continue
            t = time.time()
            report = evaluate_manifest(args.manifest, [vendor], ROWS[vendor], spec["method"], model=model,
                                       adapter=adapter, subjects=subjects, progress=False, quiet=True, tta=tta)
            report["seconds"] = round(time.time() - t, 1)
            results.setdefault(vendor, {})[name] = report
            (out / "results.json").write_text(json.dumps(results, indent=1))  # a long run keeps what it has measured
            s = report["summary"][vendor]
            print(f"{vendor:8} {name:30} mean Dice {cell(s, 'mean')}  EF MAE {s['ejection_fraction']['mae']}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / "results.md", args)
    write_figures(args, out / "images")
    print(f"done in {time.time() - started:.0f} s")
    return 0


def write_markdown(results: dict, path: Path, args) -> None:
    names = list(columns(args))
    lines = ["# Results on the real data", "",
             "Regenerate with `make results` (= `python scripts/results.py --manifest ../shared/data/manifest.csv --out docs`;",
             "the held-out GE and ablation columns appear once the adapters of `research/recipes/adapter_ablation_runs.sh` are",
             "registered, docs/models.md). This page was made by",
             f"`python {' '.join(sys.argv)}`" + (" (`--reuse`: the cells already in results.json were kept, as the "
                                                 "full command last computed them; only this text was written again)."
                                                 if args.reuse else "."),
             "3D Dice per volume (subject x phase), mean ± sd over volumes. Philips: the LV-Unet's 10 validation",
             "subjects (never trained on). Siemens: `dev_labelled` (10 subjects, ED + ES). GE: the 3 Sunnybrook",
             "patients, contoured slices only (myocardium only on slices with both contours).",
             "Every column runs the product's own cine path (heart box on): `default` is exactly `unetgan segment`,",
             "the Unet-GAN columns exactly `unetgan adapt-segment --adapter V`; GE cines run whole and their contoured",
             "frames are scored. **How the mean is formed:** per volume, the average of the blood-pool and myocardium",
             "Dice; a volume without any myocardium label (GE ES frames) has no mean and is left out of the mean",
             "table (its blood pool still counts in the blood-pool table). `n` counts all volumes.",
             f"**Test-time augmentation:** the product's columns ({', '.join(f'`{n}`' for n in names if columns(args)[n].get('tta') == DEFAULT_TTA)})",
             f"run its default `--tta {DEFAULT_TTA}` (unetgan/tta.py: one pass of the LV-Unet per slice; the default segmenter",
             "was made to give in one pass what four flips give, docs/models.md); the comparison columns run without test-",
             "time augmentation too, as first measured. The `--tta flip4` columns show what averaging over the four flips",
             "(4x the segmenter's time) would add, and the two `earlier` columns the previous defaults",
             "(`lvunet-robust` with four flips, the same adapters) measured in the same run.",
             f"**Clean-up after the network** (every column, as the product does it): {postprocess.description()}",
             "(unetgan/postprocess.py; thresholds chosen on Philips training subjects with the default segmenter of the",
             "day, docs/end_slices.md; what each choice measured on these dev data: docs/models.md, 'End-slice clean-up').", ""]
    for key, title in (("mean", "Mean of blood pool and myocardium"), ("blood_pool", "LV blood pool"), ("myocardium", "Myocardium")):
        lines += [f"## Dice: {title}", "", "| vendor | n | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for vendor, row in results.items():
            n = next(iter(row.values()))["summary"][vendor]["n"]
            lines.append(f"| {vendor} | {n} | " + " | ".join(cell(row[c]["summary"][vendor], key) if c in row else "-" for c in names) + " |")
        lines.append("")
    lines += ["## Ejection fraction agreement (from each subject's ED/ES pair)", "",
              "EF from the blood-pool voxel counts of the ED and ES volumes (a ratio: valid where slice spacing is unknown).",
              "MAE in EF percentage points, Pearson r against the expert labels.", "",
              "| vendor | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for vendor, row in results.items():
        cells = []
        for c in names:
            ef = row[c]["summary"][vendor]["ejection_fraction"] if c in row else None
            if not ef or ef["mae"] is None:
                cells.append("-")
            else:
                r = "-" if ef["pearson_r"] is None else f"{ef['pearson_r']:.2f}"
                cells.append(f"MAE {ef['mae']:.1f}, r {r} (n={ef['n_subjects']})")
        lines.append(f"| {vendor} | " + " | ".join(cells) + " |")
    lines += ["", "## Does the translation keep anatomy?", "",
              "Dice between the LV-Unet's masks of the translated image and of the untranslated image. On the source",
              "vendor (Philips) the two should agree: the adapter must not invent or remove anatomy. On a target vendor",
              "the untranslated masks are the poor ones the adaptation is meant to fix, so disagreement is expected there.", ""]
    for vendor, row in results.items():
        for c in names:
            if c in row and row[c]["per_volume"] and "dice_translated_vs_original" in row[c]["per_volume"][0]:
                values = [v["dice_translated_vs_original"] for v in row[c]["per_volume"]]
                lines.append(f"- {vendor}, {c}: {np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}")
    lines += ["", "## Notes", "",
              "- `default (`segment`)`: the registry's default LV-Unet on the raw image, exactly `unetgan segment`.",
              "- The GAN's own share is the difference between the last two columns: the shipped pipeline with and",
              "  without its generator G_S (same LV-Unet, same histogram matching). docs/vendor_check.md judges the",
              "  translations themselves with a vendor classifier.",
              "- Philips through an adapter: the Siemens adapter applied to Philips images; the masks should stay",
              "  those of the same LV-Unet on the untranslated images (anatomy check above).",
              "- GE: 3 patients only. ES frames have endocardial contours only (no myocardium, no mean). The GE",
              "  adapters trained on these patients' images (never their contours), so their GE rows are transductive;",
              "  the LV-Unets never saw a GE image. Sunnybrook contours are 1-based pixel coordinates",
              "  (docs/sunnybrook_contour_offset.json); docs/ge_myocardium.md analyses the myocardium per slice position.",
              "- EF on GE: with 3 subjects, one failed ED segmentation dominates the MAE; read it as 'fails on one of three'.",
              "- Adapters are chosen by the label-free criterion (docs/models.md); dev labels are used here only.",
              "", *robustness_section(path.parent / "robustness.json"), "## Figures", ""]
    for vendor in results:
        lines.append(f"![{vendor}](images/results_{vendor}.png)")
    path.write_text("\n".join(lines) + "\n")


def robustness_section(source: Path) -> list[str]:
    """The robustness tables (docs/robustness.json, made by scripts/robustness.py before this page in `make results`)."""
    if not source.exists():
        return []
    from robustness_report import kind_table, variant_table  # the same tables as docs/robustness.md

    result = json.loads(source.read_text())
    dev_vendors = tuple(sorted({v for e in result["dev_variants"].values() for v in e["segment"]["per_vendor"]}))
    return ["## Robustness: acquisition protocols and kinds of heart", "",
            "Mean Dice per protocol variant (dev volumes resampled to another protocol; the phantom simulated in it) and "
            "Dice and EF error per kind of heart, from [robustness.json](robustness.json); how each variant and group is "
            "made, and the worst volumes of each: [robustness.md](robustness.md).", "",
            "**Protocol variants of the dev data** (10 Philips validation and 10 Siemens dev subjects, ED and ES):", "",
            *variant_table(result["dev_variants"], dev_vendors), "",
            "**Protocol variants of the phantom** (3 normal hearts per vendor profile):", "",
            *variant_table(result["phantom_variants"], ("Philips", "Siemens")), "",
            "**Kinds of heart, phantom** (3 subjects of each kind per vendor profile; EF in points, bias found minus true):", "",
            *kind_table(result["phantom_kinds"], "kind of heart"), "",
            "**Dev subjects grouped by their expert labels** (volumes and wall thickness; robustness.md lists each subject):",
            "", *kind_table(result["dev_kinds"]["groups"], "group"), ""]


def write_figures(args, folder: Path) -> None:
    clean = make_segmenter("clean")
    for vendor in args.vendors:
        adapter = adapter_for(vendor, "{vendor}")
        if adapter is None:
            continue
        adapted = make_segmenter("unetgan", adapter=adapter)
        rows = []
        items = read_manifest(args.manifest, [vendor], ROWS[vendor], require_labels=True)
        if vendor == "Philips":
            validation = set(load_lvunet("lvunet-clean").metadata["validation_subjects"])
            items = [i for i in items if i.subject in validation]
        for item in items[:2]:
            rows.append(before_after_row(cine_phase_names(load_item(item))[0], clean, adapted))
        comparison_rows(rows, folder / f"results_{vendor}.png", f"{vendor}: clean Unet vs Unet-GAN")


if __name__ == "__main__":
    raise SystemExit(main())
