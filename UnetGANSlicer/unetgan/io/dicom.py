"""DICOM cine folders: single-frame files or multi-frame (Enhanced MR) files, sorted by tags (never by file name).

Slices are ordered by their position along the slice normal (ImagePositionPatient projected on
the cross product of ImageOrientationPatient), phases by TriggerTime (:mod:`.dicom_grid`). A
multi-frame file gives each frame's geometry in its functional groups (:mod:`.dicom_frames`); a
study may hold its short-axis cine as one series per slice position (:mod:`.dicom_stacks`);
compressed pixel data are decoded by :mod:`.dicom_pixels`. A DICOMDIR, when the folder has one,
lists the files to read.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from .dicom_frames import frames_of
from .dicom_grid import Placed, arrange
from .dicom_pixels import check_decodable, lossy_warnings, read_pixels
from .dicom_study import choose_series
from .geometry import Geometry, ImageData

# Real scanners write UIDs that break the standard's letter (e.g. leading zeros): read them anyway.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def looks_like_dicom(path: Path) -> bool:
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


def _dicomdir(folder: Path) -> Path | None:
    return next((p for p in folder.iterdir() if p.is_file() and p.name.upper() == "DICOMDIR"), None) if folder.is_dir() else None


def _listed_files(folder: Path, warnings: list[str]) -> list[Path]:
    """The files to read: those a DICOMDIR lists (a patient CD's index), else every file below the folder."""
    index = _dicomdir(folder)
    if index is None:
        return sorted(p for p in folder.rglob("*") if p.is_file())
    try:
        records = pydicom.dcmread(index).DirectoryRecordSequence
        ids = [record.ReferencedFileID for record in records if "ReferencedFileID" in record]
    except Exception as err:  # pydicom raises many types for a damaged DICOMDIR
        raise InputError(f"{index}: the DICOMDIR cannot be read ({(str(err).splitlines() or [type(err).__name__])[0][:100]}); "
                         "expected a DICOMDIR that lists the study's files (or remove it)") from None
    # ISO 9660 names are upper case; a CD copied to another disk may have them in lower case
    on_disk = {str(p.relative_to(folder)).upper(): p for p in folder.rglob("*") if p.is_file()}
    relative = [_file_id(i, index) for i in ids]
    paths = [on_disk.get(str(r).upper(), folder / r) for r in relative]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        shown = ", ".join(str(p.relative_to(folder)) for p in absent[:3]) + (f" and {len(absent) - 3} more" if len(absent) > 3 else "")
        warnings.append(f"the DICOMDIR lists {len(absent)} file(s) that are not in {folder}: {shown}")
    return sorted(p for p in paths if p.is_file())


def _file_id(referenced_file_id, index: Path) -> Path:
    """A DICOMDIR's ReferencedFileID (path components) as a path inside the DICOMDIR's folder."""
    parts = [str(referenced_file_id)] if isinstance(referenced_file_id, str) else [str(p) for p in referenced_file_id]
    if not parts or any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
        raise InputError(f"{index}: the DICOMDIR names the file {'/'.join(parts)!r}, not a path inside its folder; "
                         "expected the file IDs of a DICOM medium")
    return Path(*parts)


def _read_headers(folder: Path, warnings: list[str]):
    headers, damaged = [], []
    for path in _listed_files(folder, warnings):
        if path.name.upper() == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as err:  # pydicom raises many types for damaged files
            if not isinstance(err, (InvalidDicomError, OSError, ValueError, TypeError, EOFError)) or looks_like_dicom(path):
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
# whose study it is, decoded in the character set the files declare (SpecificCharacterSet), for the results
PATIENT_KEYS = {"patient_name": "PatientName", "patient_id": "PatientID", "institution_name": "InstitutionName"}


def _shown(values) -> str:
    return "[" + ", ".join(f"{float(v) + 0.0:.4g}" for v in values) + "]"  # + 0.0: no "-0"


def _orientation(frames, folder: Path) -> np.ndarray:
    """ImageOrientationPatient shared by the series: two perpendicular unit vectors (row, column directions)."""
    found = []
    for frame in frames:
        try:
            orientation = np.array([float(v) for v in frame.get("ImageOrientationPatient")], dtype=float)
        except (AttributeError, TypeError, ValueError) as err:
            raise InputError(f"{frame.name} lacks a usable ImageOrientationPatient ({err}); expected 6 direction cosines") from None
        row, col = orientation[:3], orientation[3:]
        if (orientation.size != 6 or not np.all(np.isfinite(orientation)) or abs(np.linalg.norm(row) - 1) > ORIENTATION_TOLERANCE
                or abs(np.linalg.norm(col) - 1) > ORIENTATION_TOLERANCE or abs(row @ col) > ORIENTATION_TOLERANCE):
            raise InputError(f"{frame.name}: ImageOrientationPatient {_shown(orientation)} is not two perpendicular "
                             "unit vectors; expected the row and column direction cosines of the image")
        if found and np.abs(orientation - found[0][1]).max() > ORIENTATION_TOLERANCE:
            raise InputError(f"{folder}: images have different orientations ({found[0][0].name}: {_shown(found[0][1])}, "
                             f"{frame.name}: {_shown(orientation)}); expected one short-axis stack")
        if not found:
            found.append((frame, orientation))
    return found[0][1]


def _check_one_size(frames, folder: Path) -> None:
    sizes = Counter((int(getattr(f.ds, "Rows", 0) or 0), int(getattr(f.ds, "Columns", 0) or 0)) for f in frames)
    if len(sizes) > 1:
        shown = ", ".join(f"{r} x {c} ({n} images)" for (r, c), n in sizes.most_common())
        raise InputError(f"{folder}: the cine's images have different sizes ({shown}); expected one matrix for the "
                         "whole series (the folder mixes acquisitions or reconstructions)")


def _phase_kind(frames) -> str:
    """What identifies a phase: trigger times if the images have them, else a temporal position, else the order."""
    if any(float(f.get("TriggerTime", 0) or 0) for f in frames):
        return "trigger"
    if all(f.get("TemporalPositionIndex", None) is not None or f.get("TemporalPositionIdentifier", None) is not None
           for f in frames):
        return "index"
    return "order"


def _placed(frames, normal: np.ndarray, kind: str) -> list[Placed]:
    images = []
    for frame in frames:
        try:
            position = np.array([float(v) for v in frame.get("ImagePositionPatient")], dtype=float)
            if position.size != 3 or not np.all(np.isfinite(position)):
                raise ValueError(f"{position.size} values")
            instance = int(frame.get("InstanceNumber", 0) or 0)
            if kind == "trigger":
                phase = float(frame.get("TriggerTime", 0.0) or 0.0)
            elif kind == "index":
                phase = float(frame.get("TemporalPositionIndex", None) or frame.get("TemporalPositionIdentifier"))
            else:
                phase = float(frame.number or instance)
        except (AttributeError, TypeError, ValueError) as err:
            raise InputError(f"{frame.name} lacks a usable ImagePositionPatient, TriggerTime or InstanceNumber ({err})") from None
        images.append(Placed(frame, float(position @ normal), phase, instance, position))
    return images


def _pixels(grid, rows: int, cols: int) -> np.ndarray:
    """The cine's values (T, Z, Y, X), each file read (and decoded) once: a multi-frame file holds many images."""
    n_slices, n_phases = len(grid), len(grid[0])
    array = np.empty((n_phases, n_slices, rows, cols), dtype=np.float32)
    by_file = defaultdict(list)
    for z, phases in enumerate(grid):
        for t, image in enumerate(phases):
            by_file[image.frame.path].append((z, t, image.frame))
    for path, cells in by_file.items():
        _, stored, _ = read_pixels(path)  # InputError naming the file if no decoder reads it
        for z, t, frame in cells:
            index = (frame.number or 1) - 1
            if index >= len(stored) or stored[index].shape != (rows, cols):
                raise InputError(f"{frame.name} is {stored.shape[1:] if index < len(stored) else 'missing'}, "
                                 f"other images are {(rows, cols)}")
            slope = float(frame.get("RescaleSlope", 1) or 1)
            intercept = float(frame.get("RescaleIntercept", 0) or 0)
            array[t, z] = stored[index].astype(np.float32) * slope + intercept
    return array


def read_dicom_cine(folder: Path, series_uid=None) -> ImageData:
    """Read the short-axis cine of a DICOM folder (a study or one series): several slice positions x phases.

    `series_uid` chooses the series (several: one series per slice position, joined); otherwise
    `choose_series` finds it. The chosen series, and why, are in `meta["series"]`; `meta["files"][z][t]`
    is the file of each image, `meta["frame_numbers"][z][t]` its frame in a multi-frame file (else None);
    `meta["warnings"]` what the user should know (an image repeated, a phase left out)."""
    folder = Path(folder)
    warnings: list[str] = []
    frames = [frame for path, ds in _read_headers(folder, warnings) for frame in frames_of(path, ds)]
    frames, choice = choose_series(frames, folder, series_uid)
    warnings += choice.warnings
    _check_one_size(frames, folder)
    datasets = list({id(f.ds): f.ds for f in frames}.values())
    check_decodable(datasets, folder)
    warnings += lossy_warnings(datasets)
    orientation = _orientation(frames, folder)
    # the tag holds ~6 decimals: make the axes exactly orthonormal, so that outputs written with this
    # geometry read back with the same direction and spacing (a NRRD stores spacing x direction)
    row_cos = orientation[:3] / np.linalg.norm(orientation[:3])
    col_cos = orientation[3:] - (orientation[3:] @ row_cos) * row_cos
    col_cos /= np.linalg.norm(col_cos)
    normal = np.cross(row_cos, col_cos)
    try:
        pixel_spacing = [float(v) for v in frames[0].get("PixelSpacing")]
        if len(pixel_spacing) != 2:
            raise ValueError(f"{len(pixel_spacing)} values")
    except (AttributeError, TypeError, ValueError) as err:
        raise InputError(f"DICOM files in {folder} lack a usable PixelSpacing ({err}); expected 2 values in mm") from None

    kind = _phase_kind(frames)
    grid, locations, arranged = arrange(_placed(frames, normal, kind), kind, folder)
    warnings += arranged
    first = grid[0][0].frame
    rows, cols = int(first.ds.Rows), int(first.ds.Columns)
    array = _pixels(grid, rows, cols)
    n_phases = len(grid[0])

    if len(locations) > 1:
        slice_spacing = float(np.median(np.diff(locations)))
    else:
        slice_spacing = float(first.get("SpacingBetweenSlices", None) or first.get("SliceThickness", 1.0) or 1.0)
    origin = grid[0][0].position
    # SimpleITK direction: columns are the x (row direction), y (column direction), z (normal) axes.
    direction = np.stack([row_cos, col_cos, normal], axis=1).ravel()
    geometry = Geometry((pixel_spacing[1], pixel_spacing[0], slice_spacing), tuple(origin), tuple(direction))
    triggers = [image.phase for image in grid[0]] if kind == "trigger" else [0.0] * n_phases
    meta = {"manufacturer": str(getattr(first.ds, "Manufacturer", "")),
            "files": [[str(image.frame.path) for image in phases] for phases in grid],  # [z][t] -> file path
            "frame_numbers": [[image.frame.number for image in phases] for phases in grid],
            "series": {"uid": choice.summary.uid, "description": choice.summary.description, "reason": choice.reason},
            "patient": {key: str(getattr(first.ds, keyword, "") or "").strip()
                        for key, keyword in PATIENT_KEYS.items()},
            "warnings": warnings}
    image = ImageData(array if n_phases > 1 else array[0], geometry, triggers if n_phases > 1 else None, meta)
    return image
