"""Dice per structure and per volume, vendor tables, and EF agreement."""
from __future__ import annotations

import numpy as np

STRUCTURES = {"blood_pool": 1, "myocardium": 2}


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """3D Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = prediction.sum() + reference.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(prediction, reference).sum() / total)


def dice_per_structure(labels: np.ndarray, reference: np.ndarray, valid: dict | None = None) -> dict:
    """Dice per structure over the slices where that structure was labelled, and their mean.

    The mean is the average of both structures, and NaN (left out of a table's mean column) when one
    of them was not labelled at all: a blood pool alone would pass for the mean of both."""
    scores = {}
    for name, value in STRUCTURES.items():
        keep = slice(None) if valid is None else valid[name]
        if valid is not None and not np.any(keep):
            scores[name] = float("nan")
            continue
        scores[name] = dice(labels[keep] == value, reference[keep] == value)
    scores["mean"] = float(np.mean([scores[n] for n in STRUCTURES]))
    return scores


def summarise(per_volume: list[dict]) -> dict:
    """Per vendor: mean and sd of each structure's Dice and of their mean, and n volumes."""
    summary = {}
    for vendor in sorted({row["vendor"] for row in per_volume}):
        rows = [row for row in per_volume if row["vendor"] == vendor]
        entry = {}
        for key in (*STRUCTURES, "mean"):
            values = np.array([row["dice"][key] for row in rows], dtype=float)
            values = values[np.isfinite(values)]
            entry[key] = {"mean": float(values.mean()) if values.size else None,
                          "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0 if values.size else None}
        entry["n"] = len(rows)
        entry["n_mean"] = int(np.isfinite([row["dice"]["mean"] for row in rows]).sum())  # volumes with both structures
        entry["ejection_fraction"] = ef_agreement(rows)
        summary[vendor] = entry
    return summary


def ef_agreement(rows: list[dict]) -> dict:
    """EF from each subject's ED and ES volumes (counted on labelled slices only), against the reference.

    EF is a ratio of volumes, so it holds where the slice spacing is unknown (as in the M&Ms headers)."""
    by_subject: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_subject.setdefault(row["subject"], {})[row["phase"]] = row
    predicted, reference = [], []
    for phases in by_subject.values():
        if "ED" in phases and "ES" in phases:
            ed, es = phases["ED"], phases["ES"]
            if ed["reference_blood_pool_voxels"] > 0 and ed["predicted_blood_pool_voxels"] > 0:
                reference.append(100 * (1 - es["reference_blood_pool_voxels"] / ed["reference_blood_pool_voxels"]))
                predicted.append(100 * (1 - es["predicted_blood_pool_voxels"] / ed["predicted_blood_pool_voxels"]))
    if not predicted:
        return {"n_subjects": 0, "mae": None, "pearson_r": None}
    predicted, reference = np.array(predicted), np.array(reference)
    r = float(np.corrcoef(predicted, reference)[0, 1]) if len(predicted) > 2 and predicted.std() > 0 and reference.std() > 0 else None
    return {"n_subjects": len(predicted), "mae": float(np.abs(predicted - reference).mean()), "pearson_r": r}


def score_volume(volume, labels: np.ndarray) -> dict:
    """One per-volume row: Dice per structure and the blood-pool voxel counts behind EF."""
    keep = slice(None) if volume.valid is None else volume.valid["blood_pool"]
    return {"subject": volume.subject, "vendor": volume.vendor, "phase": volume.phase,
            "dice": dice_per_structure(labels, volume.labels, volume.valid),
            "predicted_blood_pool_voxels": int((labels[keep] == 1).sum()),
            "reference_blood_pool_voxels": int((volume.labels[keep] == 1).sum())}


def format_table(summary: dict, title: str = "") -> str:
    def cell(entry):
        return "-" if entry["mean"] is None else f"{entry['mean']:.3f} +- {entry['sd']:.3f}"

    lines = [title] if title else []
    lines.append(f"{'vendor':<10} {'n':>4}  {'blood pool':>16}  {'myocardium':>16}  {'mean':>16}  {'EF MAE':>7}  {'EF r':>6}")
    for vendor, entry in summary.items():
        ef = entry["ejection_fraction"]
        mae = "-" if ef["mae"] is None else f"{ef['mae']:.1f}"
        r = "-" if ef["pearson_r"] is None else f"{ef['pearson_r']:.2f}"
        lines.append(f"{vendor:<10} {entry['n']:>4}  {cell(entry['blood_pool']):>16}  {cell(entry['myocardium']):>16}  "
                     f"{cell(entry['mean']):>16}  {mae:>7}  {r:>6}")
    return "\n".join(lines)
