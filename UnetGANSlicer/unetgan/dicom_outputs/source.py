"""The source images of a result: the DICOM headers of every image of the cine, frame by frame."""
from __future__ import annotations

import pydicom

from ..errors import InputError


def source_headers(file_grid: list[list[str]]) -> list[list[pydicom.Dataset]]:
    """Headers (no pixel data) as [t][z], from the reader's `meta["files"]` ([z][t] -> path)."""
    if not file_grid or not file_grid[0]:
        raise InputError("the result has no DICOM source images; SEG and SR need a DICOM input")
    headers = [[pydicom.dcmread(path, stop_before_pixels=True) for path in row] for row in file_grid]  # [z][t]
    return [list(frame) for frame in zip(*headers)]
