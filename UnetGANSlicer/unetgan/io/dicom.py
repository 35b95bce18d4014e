"""DICOM cine folders: one file per image, sorted by tags (never by file name).

Slices are ordered by their position along the slice normal (ImagePositionPatient
projected on the cross product of ImageOrientationPatient), phases by TriggerTime.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from .dicom_study import choose_series
from .geometry import Geometry, ImageData

# Real scanners write UIDs that break the standard's letter (e.g. leading zeros): read them anyway.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _is_image_storage(ds) -> bool:
    uid = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None) or getattr(ds, "SOPClassUID", None)
    return "Image Storage" in str(getattr(uid, "name", ""))


def _read_headers(folder: Path):
    headers, damaged = [], []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as err:  # pydicom raises many types for damaged files
            if not isinstance(err, (InvalidDicomError, OSError, ValueError, TypeError, EOFError)) or _looks_like_dicom(path):
                reason = "no DICOM header" if isinstance(err, InvalidDicomError) else (str(err).splitlines() or [type(err).__name__])[0][:100]
                damaged.append(f"{path.name} ({reason})")
            continue  # else not a DICOM file (e.g. a README beside the images)
        if "PixelData" in ds or getattr(ds, "Rows", None):
            headers.append((path, ds))
        elif _is_image_storage(ds):  # pydicom reads a truncated file as far as it goes
            damaged.append(f"{path.name} (image attributes missing: truncated?)")
    if damaged:
        more = f" and {len(damaged) - 3} more" if len(damaged) > 3 else ""
        raise InputError(f"{folder}: damaged DICOM file(s) {', '.join(damaged[:3])}{more}; "
                         "expected complete DICOM images of one cine series (remove or replace the damaged files)")
    return headers


ORIENTATION_TOLERANCE = 1e-2


def _shown(values) -> str:
    return "[" + ", ".join(f"{float(v) + 0.0:.4g}" for v in values) + "]"  # + 0.0: no "-0"


def _orientation(series, folder: Path) -> np.ndarray:
    """ImageOrientationPatient shared by the series: two perpendicular unit vectors (row, column directions)."""
    found = []
    for path, ds in series:
        try:
            orientation = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        except (AttributeError, TypeError, ValueError) as err:
            raise InputError(f"{path.name} lacks a usable ImageOrientationPatient ({err}); expected 6 direction cosines") from None
        row, col = orientation[:3], orientation[3:]
        if (orientation.size != 6 or not np.all(np.isfinite(orientation)) or abs(np.linalg.norm(row) - 1) > ORIENTATION_TOLERANCE
                or abs(np.linalg.norm(col) - 1) > ORIENTATION_TOLERANCE or abs(row @ col) > ORIENTATION_TOLERANCE):
            raise InputError(f"{path.name}: ImageOrientationPatient {_shown(orientation)} is not two perpendicular "
                             "unit vectors; expected the row and column direction cosines of the image")
        if found and np.abs(orientation - found[0][1]).max() > ORIENTATION_TOLERANCE:
            raise InputError(f"{folder}: images have different orientations ({found[0][0].name}: {_shown(found[0][1])}, "
                             f"{path.name}: {_shown(orientation)}); expected one short-axis stack")
        if not found:
            found.append((path, orientation))
    return found[0][1]


def _check_decodable(series, folder: Path) -> None:
    """Refuse, before any pixel is read, a transfer syntax that no installed decoder handles."""
    from pydicom.pixels import get_decoder

    syntaxes = Counter(str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "") for _, ds in series)
    for uid, count in syntaxes.items():
        if not uid:
            continue  # no file meta: pydicom assumes an uncompressed syntax
        syntax = pydicom.uid.UID(uid)
        if not syntax.is_compressed:
            continue
        try:
            available = get_decoder(syntax).is_available
        except (NotImplementedError, ValueError):  # a syntax pydicom knows no decoder for at all
            available = False
        if not available:
            raise InputError(f"{folder}: {count} image(s) use the compressed transfer syntax {syntax.name or uid} ({uid}), "
                             "which no installed decoder reads; expected uncompressed images or a supported compression "
                             "(export the series uncompressed, e.g. 'dcmdjpeg' or 'gdcmconv --raw')")


def _check_one_size(series, folder: Path) -> None:
    sizes = Counter((int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)) for _, ds in series)
    if len(sizes) > 1:
        shown = ", ".join(f"{r} x {c} ({n} images)" for (r, c), n in sizes.most_common())
        raise InputError(f"{folder}: the cine's images have different sizes ({shown}); expected one matrix for the "
                         "whole series (the folder mixes acquisitions or reconstructions)")


def read_dicom_cine(folder: Path, series_uid: str | None = None) -> ImageData:
    """Read the short-axis cine of a DICOM folder (a study or one series): several slice positions x phases.

    `series_uid` chooses the series; otherwise `choose_series` finds it. The chosen series, and why,
    are in `meta["series"]`; `meta["files"][z][t]` is the file of each image."""
    series, choice = choose_series(_read_headers(Path(folder)), Path(folder), series_uid)
    _check_one_size(series, Path(folder))
    _check_decodable(series, Path(folder))
    orientation = _orientation(series, Path(folder))
    # the tag holds ~6 decimals: make the axes exactly orthonormal, so that outputs written with this
    # geometry read back with the same direction and spacing (a NRRD stores spacing x direction)
    row_cos = orientation[:3] / np.linalg.norm(orientation[:3])
    col_cos = orientation[3:] - (orientation[3:] @ row_cos) * row_cos
    col_cos /= np.linalg.norm(col_cos)
    normal = np.cross(row_cos, col_cos)
    try:
        pixel_spacing = [float(v) for v in series[0][1].PixelSpacing]
        if len(pixel_spacing) != 2:
            raise ValueError(f"{len(pixel_spacing)} values")
    except (AttributeError, TypeError, ValueError) as err:
        raise InputError(f"DICOM files in {folder} lack a usable PixelSpacing ({err}); expected 2 values in mm") from None

    by_position = defaultdict(list)
    for path, ds in series:
        try:
            position = np.array([float(v) for v in ds.ImagePositionPatient], dtype=float)
            if position.size != 3 or not np.all(np.isfinite(position)):
                raise ValueError(f"{position.size} values")
            trigger = float(getattr(ds, "TriggerTime", 0.0) or 0.0)
            instance = int(getattr(ds, "InstanceNumber", 0) or 0)
        except (AttributeError, TypeError, ValueError) as err:
            raise InputError(f"{path.name} lacks a usable ImagePositionPatient, TriggerTime or InstanceNumber ({err})") from None
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
    if any(t for phases in frames for t, _, _, _ in phases):  # trigger times given: one image per slice and time
        for loc, phases in zip(locations, frames):
            triggers = [t for t, _, _, _ in phases]
            if len(set(triggers)) != len(triggers):
                twice = sorted({t for t in triggers if triggers.count(t) > 1})
                raise InputError(f"{folder}: several images at slice position {loc:g} mm with the same trigger time "
                                 f"({', '.join(f'{t:g}' for t in twice)} ms); the folder mixes acquisitions or repeats images")

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
    meta = {"manufacturer": str(getattr(first, "Manufacturer", "")), "files": file_grid,
            "series": {"uid": choice.summary.uid, "description": choice.summary.description, "reason": choice.reason}}
    image = ImageData(array if n_phases > 1 else array[0], geometry, triggers if n_phases > 1 else None, meta)
    return image
