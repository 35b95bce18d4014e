"""Sunnybrook contour files (`IM-0001-NNNN-icontour-manual.txt`, lines `x y` in pixels) to masks.

Contour NNNN belongs to DICOM file `int(NNNN).dcm`. Blood pool = inside the endocardial
(i) contour; myocardium = inside the epicardial (o) contour and outside the endocardial
one, defined only on images with both contours. Only contoured images are evaluated.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon

from ..errors import InputError
from .geometry import ImageData
from .images import read_image
from .labelled import LabelledVolume, ManifestItem

CONTOUR_NAME = re.compile(r"IM-\d+-(\d+)-([io])contour-manual\.txt$")


def read_contour(path: Path) -> np.ndarray:
    """Points (N, 2) as (x, y) pixel coordinates; a clear error for malformed lines."""
    points = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{Path(path).name}: not a text file ({err.reason} at byte {err.start}); expected lines 'x y'") from None
    for number, line in enumerate(text.split("\n"), start=1):  # numbered as an editor shows them
        if not line.strip():
            continue
        parts = line.split()
        try:
            x, y = float(parts[0]), float(parts[1])
            if len(parts) != 2 or not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
        except (ValueError, IndexError):
            raise InputError(f"{Path(path).name} line {number}: expected 'x y' numbers, got {line.strip()[:60]!r}") from None
        points.append((x, y))
    if len(points) < 3:
        raise InputError(f"{Path(path).name}: a contour needs at least 3 points, found {len(points)}")
    return np.array(points)


# The contour files use MATLAB's 1-based pixel coordinates: pixel (row, col) of the array has its centre at
# (x=col+1, y=row+1). Measured, not assumed: the image's edge strength along the 84 contours of our 3 patients
# peaks at that offset (research/analyses/sunnybrook_contour_offset.py, docs/ge_myocardium.md); read as 0-based, every
# contour sat one pixel down and right of the anatomy, which cost the thin myocardium most of its Dice.
CONTOUR_ORIGIN = 1.0


def rasterise(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (1-based contour coordinates, see CONTOUR_ORIGIN)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] + CONTOUR_ORIGIN
    centres = np.stack([cols.ravel(), rows.ravel()], axis=1)
    return Polygon(points).contains_points(centres).reshape(shape)


def contour_files(folder: Path) -> dict[int, dict[str, Path]]:
    """DICOM file number -> {'i': path, 'o': path}."""
    found: dict[int, dict[str, Path]] = defaultdict(dict)
    for path in Path(folder).rglob("*contour-manual.txt"):
        match = CONTOUR_NAME.search(path.name)
        if match:
            found[int(match.group(1))][match.group(2)] = path
    return found


def load_contoured_phases(item: ManifestItem) -> list[LabelledVolume]:
    cine = read_image(item.image)
    if not cine.is_cine:
        raise InputError(f"{item.image}: expected a cine DICOM folder")
    contours = contour_files(item.label) if item.label else {}
    if item.label and not contours:
        raise InputError(f"no contour files found in {item.label}")
    file_grid = cine.meta["files"]  # [z][t] -> path
    where = {int(Path(p).stem): (z, t) for z, row in enumerate(file_grid) for t, p in enumerate(row) if Path(p).stem.isdigit()}
    by_phase: dict[int, list[tuple[int, dict[str, Path]]]] = defaultdict(list)
    for number, kinds in contours.items():
        if number not in where:
            raise InputError(f"contour for image {number} but no DICOM file {number}.dcm in {item.image}")
        z, t = where[number]
        by_phase[t].append((z, kinds))
    volumes = []
    shape = cine.array.shape[2:]
    for t in sorted(by_phase):
        labels = np.zeros(cine.array.shape[1:], dtype=np.uint8)
        valid = {"blood_pool": np.zeros(labels.shape[0], bool), "myocardium": np.zeros(labels.shape[0], bool)}
        for z, kinds in by_phase[t]:
            inner = rasterise(read_contour(kinds["i"]), shape) if "i" in kinds else None
            outer = rasterise(read_contour(kinds["o"]), shape) if "o" in kinds else None
            if inner is not None:
                labels[z][inner] = 1
                valid["blood_pool"][z] = True
            if inner is not None and outer is not None:
                labels[z][outer & ~inner] = 2
                valid["myocardium"][z] = True
        image = ImageData(cine.array[t], cine.geometry, meta={"frame": t})
        volumes.append(LabelledVolume(item.subject, item.vendor, f"frame{t:02d}", image, labels, valid))
    return volumes


def cine_phase_names(volumes: list[LabelledVolume]) -> list[LabelledVolume]:
    """Name the contoured frames ED (larger reference blood pool) and ES (smaller), as in our 3D rows."""
    if len(volumes) == 2:
        sizes = [(v.labels == 1).sum() for v in volumes]
        big, small = (0, 1) if sizes[0] >= sizes[1] else (1, 0)
        volumes[big].phase, volumes[small].phase = "ED", "ES"
    return volumes
