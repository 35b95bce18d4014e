"""Dataset manifests: CSV rows `subject, vendor, phase, image, label, split`, paths relative to the CSV.

A row's image is a 3D volume file, or a DICOM cine folder (phase `cine`) whose label is
a Sunnybrook contour folder. Label conventions are mapped to ours: 1 LV blood pool,
2 LV myocardium, everything else 0.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import read_image
from .labelled import LabelledVolume, ManifestItem  # noqa: F401 (re-exported for the training code)
from .sunnybrook import load_contoured_phases

REQUIRED_COLUMNS = ("subject", "vendor", "phase", "image", "label", "split")

# source label value -> our label value (1 blood pool, 2 myocardium)
LABEL_CONVENTIONS = {
    "mnms": {1: 1, 2: 2},  # M&Ms: 1 LV, 2 MYO, 3 RV
    "acdc": {3: 1, 2: 2},  # ACDC: 1 RV, 2 MYO, 3 LV
}


def read_manifest(path: str | Path, vendors=None, splits=None, require_labels: bool = False,
                  subjects=None) -> list[ManifestItem]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}; expected {','.join(REQUIRED_COLUMNS)}")
            rows = [(reader.line_num, row) for row in reader]  # line numbers as an editor shows them
    except UnicodeDecodeError as err:
        raise InputError(f"{path.name}: not UTF-8 text ({err.reason} at byte {err.start}); expected a CSV file") from None
    except csv.Error as err:
        raise InputError(f"{path.name} line {reader.line_num}: not valid CSV ({err})") from None
    wanted_vendors = {v.lower() for v in vendors} if vendors else None
    wanted_splits = set(splits) if splits else None
    items = []
    for line, row in rows:
        short = [c for c in REQUIRED_COLUMNS if row.get(c) is None]
        if short:  # csv gives None for the columns a short row lacks
            raise InputError(f"{path.name} line {line}: {len(REQUIRED_COLUMNS) - len(short)} of {len(REQUIRED_COLUMNS)} "
                             f"values, missing {', '.join(short)}; expected {','.join(REQUIRED_COLUMNS)}")
        if None in row:  # csv puts the values beyond the header under None
            raise InputError(f"{path.name} line {line}: {len(row) - 1 + len(row[None])} values for {len(row) - 1} columns "
                             "(a comma in a name? quote it); expected " + ",".join(REQUIRED_COLUMNS))
        if wanted_vendors and row["vendor"].lower() not in wanted_vendors:
            continue
        if wanted_splits and row["split"] not in wanted_splits:
            continue
        if subjects is not None and row["subject"] not in subjects:
            continue
        try:
            image = (path.parent / row["image"]).resolve() if row["image"] else None
            label = (path.parent / row["label"]).resolve() if row["label"] else None
            if image is None:
                raise InputError(f"{path.name} line {line}: empty image path")
            if not image.exists():
                raise InputError(f"{path.name} line {line}: image not found: {row['image']}")
            if label is not None and not label.exists():
                raise InputError(f"{path.name} line {line}: label not found: {row['label']}")
        except (OSError, ValueError) as err:  # a NUL byte, a name too long for the file system
            if isinstance(err, InputError):
                raise
            raise InputError(f"{path.name} line {line}: unusable path ({err})") from None
        if require_labels and label is None:
            raise InputError(f"{path.name} line {line}: {row['subject']} {row['phase']} has no label")
        items.append(ManifestItem(row["subject"], row["vendor"], row["phase"], image, label, row["split"]))
    if not items:
        raise InputError(f"{path.name}: no rows match vendor(s) {vendors or 'any'} and split(s) {splits or 'any'}")
    return items


def convert_labels(labels: np.ndarray, convention: str = "mnms") -> np.ndarray:
    try:
        mapping = LABEL_CONVENTIONS[convention]
    except KeyError:
        raise InputError(f"unknown label convention {convention!r}; choose from {', '.join(LABEL_CONVENTIONS)}") from None
    values = np.unique(labels)
    if values.size and (values.min() < 0 or values.max() > 255 or not np.all(values == np.round(values))):
        raise InputError(f"labels must be small non-negative integers, found values {values[:8]}")
    out = np.zeros(labels.shape, dtype=np.uint8)
    for source, ours in mapping.items():
        out[labels == source] = ours
    return out


def load_item(item: ManifestItem, convention: str = "mnms") -> list[LabelledVolume]:
    """The volumes of one manifest row: one for a 3D row, one per contoured phase for a cine row."""
    if item.is_cine:
        return load_contoured_phases(item)
    image = read_image(item.image)
    if image.is_cine:
        raise InputError(f"{item.image.name} is a cine; manifest rows with phase {item.phase!r} must be 3D volumes")
    labels = None
    if item.label is not None:
        reference = read_image(item.label)
        if reference.array.shape != image.array.shape:
            raise InputError(f"{item.label.name}: label shape {reference.array.shape} differs from image {image.array.shape}")
        try:
            labels = convert_labels(reference.array, convention)
        except InputError as err:
            raise InputError(f"{item.label.name}: {err}") from None
    return [LabelledVolume(item.subject, item.vendor, item.phase, image, labels)]
