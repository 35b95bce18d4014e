"""The source images of a result: the DICOM headers of every image of the cine, frame by frame.

Real exports carry values that break the standard's letter (a birth date "00000000", a time
"24:00"); highdicom copies the patient and study attributes into the SEG and SR and refuses
such values. The copies given to it have those dates and times blanked (the standard allows
them empty); the files on disk are never changed. Some anonymisers also give every image its
own FrameOfReferenceUID, while a SEG lies in one frame of reference: the copies then share the
first image's, with a warning (the images of one series share their geometry anyway); and
their orientation cosines, equal to the reader's tolerance, the first image's exactly.
"""
from __future__ import annotations

import pydicom
from pydicom.valuerep import DA, DT, TM

from ..errors import InputError
from .source_frames import frame_header, in_one_series

PARSERS = {"DA": DA, "TM": TM, "DT": DT}


def blank_unreadable_dates(ds: pydicom.Dataset) -> pydicom.Dataset:
    for element in ds:
        parse = PARSERS.get(element.VR)
        if parse is None or not element.value or element.VM != 1:
            continue
        try:
            parse(str(element.value))
        except (ValueError, TypeError, OverflowError):
            element.value = ""
    return ds


def source_headers(file_grid: list[list[str]], frame_numbers: list[list] | None = None) -> list[list[pydicom.Dataset]]:
    """Headers (no pixel data) as [t][z], from the reader's `meta["files"]` ([z][t] -> path) and
    `meta["frame_numbers"]` (a frame of a multi-frame file: its stand-in, :mod:`.source_frames`)."""
    if not file_grid or not file_grid[0]:
        raise InputError("the result has no DICOM source images; SEG and SR need a DICOM input")
    read = {}  # a multi-frame file: read once for all its frames
    for path in {path for row in file_grid for path in row}:
        read[path] = blank_unreadable_dates(pydicom.dcmread(path, stop_before_pixels=True))
    numbers = frame_numbers or [[None] * len(row) for row in file_grid]
    headers = [[read[path] if number is None else frame_header(read[path], number) for path, number in zip(row, row_numbers)]
               for row, row_numbers in zip(file_grid, numbers)]  # [z][t]
    return in_one_series([list(frame) for frame in zip(*headers)])  # a stack joined from several series: stand-ins


def institution_of(headers) -> str | None:
    """The source images' InstitutionName (headers: one phase's list, or [t][z]), for the SEG's and SR's own:
    they are made where the images are read, for that institution's archive."""
    first = headers[0][0] if isinstance(headers[0], (list, tuple)) else headers[0]
    return str(getattr(first, "InstitutionName", "") or "") or None


def share_orientation(headers: list[list[pydicom.Dataset]]) -> None:
    """Give every header copy the first image's ImageOrientationPatient: scanners round the cosines of one
    series differently in the 6th decimal (Sunnybrook: -0.307716 and -0.307715), which the reader accepts
    (it checked them within its tolerance) and highdicom, comparing exactly, does not."""
    first = headers[0][0].ImageOrientationPatient
    for row in headers:
        for ds in row:
            ds.ImageOrientationPatient = first


def share_frame_of_reference(headers: list[list[pydicom.Dataset]]) -> str | None:
    """Give every header copy the first image's FrameOfReferenceUID; a warning when they differed."""
    found = {str(getattr(ds, "FrameOfReferenceUID", "")) for row in headers for ds in row}
    if len(found) <= 1:
        return None
    first = headers[0][0].FrameOfReferenceUID
    for row in headers:
        for ds in row:
            ds.FrameOfReferenceUID = first
    return (f"the cine's images carry {len(found)} different FrameOfReferenceUIDs (an anonymiser's doing?); "
            "the DICOM SEG and SR use the first image's")
