"""Labelled and unlabelled slices for training, loaded from manifests and folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES, read_image
from ..io.manifest import LabelledVolume, load_item, read_manifest
from ..preprocess import prepare_labels, prepare_volume, with_neighbours


@dataclass
class SliceSet:
    images: torch.Tensor  # (N, 1 + 2 context, 192, 192) float32 in [0, 1] (preprocess.with_neighbours)
    labels: torch.Tensor | None  # (N, 192, 192) int64
    subjects: list[str]


def labelled_volumes(manifest, vendors=None, splits=None, convention="mnms", progress=True) -> list[LabelledVolume]:
    items = read_manifest(manifest, vendors, splits)
    volumes = []
    for item in tqdm(items, desc="loading", disable=not progress, leave=False):
        volumes.extend(load_item(item, convention))
    return volumes


def slices_of(volumes: list[LabelledVolume], with_labels: bool = True, context: int = 0) -> SliceSet:
    images, labels, subjects = [], [], []
    for volume in volumes:
        slices, grid = prepare_volume(volume.image.array, volume.image.geometry.spacing)
        images.append(with_neighbours(slices, context))
        subjects += [volume.subject] * slices.shape[0]
        if with_labels:
            if volume.labels is None:
                raise InputError(f"{volume.subject} {volume.phase} has no labels")
            labels.append(prepare_labels(volume.labels, grid))
    return SliceSet(torch.cat(images), torch.cat(labels) if with_labels else None, subjects)


def prepared_volumes(volumes: list[LabelledVolume]):
    """Each volume's normalised network slices (Z, 1, 192, 192), one volume at a time (labels unused)."""
    for volume in volumes:
        yield prepare_volume(volume.image.array, volume.image.geometry.spacing)[0]


def split_subjects(subjects: list[str], n_val: int, seed: int) -> tuple[list[str], list[str]]:
    """Validation subjects drawn once by a seeded shuffle: no subject is in both parts."""
    unique = sorted(set(subjects))
    if n_val >= len(unique):
        raise InputError(f"{len(unique)} subjects cannot give {n_val} validation subjects and a training set")
    order = np.random.default_rng(seed).permutation(len(unique))
    val = sorted(unique[i] for i in order[:n_val])
    return [s for s in unique if s not in val], val


def unlabelled_volume_files(folder: Path) -> list[Path]:
    """Image files and DICOM folders below a folder (for training adapters on a user's own data)."""
    folder = Path(folder)
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and str(p).lower().endswith(IMAGE_SUFFIXES)]
    dicom_dirs = sorted({p.parent for p in folder.rglob("*.dcm")})
    if not files and not dicom_dirs:
        raise InputError(f"no images (.nii.gz, .nrrd, .mha) or DICOM folders found in {folder}")
    return files + dicom_dirs


def unlabelled_frames(paths: list[Path], progress=True):
    """Every frame (Z, Y, X) of every image, with its spacing."""
    for path in tqdm(paths, desc="loading", disable=not progress, leave=False):
        image = read_image(path)
        for frame in image.frames:
            yield frame, image.geometry.spacing


def unlabelled_slices(paths: list[Path], progress=True, histogram_reference=None) -> torch.Tensor:
    """Every frame of every image as network slices (N, 1, 192, 192), optionally histogram-matched first."""
    from ..histogram import match_to_reference

    out = []
    for frame, spacing in unlabelled_frames(paths, progress):
        if histogram_reference is not None:
            frame = match_to_reference(frame, histogram_reference)
        out.append(prepare_volume(frame, spacing)[0])
    return torch.cat(out)


def adapter_training_slices(source_paths, target_paths, histogram_match: bool, progress=True):
    """Source and target slices (N, 192, 192) for adapter training, and the metadata the adapter must carry.

    With `histogram_match` the target images are first matched to the source's mean quantile
    function (also done at inference, from the adapter's metadata), so the GAN learns only
    what histogram matching leaves over."""
    from ..histogram import reference_from

    extra, reference = {}, None
    if histogram_match:
        reference = reference_from([frame for frame, _ in unlabelled_frames(source_paths, progress=False)])
        extra = {"target_preprocessing": "histmatch", "histogram_reference": reference.tolist()}
    source = unlabelled_slices(source_paths, progress)
    target = unlabelled_slices(target_paths, progress, histogram_reference=reference)
    return source[:, 0].numpy(), target[:, 0].numpy(), extra
