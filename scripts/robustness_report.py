"""docs/robustness.md from docs/robustness.json alone (scripts/robustness.py measures and calls this).

    python scripts/robustness_report.py docs/robustness.json docs/robustness.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

FLOOR = 0.75  # the mean Dice no protocol variant of the dev data should fall under


def number(value, fmt=".3f") -> str:
    return "-" if value is None else format(value, fmt)


def worst_text(entry: dict) -> str:
    return "; ".join(f"{w['vendor']} {w['subject']} {w['phase']} {w['mean']:.3f} (pool {w['blood_pool']:.3f}, "
                     f"myo {w['myocardium']:.3f})" for w in entry["worst"])


def variant_table(variants: dict, vendors: tuple[str, ...]) -> list[str]:
    lines = ["| variant | n | `segment`: pool | myo | mean | " + " | ".join(f"{v} mean" for v in vendors)
             + " | `adapt-segment` (Siemens): pool | myo | mean | worst volume, `segment` |",
             "|---|---|---|---|---|" + "---|" * len(vendors) + "---|---|---|---|"]
    for name, entry in variants.items():
        seg, adapt = entry["segment"], entry.get("adapt-segment")
        cells = [name, str(seg["all"]["n"]), *(number(seg["all"][k]) for k in ("blood_pool", "myocardium", "mean")),
                 *(number(seg["per_vendor"].get(v, {}).get("mean")) for v in vendors),
                 *(number(adapt["all"][k]) if adapt else "-" for k in ("blood_pool", "myocardium", "mean")),
                 "{w[vendor]} {w[subject]} {w[phase]} {w[mean]:.3f}".format(w=seg["worst"][0])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def floor_line(variants: dict) -> str:
    lowest = min(((entry[p]["all"]["mean"], name, p) for name, entry in variants.items()
                  for p in ("segment", "adapt-segment") if p in entry))
    lowest_volume = min(((w["mean"], name, p, w) for name, entry in variants.items()
                         for p in ("segment", "adapt-segment") if p in entry for w in entry[p]["worst"][:1]),
                        key=lambda t: t[0])
    verdict = "no variant's mean is under" if lowest[0] >= FLOOR else "**under**"
    w = lowest_volume[3]
    return (f"Lowest variant mean: {lowest[0]:.3f} ({lowest[1]}, `{lowest[2]}`): {verdict} {FLOOR}. "
            f"Lowest single volume: {w['mean']:.3f} ({w['vendor']} {w['subject']} {w['phase']}, {lowest_volume[1]}, "
            f"`{lowest_volume[2]}`).")


def worst_lists(variants: dict) -> list[str]:
    lines = []
    for name, entry in variants.items():
        for pipeline in ("segment", "adapt-segment"):
            if pipeline in entry:
                lines.append(f"- {name}, `{pipeline}`: {worst_text(entry[pipeline])}")
    return lines


def variant_section(variants: dict, vendors: tuple[str, ...], notes: list[str], worst_heading: str) -> list[str]:
    """A section on protocol variants: their table, any notes on it, the floor verdict and each variant's worst volumes."""
    return [*variant_table(variants, vendors), "", *notes, floor_line(variants), "",
            worst_heading, "", *worst_lists(variants), ""]


def kind_table(kinds: dict, first_column: str) -> list[str]:
    lines = [f"| {first_column} | pipeline | subjects | pool | myo | mean | worst volume | EF: true | found | MAE | bias | "
             "largest error |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, entry in kinds.items():
        for pipeline, row in entry.items():
            if pipeline == "seconds":
                continue
            if not row["n_subjects"]:
                lines.append(f"| {kind} | `{pipeline}` | 0 |" + " - |" * 9)
                continue
            d = row["dice"]
            lines.append(f"| {kind} | `{pipeline}` | {row['n_subjects']} | {d['blood_pool']:.3f} | {d['myocardium']:.3f} | "
                         f"{d['mean']:.3f} | {row['worst_mean']:.3f} | {number(row.get('ef_expert_mean'), '.1f')} | "
                         f"{number(row.get('ef_found_mean'), '.1f')} | {number(row['ef_mae'], '.1f')} | "
                         f"{number(row['ef_bias'], '+.1f')} | {number(row['ef_worst'], '+.1f')} |")
    return lines


def write_markdown(result: dict, path: Path) -> None:
    prov = result.get("provenance", {})
    lines = ["# Robustness: protocols and kinds of heart", "",
             ("Regenerate with the command below (a research segmenter: not part of `make results`). This page was made by"
              if prov.get("model") else
              "Regenerate with `make results` (it runs `python scripts/robustness.py --manifest ../shared/data/manifest.csv "
              "--out docs` before scripts/results.py, whose page repeats its tables). This page was made by"),
             f"`{prov.get('command', '?')}` on {prov.get('cpu', '?')} "
             f"in {number(prov.get('seconds'), '.0f')} s; every figure is in [{path.stem}.json]({path.stem}.json).", "",
             *([f"**A research segmenter in place of the default one: `{prov['model']}`** (not shipped; docs/models.md).",
                ""] if prov.get("model") else []),
             "What is measured is what a user gets: `segment` (the default segmenter) and `adapt-segment` with the shipped",
             "adapter of the vendor (Siemens only: Philips is the source vendor), each volume through the product's own",
             f"path, test-time augmentation `{prov.get('tta', '?')}`, the product's clean-up. 3D Dice per volume (blood pool,",
             "myocardium, their mean), averaged over volumes; EF error is predicted minus expert EF in percentage points,",
             "from each subject's ED and ES blood pools (a ratio, valid where the slice spacing is unknown).", ""]
    if "dev_variants" in result:
        vendors = tuple(sorted({v for e in result["dev_variants"].values() for v in e["segment"]["per_vendor"]}))
        lines += ["## Protocol variants of the dev data", "",
                  "The LV-Unet's 10 Philips validation subjects and the 10 Siemens `dev_labelled` subjects, ED and ES",
                  "(GE's Sunnybrook cines are left out: contoured frames only). Each image is resampled to imitate",
                  "another protocol, with its expert labels where the grid changes. **The M&Ms headers state 1 x 1 x 1 mm",
                  "voxels (the true slice spacing is lost), so the variants are stated relative to the stored grid:**",
                  "'2x thicker' slices widen each slice's profile to cover half of each neighbour (weights 1/4, 1/2, 1/4) on",
                  "the same positions, the labels those of the slice centres; 'every other slice' doubles the spacing;",
                  "'coarser' pixels are smoothed, downsampled 1.5x and resampled back on the stored grid (labels unchanged);",
                  "'finer' pixels are 1.4x more over the same field of view (labels by nearest neighbour); 'off centre'",
                  "crops a field of view of 70 % of the matrix with the heart 6 pixels from its corner.", "",
                  *variant_section(result["dev_variants"], vendors,
                                   ["The stored-grid row is the same volumes and path as docs/results.md's `segment` and "
                                    "shipped `adapt-segment` columns.", ""],
                                   "Worst volumes per variant (mean Dice; blood pool, myocardium):")]
    if "phantom_variants" in result:
        lines += ["## Protocol variants of the phantom", "",
                  "Simulated studies (unetgan.phantom) of 3 normal hearts on the Philips and the Siemens profiles, ED and ES",
                  "frames of an 8-phase cine, each protocol simulated as a scanner would acquire it; 'off centre' crops the",
                  "profile's study as above. The phantom's labels are exact.", "",
                  *variant_section(result["phantom_variants"], ("Philips", "Siemens"), [], "Worst volumes per variant:")]
    if "phantom_kinds" in result:
        lines += ["## Kinds of heart: the phantom", "",
                  "3 subjects of each kind on each of the Philips and Siemens profiles (ED and ES frames of an 8-phase cine;",
                  "`adapt-segment`: the Siemens-profile subjects). EF from the predicted and the true labels of the two frames:",
                  "true and found are the group's means, bias is found minus true.", "",
                  *kind_table(result["phantom_kinds"], "kind of heart"), ""]
    if "dev_kinds" in result:
        kinds = result["dev_kinds"]
        lines += ["## Kinds of heart: the dev subjects grouped by their expert labels", "",
                  "Groups (a subject may be in several; 'other': in none). The M&Ms pixels are stated as 1 mm (about right",
                  "in-plane), so mm here are pixels of the stored grid. The thresholds were set on this set's spread so that",
                  "each group holds a few subjects: few of these 20 subjects reach the clinical mark of a dilated LV (about",
                  "60 mm across) and none that of hypertrophy (a 12 mm wall), so read the groups as this set's largest,",
                  "thickest-walled, smallest and poorest-contracting hearts.", ""]
        lines += [f"- **{name}**: {rule}." for name, rule in kinds["rules"].items()]
        lines += ["", "| subject | ED cavity across (mm) | ED wall (mm) | ED / ES blood pool (voxels) | expert EF | groups |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {t['vendor']} {subject} | {t['ed_diameter_mm']:.1f} | {t['ed_wall_mm']:.1f} | {t['ed_pool_voxels']} / "
                  f"{t['es_pool_voxels']} | {t['expert_ef']:.1f} | {', '.join(t['groups'])} |" for subject, t in kinds["traits"].items()]
        lines += ["", "EF true: the expert labels' mean EF over the group; found: the pipeline's; MAE, bias (found minus true)",
                  "and the largest error in EF points.", "",
                  *kind_table(kinds["groups"], "group"), "",
                  "`adapt-segment` rows count the Siemens subjects only.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    source, target = (Path(a) for a in sys.argv[1:3])
    write_markdown(json.loads(source.read_text()), target)
