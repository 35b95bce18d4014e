"""DICOM cine folders: one file per image, sorted by tags (never by file name).

Slices are ordered by their position along the slice normal (ImagePositionPatient
projected on the cross product of ImageOrientationPatient), phases by TriggerTime.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from .images import Geometry, ImageData

# Real scanners write UIDs that break the standard's letter (e.g. leading zeros): read them anyway.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def _read_headers(folder: Path):
    headers = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, TypeError, EOFError):
            continue  # not a DICOM file (e.g. a README beside the images)
        if "PixelData" in ds or getattr(ds, "Rows", None):
            headers.append((path, ds))
    return headers


def _series_of(headers, folder: Path):
    by_series = defaultdict(list)
    for path, ds in headers:
        by_series[str(getattr(ds, "SeriesInstanceUID", ""))].append((path, ds))
    if not by_series:
        raise InputError(f"no DICOM images found in {folder}")
    if len(by_series) > 1:
        sizes = ", ".join(f"{uid[-12:] or '?'} ({len(v)} files)" for uid, v in by_series.items())
        raise InputError(f"{folder} mixes {len(by_series)} DICOM series [{sizes}]; put one cine series per folder")
    return next(iter(by_series.values()))


def read_dicom_cine(folder: Path) -> ImageData:
    """Read a folder of one short-axis series: several slice positions x phases."""
    series = _series_of(_read_headers(Path(folder)), folder)
    try:
        orientation = np.array([float(v) for v in series[0][1].ImageOrientationPatient])
        row_cos, col_cos = orientation[:3], orientation[3:]
        normal = np.cross(row_cos, col_cos)
        pixel_spacing = [float(v) for v in series[0][1].PixelSpacing]
    except (AttributeError, ValueError) as err:
        raise InputError(f"DICOM files in {folder} lack image orientation/spacing tags ({err})") from None

    by_position = defaultdict(list)
    for path, ds in series:
        try:
            position = np.array([float(v) for v in ds.ImagePositionPatient])
        except AttributeError:
            raise InputError(f"{path.name} has no ImagePositionPatient") from None
        trigger = float(getattr(ds, "TriggerTime", 0.0) or 0.0)
        instance = int(getattr(ds, "InstanceNumber", 0) or 0)
        by_position[round(float(position @ normal), 2)].append((trigger, instance, path, position))

    locations = sorted(by_position)
    counts = {len(v) for v in by_position.values()}
    if len(counts) != 1:
        raise InputError(
            f"{folder}: slice positions have different numbers of phases ({sorted(counts)}); "
            "the cine is incomplete or mixes acquisitions"
        )
    n_phases = counts.pop()
    frames = [sorted(by_position[loc]) for loc in locations]  # each: phases sorted by trigger time

    first = pydicom.dcmread(frames[0][0][2])
    rows, cols = int(first.Rows), int(first.Columns)
    array = np.empty((n_phases, len(locations), rows, cols), dtype=np.float32)
    for z, phases in enumerate(frames):
        for t, (_, _, path, _) in enumerate(phases):
            try:
                ds = pydicom.dcmread(path)
                pixels = ds.pixel_array.astype(np.float32)
            except Exception as err:  # pydicom raises many types for damaged pixel data
                raise InputError(f"cannot read pixel data of {path.name}: {err}") from None
            if pixels.shape != (rows, cols):
                raise InputError(f"{path.name} is {pixels.shape}, other images are {(rows, cols)}")
            slope = float(getattr(ds, "RescaleSlope", 1) or 1)
            intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
            array[t, z] = pixels * slope + intercept

    if len(locations) > 1:
        gaps = np.diff(locations)
        slice_spacing = float(np.median(gaps))
    else:
        slice_spacing = float(getattr(first, "SpacingBetweenSlices", None) or getattr(first, "SliceThickness", 1.0) or 1.0)
    origin = frames[0][0][3]
    # SimpleITK direction: columns are the x (row direction), y (column direction), z (normal) axes.
    direction = np.stack([row_cos, col_cos, normal], axis=1).ravel()
    geometry = Geometry((pixel_spacing[1], pixel_spacing[0], slice_spacing), tuple(origin), tuple(direction))
    triggers = [float(t) for t, _, _, _ in frames[0]]
    file_grid = [[str(p) for _, _, p, _ in phases] for phases in frames]  # [z][t] -> file path
    meta = {"manufacturer": str(getattr(first, "Manufacturer", "")), "files": file_grid}
    image = ImageData(array if n_phases > 1 else array[0], geometry, triggers if n_phases > 1 else None, meta)
    return image
