"""What counts as one image input in a folder tree: each image file, and each DICOM study."""
from __future__ import annotations

import os
from pathlib import Path

from .dicom import looks_like_dicom
from .images import IMAGE_SUFFIXES


def is_image_file(path: Path) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def _study_uid(dicom_file: Path) -> str | None:
    import pydicom

    try:
        return str(pydicom.dcmread(dicom_file, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
                   .get("StudyInstanceUID", "")) or None
    except Exception:  # a damaged file: the reader will say so when the study is run
        return None


def _dicom_studies(series_folders: dict[Path, str | None]) -> list[Path]:
    """Folders holding DICOM files, grouped by StudyInstanceUID: a study is the folder above all its series
    (the readers search it for the short-axis cine). Where studies share folders, each folder stays apart."""
    groups: dict[str, list[Path]] = {}
    for folder, uid in series_folders.items():
        groups.setdefault(uid or str(folder), []).append(folder)
    tops = {uid: Path(os.path.commonpath(folders)) for uid, folders in groups.items()}
    studies = []
    for uid, top in tops.items():
        others = [f for other, folders in groups.items() if other != uid for f in folders]
        overlaps = any(top == f or top in f.parents for f in others)
        studies += groups[uid] if overlaps else [top]
    return sorted(set(studies))


def image_inputs(folder: Path, exclude: Path | None = None) -> list[Path]:
    """Image files and DICOM studies below `folder`, sorted.

    Hidden files and folders (our own staging folders among them) and everything below `exclude`
    (an output folder placed inside the inputs) are left out."""
    folder = Path(folder)
    exclude = None if exclude is None else Path(exclude).resolve()
    files, series_folders = [], {}
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (root_path / d).resolve() != exclude))
        visible = sorted(n for n in names if not n.startswith("."))
        if any(n.upper() == "DICOMDIR" for n in visible):  # a patient CD: one input, read through its index
            series_folders[root_path] = None
            dirs[:] = []
            continue
        files += [root_path / n for n in visible if is_image_file(root_path / n)]
        first_dicom = next((root_path / n for n in visible
                            if not is_image_file(root_path / n) and looks_like_dicom(root_path / n)), None)
        if first_dicom is not None:
            series_folders[root_path] = _study_uid(first_dicom)
    return sorted(files + _dicom_studies(series_folders))
