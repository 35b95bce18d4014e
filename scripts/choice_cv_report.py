"""docs/choice_cv.md from docs/choice_cv.json (scripts/choice_cv.py), the page alone: no network runs here.

Usage: python scripts/choice_cv_report.py docs/choice_cv.json docs/choice_cv.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

VENDORS = ("Philips", "Siemens", "GE")
TITLES = {"segmenter": "The default segmenter", "tta": "Test-time augmentation (flips averaged)",
          "end_slice_thresholds": "The end-slice clean-up thresholds"}


def vendor_cells(per_vendor: dict) -> list[str]:
    return [f"{per_vendor[v]['mean']:.3f} ± {per_vendor[v]['sd']:.3f}" if v in per_vendor else "-" for v in VENDORS]


def section(title: str, entry: dict) -> list[str]:
    nested = entry["nested"]
    lines = [f"## {title}", "",
             f"{entry['subjects']} subjects. Shipped: **{entry['shipped']}**; chosen on all subjects: "
             f"**{entry['chosen_on_all']}**. Nested estimate (each subject scored with the candidate chosen on the "
             f"others): **{nested['balanced_mean']:.3f}** ("
             + ", ".join(f"{v} {nested['per_vendor'][v]['mean']:.3f} ± {nested['per_vendor'][v]['sd']:.3f}"
                         for v in VENDORS if v in nested["per_vendor"]) + ").", "",
             "| candidate | balanced mean | Philips | Siemens | GE | difference from shipped: mean ± sd over subjects "
             "| subjects better / worse | times chosen (of " + str(entry["subjects"]) + ") |",
             "|---|---|---|---|---|---|---|---|"]
    ranked = sorted(entry["candidates"].items(), key=lambda item: -item[1]["balanced_mean"])
    for name, figure in ranked:
        difference = figure["difference_from_shipped"]
        shown = f"**{name}**" if name == entry["shipped"] else name
        lines.append(f"| {shown} | {figure['balanced_mean']:.4f} | " + " | ".join(vendor_cells(figure["per_vendor"]))
                     + f" | {difference['mean']:+.4f} ± {difference['sd']:.4f} | {difference['subjects_better']} / "
                     f"{difference['subjects_worse']} | {nested['times_chosen'][name]} |")
    return lines + [""]


def write_markdown(result: dict, path: Path) -> None:
    provenance = result["provenance"]
    cpu = provenance["cpu"]
    lines = ["# How the shipped choices were made: cross-validated", "",
             f"Made by `{provenance['command']}` on {cpu['model']} ({cpu['instruction_set']}), networks in "
             f"{provenance['runtime']}, in {provenance['seconds']:.0f} s; every figure is in [choice_cv.json](choice_cv.json). "
             "`make results` runs it.", "",
             "The dev subjects: the LV-Unet's 10 Philips validation subjects (no segmenter here trained on them), the "
             "10 Siemens dev subjects and the 3 GE (Sunnybrook) cines, each through what the product runs for it "
             "(`segment` for Philips, `adapt-segment` with the vendor's shipped adapter for the others). A subject's "
             "score is the mean Dice (blood pool and myocardium, 3D) of its volumes; a set of subjects is scored by "
             "the mean over vendors of each vendor's mean (the balanced mean), so ten Philips subjects do not outvote "
             "three GE ones. Vendor cells: mean ± sd over the vendor's subjects.", "",
             "**Nested estimate**: for each subject in turn, the candidate with the best balanced mean on all the "
             "*other* subjects is chosen and scored on the one left out (leave-one-subject-out). No choice was made "
             "on the subject each figure comes from: it is what choosing this way is worth on a new subject, and "
             "'times chosen' says how stable the choice is. The difference from the shipped choice is taken subject "
             "by subject; its sd says whether a gap is more than noise.", ""]
    for key, title in TITLES.items():
        lines += section(title, result[key])
    for vendor, entry in result["adapter"].items():
        lines += section(f"The {vendor} adapter (leave-one-subject-out on the {vendor} dev subjects)", entry)
        if entry.get("scored_held_out"):
            lines += ["Scored on each subject by their variant trained without that subject's images: "
                      + ", ".join(f"`{name}`" for name in entry["scored_held_out"]) + ".", ""]
    lines += ["A GE adapter not scored by such variants was trained on the unlabelled images of the same 3 GE cines "
              "(no contours), so its GE row is transductive; the held-out GE figures in docs/results.md use adapters "
              "trained without the subject scored.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    write_markdown(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
