"""Numbers no human left ventricle gives: a warning next to them, after the backend's run and after every edit.

The bounds are deliberately far outside the normal ranges (those are on the report, from
Kawel-Boehm et al., J Cardiovasc Magn Reson 2020;22:87: adult EDV 86-214 mL, ESV 22-82 mL,
EF 55-78 %): they catch masks that cannot be anatomy (a brush that painted through several
slices, a wrong voxel spacing), not disease. Dilated cardiomyopathies and athletes' hearts
reach EDVs of 300-450 mL and a hyperdynamic ventricle an EF in the low 80s; an adult EDV below
20 mL or an EF above 90 % is not seen.
"""
from __future__ import annotations

EDV_RANGE_ML = (20.0, 600.0)
ESV_RANGE_ML = (5.0, 500.0)
MAX_EF_PERCENT = 90.0
# a single frame (no ED/ES): its blood-pool volume within the widest of the two ranges
FRAME_BLOOD_POOL_RANGE_ML = (ESV_RANGE_ML[0], EDV_RANGE_ML[1])
MAX_MASS_CHANGE = 0.5  # of the backend's own mass: an edit that moves it by more than half is a slip, not a correction
# The myocardium is nearly incompressible: its true volume changes by a few % over the cycle (the wall
# thickens as the ventricle shortens), so what a segmentation measures beyond that is its own noise, most of
# it at the thin apical and basal slices. Beyond 15 % the masks, not the heart, change from frame to frame
# (the best-segmented GE cine gives 8 %, docs/es_choice.json).
MAX_MYOCARDIAL_VARIATION_PERCENT = 15.0


def _outside(value: float | None, bounds: tuple[float, float]) -> bool:
    return value is not None and not bounds[0] <= value <= bounds[1]


def study_mass_g(measurements: dict) -> float | None:
    """Myocardial mass at end-diastole (of the one frame for a single volume)."""
    if measurements.get("myocardial_mass_ed_g") is not None:
        return float(measurements["myocardial_mass_ed_g"])
    frames = measurements.get("frames") or []
    return float(frames[0]["myocardial_mass_g"]) if len(frames) == 1 else None


def measurement_warnings(measurements: dict, backend_mass_g: float | None = None) -> list[str]:
    """Plain-words warnings for implausible numbers; ``backend_mass_g``: the mass of the result as the backend
    returned it (the check for an edit that changed the mass by more than half)."""
    found = []
    edv, esv, ef = measurements.get("edv_ml"), measurements.get("esv_ml"), measurements.get("ef_percent")
    if _outside(edv, EDV_RANGE_ML):
        found.append(f"EDV {edv:.0f} mL is outside what a human left ventricle holds ({EDV_RANGE_ML[0]:.0f}-"
                     f"{EDV_RANGE_ML[1]:.0f} mL): check the masks (a stroke through several slices?) and the voxel spacing")
    if _outside(esv, ESV_RANGE_ML):
        found.append(f"ESV {esv:.0f} mL is outside what a human left ventricle holds ({ESV_RANGE_ML[0]:.0f}-"
                     f"{ESV_RANGE_ML[1]:.0f} mL): check the masks and the voxel spacing")
    if ef is not None and ef > MAX_EF_PERCENT:
        found.append(f"EF {ef:.0f} % is above {MAX_EF_PERCENT:.0f} %, which a human heart does not reach: "
                     "check the end-systolic masks")
    frames = measurements.get("frames") or []
    if len(frames) == 1 and _outside(frames[0]["blood_pool_ml"], FRAME_BLOOD_POOL_RANGE_ML):
        low, high = FRAME_BLOOD_POOL_RANGE_ML
        found.append(f"blood-pool volume {frames[0]['blood_pool_ml']:.0f} mL is outside what a human left ventricle "
                     f"holds ({low:.0f}-{high:.0f} mL): check the masks and the voxel spacing")
    mass = study_mass_g(measurements)
    if backend_mass_g and mass is not None and abs(mass - backend_mass_g) > MAX_MASS_CHANGE * backend_mass_g:
        found.append(f"myocardial mass {mass:.0f} g differs by more than half from the automatic result's "
                     f"{backend_mass_g:.0f} g: check the edited myocardium")
    variation = measurements.get("myocardial_volume_variation_percent")
    if variation is not None and variation > MAX_MYOCARDIAL_VARIATION_PERCENT:
        found.append(f"the myocardial volume varies by {variation:.0f} % over the cycle (more than "
                     f"{MAX_MYOCARDIAL_VARIATION_PERCENT:.0f} %; the myocardium is nearly incompressible): the "
                     "myocardium masks are inconsistent between frames, check them")
    return found
