"""Clinical numbers from labelmaps: LV blood-pool volume, myocardial volume and mass, EDV/ESV/SV/EF.

ED is the frame with the largest blood-pool volume and ES the smallest (the usual
definition when ECG-derived markers are not at hand). Mass uses 1.05 g/mL.
"""
from __future__ import annotations

import csv
import io

import numpy as np

MYOCARDIAL_DENSITY_G_PER_ML = 1.05
BLOOD_POOL, MYOCARDIUM = 1, 2


def frame_measurements(labels: np.ndarray, voxel_volume_ml: float) -> dict:
    blood = float((labels == BLOOD_POOL).sum()) * voxel_volume_ml
    myo = float((labels == MYOCARDIUM).sum()) * voxel_volume_ml
    return {"blood_pool_ml": round(blood, 3), "myocardium_ml": round(myo, 3),
            "myocardial_mass_g": round(myo * MYOCARDIAL_DENSITY_G_PER_ML, 3)}


def ejection_fraction(edv: float, esv: float) -> float | None:
    return None if edv <= 0 else 100.0 * (edv - esv) / edv


def cine_measurements(labels: np.ndarray, voxel_volume_ml: float) -> dict:
    """Per-frame volumes and, for more than one frame, EDV, ESV, SV, EF, ED/ES frames and ED mass."""
    frames = labels if labels.ndim == 4 else labels[None]
    per_frame = [{"frame": t, **frame_measurements(frame, voxel_volume_ml)} for t, frame in enumerate(frames)]
    result = {"frames": per_frame, "edv_ml": None, "esv_ml": None, "sv_ml": None, "ef_percent": None,
              "ed_frame": None, "es_frame": None, "myocardial_mass_ed_g": None}
    if len(per_frame) > 1:
        volumes = np.array([f["blood_pool_ml"] for f in per_frame])
        ed, es = int(volumes.argmax()), int(volumes.argmin())
        edv, esv = float(volumes[ed]), float(volumes[es])
        ef = ejection_fraction(edv, esv)
        result.update(edv_ml=round(edv, 2), esv_ml=round(esv, 2), sv_ml=round(edv - esv, 2),
                      ef_percent=None if ef is None else round(ef, 1), ed_frame=ed, es_frame=es,
                      myocardial_mass_ed_g=per_frame[ed]["myocardial_mass_g"])
    return result


def measurements_csv(measurements: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["frame", "blood_pool_ml", "myocardium_ml", "myocardial_mass_g"])
    for frame in measurements["frames"]:
        writer.writerow([frame["frame"], frame["blood_pool_ml"], frame["myocardium_ml"], frame["myocardial_mass_g"]])
    for key in ("edv_ml", "esv_ml", "sv_ml", "ef_percent", "ed_frame", "es_frame", "myocardial_mass_ed_g"):
        if measurements.get(key) is not None:
            writer.writerow([key, measurements[key], "", ""])
    return out.getvalue()
