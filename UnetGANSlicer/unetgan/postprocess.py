"""Clean-up of a frame's labels (Z, Y, X) after the network: what an expert's contours would not contain.

1. One left ventricle: the largest 3D connected component of blood pool + myocardium is kept; stray
   islands elsewhere in the field are false positives.
2. The end slices follow the contouring convention (SCMR; the M&Ms and ACDC references): a basal slice
   is an LV slice only where the myocardium encloses most of the blood pool. Past the mitral valve
   plane the network still sees a blood pool with a partial, open crescent of muscle; those slices are
   dropped from each end of the stack inwards, while the end slice's myocardium covers less than
   MIN_END_SLICE_COVERAGE of the directions around its blood pool. Slices between two kept ones are
   never touched, nor are apical slices of myocardium only (no blood pool to surround).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .measurements import BLOOD_POOL, MYOCARDIUM

# chosen on the Philips training subjects only (scripts/end_slice_threshold.py; docs/models.md), never on
# the validation or dev subjects the results report
MIN_END_SLICE_COVERAGE = 0.70
COVERAGE_SECTORS = 36  # 10-degree sectors around the blood pool's centre


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """Keep the largest 3D connected LV (blood pool + myocardium); stray islands are false positives."""
    components, count = ndimage.label(labels > 0)
    if count <= 1:
        return labels
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]  # voxels per component, no array of ones
    return np.where(components == 1 + int(np.argmax(sizes)), labels, 0).astype(labels.dtype)


def myocardial_coverage(labels: np.ndarray) -> float | None:
    """Share of the 10-degree sectors around a slice's blood-pool centre (Y, X) that hold myocardium;
    None for a slice without blood pool."""
    blood_pool = labels == BLOOD_POOL
    if not blood_pool.any():
        return None
    rows, cols = np.nonzero(labels == MYOCARDIUM)
    if rows.size == 0:
        return 0.0
    centre_row, centre_col = ndimage.center_of_mass(blood_pool)
    angles = np.arctan2(rows - centre_row, cols - centre_col)  # -pi..pi
    sectors = ((angles + np.pi) * (COVERAGE_SECTORS / (2 * np.pi))).astype(np.int64) % COVERAGE_SECTORS
    return np.unique(sectors).size / COVERAGE_SECTORS


def drop_open_end_slices(labels: np.ndarray, min_coverage: float = MIN_END_SLICE_COVERAGE) -> np.ndarray:
    """labels (Z, Y, X) without the end slices whose myocardium does not enclose their blood pool (a copy
    when any is dropped). A stack of fewer than three LV slices is left as it is (a single image has no
    ends to judge), and the middle slice of the stack is always kept."""
    occupied = [z for z in range(labels.shape[0]) if labels[z].any()]
    if len(occupied) < 3:
        return labels
    half = len(occupied) // 2
    dropped = []
    for end in (occupied[:half], occupied[::-1][:half]):  # each end inwards, never past the middle
        for z in end:
            coverage = myocardial_coverage(labels[z])
            if coverage is None or coverage >= min_coverage:
                break
            dropped.append(z)
    if not dropped:
        return labels
    kept = labels.copy()
    kept[dropped] = 0
    return kept


def description() -> str:
    """What clean_frame does, for the measurements a result carries."""
    return (f"largest 3D LV component kept; end slices whose myocardium covers less than "
            f"{MIN_END_SLICE_COVERAGE:.2f} of the directions around the blood pool dropped")


def clean_frame(labels: np.ndarray) -> np.ndarray:
    """Both steps, in order (the threshold read when called: scripts/end_slice_threshold.py varies it)."""
    return drop_open_end_slices(keep_largest_component(labels), MIN_END_SLICE_COVERAGE)
