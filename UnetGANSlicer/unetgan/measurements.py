"""Clinical numbers from labelmaps: LV blood-pool volume, myocardial volume and mass, EDV/ESV/SV/EF.

Frame numbers are 1-based wherever a person reads them (frame 1 is the first phase of the
cine, as the DICOM phases and Slicer's sequence browser count them): the keys say so
(``frame_number``, ``ed_frame_number``, ``es_frame_number``) and ``frame_numbering`` states it
in measurements.json. Code that indexes arrays uses :func:`frame_index`.

ED is the frame with the largest blood-pool volume and ES the smallest (the usual definition
when ECG-derived markers are not at hand), ES among the frames that are not one-frame dips
of the volume curve (a segmentation slip), so that such a frame does not decide it; the
volumes reported are the chosen frames' own (see :func:`choose_ed_es`, docs/measurements.md).
Mass uses 1.05 g/mL.
"""
from __future__ import annotations

import csv
import io

import numpy as np
from scipy.ndimage import median_filter

from .plausibility import measurement_warnings

MYOCARDIAL_DENSITY_G_PER_ML = 1.05
BLOOD_POOL, MYOCARDIUM = 1, 2
FRAME_NUMBERING = ("1-based: frame 1 is the first phase of the cine, as DICOM phases and Slicer's sequence browser "
                   "count them")
# ES is read from the frames that are not one-frame dips of the volume curve: a frame is one when it lies
# below the median of itself and its two neighbours (the cycle wraps around) by more than both 3 robust
# standard deviations of those differences over the cycle (1.4826 x their median absolute value: the Hampel
# identifier) and 5 % of the smoothed curve's largest volume. At end-systole the curve is flat (the valves
# are closed), so a true minimum stays within a few % of its neighbours, while one frame's segmentation slip
# does not. ED stays the largest frame: it sits at the top of the steep systolic fall, where one frame can
# stand well above its neighbours; on the GE cines a peak rule moved ED 6 frames from the expert's
# (docs/es_choice.json). Written by hand: scipy gives the median, no library the rule. A cine of fewer frames
# (ED + ES pairs) is too coarse to judge: its own largest and smallest frames are taken.
SMOOTHING_MIN_FRAMES = 5
OUTLIER_ROBUST_SDS = 3.0
OUTLIER_MIN_FRACTION_OF_EDV = 0.05
ED_ES_RULE = ("ED: the largest blood-pool volume; ES: the smallest among the frames that are not one-frame dips of "
              "the volume curve (circular 3-frame median; cines of 5 frames or more); EDV and ESV are those frames' "
              "own volumes")
ED_ES_RULE_SHORT = "ED and ES: largest and smallest blood-pool volume"


def frame_measurements(labels: np.ndarray, voxel_volume_ml: float) -> dict:
    blood = float((labels == BLOOD_POOL).sum()) * voxel_volume_ml
    myo = float((labels == MYOCARDIUM).sum()) * voxel_volume_ml
    return {"blood_pool_ml": round(blood, 3), "myocardium_ml": round(myo, 3),
            "myocardial_mass_g": round(myo * MYOCARDIAL_DENSITY_G_PER_ML, 3)}


def ejection_fraction(edv: float, esv: float) -> float | None:
    return None if edv <= 0 else 100.0 * (edv - esv) / edv


def smoothed_curve(volumes) -> np.ndarray:
    """The blood-pool volumes with a circular 3-frame median (unchanged below SMOOTHING_MIN_FRAMES frames)."""
    volumes = np.asarray(volumes, float)
    if len(volumes) < SMOOTHING_MIN_FRAMES:
        return volumes
    return median_filter(volumes, size=3, mode="wrap")


def dip_frames(volumes) -> np.ndarray:
    """Boolean per frame: a one-frame dip of the volume curve (see the rule above; none below
    SMOOTHING_MIN_FRAMES frames)."""
    volumes = np.asarray(volumes, float)
    smooth = smoothed_curve(volumes)
    residual = volumes - smooth
    threshold = max(OUTLIER_ROBUST_SDS * 1.4826 * float(np.median(np.abs(residual))),
                    OUTLIER_MIN_FRACTION_OF_EDV * float(smooth.max()))
    return residual < -threshold if threshold > 0 else np.zeros(len(volumes), bool)


def choose_ed_es(volumes, robust: bool = True) -> tuple[int, int]:
    """0-based (ED, ES) frames: the largest volume, and the smallest among the frames that are not one-frame
    dips (``robust=False``: among all frames, the rule before this one, kept for comparison)."""
    volumes = np.asarray(volumes, float)
    if not robust:
        return int(volumes.argmax()), int(volumes.argmin())
    kept = np.flatnonzero(~dip_frames(volumes))
    return int(volumes.argmax()), int(kept[volumes[kept].argmin()])


def myocardial_variation_percent(myocardium_ml) -> float | None:
    """(max - min) / mean of the myocardial volume over the frames, in % (None for one frame or no myocardium)."""
    volumes = np.asarray(myocardium_ml, float)
    if len(volumes) < 2 or volumes.mean() <= 0:
        return None
    return float(100.0 * (volumes.max() - volumes.min()) / volumes.mean())


def cine_measurements(labels: np.ndarray, voxel_volume_ml: float) -> dict:
    """Per-frame volumes and, for more than one frame, EDV, ESV, SV, EF, ED/ES frame numbers, ED mass and the
    myocardial volume's variation over the cycle; ``measurement_warnings``: what in the numbers is implausible
    (see :mod:`.plausibility`)."""
    frames = labels if labels.ndim == 4 else labels[None]
    per_frame = [{"frame_number": t + 1, **frame_measurements(frame, voxel_volume_ml)} for t, frame in enumerate(frames)]
    result = {"frame_numbering": FRAME_NUMBERING, "frames": per_frame, "edv_ml": None, "esv_ml": None,
              "sv_ml": None, "ef_percent": None, "ed_frame_number": None, "es_frame_number": None,
              "myocardial_mass_ed_g": None, "myocardial_volume_variation_percent": None}
    if len(per_frame) > 1:
        volumes = np.array([f["blood_pool_ml"] for f in per_frame])
        ed, es = choose_ed_es(volumes)
        edv, esv = float(volumes[ed]), float(volumes[es])
        ef = ejection_fraction(edv, esv)
        variation = myocardial_variation_percent([f["myocardium_ml"] for f in per_frame])
        result.update(edv_ml=round(edv, 2), esv_ml=round(esv, 2), sv_ml=round(edv - esv, 2),
                      ef_percent=None if ef is None else round(ef, 1), ed_frame_number=ed + 1, es_frame_number=es + 1,
                      myocardial_mass_ed_g=per_frame[ed]["myocardial_mass_g"],
                      myocardial_volume_variation_percent=None if variation is None else round(variation, 1),
                      ed_es_choice=ED_ES_RULE if len(per_frame) >= SMOOTHING_MIN_FRAMES else ED_ES_RULE_SHORT)
    result["measurement_warnings"] = measurement_warnings(result)
    return result


def frame_index(measurements: dict, phase: str) -> int | None:
    """0-based array index of the "ed" or "es" frame (None for one frame). Measurements written before frame
    numbers were 1-based carry ``ed_frame``/``es_frame`` as 0-based indices: those are read as such."""
    number = measurements.get(f"{phase}_frame_number")
    if number is not None:
        return int(number) - 1
    old = measurements.get(f"{phase}_frame")
    return None if old is None else int(old)


def frame_number_of(frame: dict, position: int) -> int:
    """1-based number of one entry of ``measurements["frames"]`` (its position when it carries none)."""
    if frame.get("frame_number") is not None:
        return int(frame["frame_number"])
    return int(frame["frame"]) + 1 if frame.get("frame") is not None else position + 1


SUMMARY_KEYS = ("edv_ml", "esv_ml", "sv_ml", "ef_percent", "ed_frame_number", "es_frame_number",
                "myocardial_mass_ed_g", "myocardial_volume_variation_percent")


def measurements_csv(measurements: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["frame_number", "blood_pool_ml", "myocardium_ml", "myocardial_mass_g"])
    for position, frame in enumerate(measurements["frames"]):
        writer.writerow([frame_number_of(frame, position), frame["blood_pool_ml"], frame["myocardium_ml"],
                         frame["myocardial_mass_g"]])
    for key in SUMMARY_KEYS:
        if measurements.get(key) is not None:
            writer.writerow([key, measurements[key], "", ""])
    if measurements.get("edited_frames"):
        writer.writerow(["edited_frame_numbers", " ".join(map(str, measurements["edited_frames"])), "", ""])
    for key, value in ((measurements.get("input") or {}).get("patient") or {}).items():  # whose study (DICOM input)
        if value:
            writer.writerow([key, value, "", ""])
    for warning in measurements.get("warnings") or []:
        writer.writerow(["warning", warning, "", ""])
    return out.getvalue()
