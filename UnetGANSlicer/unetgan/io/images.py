"""Images with their geometry: NIfTI, NRRD, MHA (3D or 4D) and DICOM cine folders.

Arrays follow SimpleITK's order: a volume is (Z, Y, X), a cine (T, Z, Y, X).
Geometry is 3D, in SimpleITK's (x, y, z) order, shared by every frame of a cine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Geometry:
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        object.__setattr__(self, "direction", tuple(float(s) for s in self.direction))
        if len(self.spacing) != 3 or len(self.origin) != 3 or len(self.direction) != 9:
            raise InputError("geometry must be 3D: 3 spacings, 3 origin values, 9 direction values")
        if not all(np.isfinite(self.spacing)) or min(self.spacing) <= 0:
            raise InputError(f"voxel spacing must be positive and finite, got {self.spacing}")

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def of(cls, image: sitk.Image) -> "Geometry":
        dim = image.GetDimension()
        direction = np.array(image.GetDirection()).reshape(dim, dim)[:3, :3]
        return cls(image.GetSpacing()[:3], image.GetOrigin()[:3], tuple(direction.ravel()))


@dataclass
class ImageData:
    """A 3D volume (Z, Y, X) or a cine (T, Z, Y, X) with its spatial geometry."""

    array: np.ndarray
    geometry: Geometry
    trigger_times_ms: list[float] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def is_cine(self) -> bool:
        return self.array.ndim == 4

    @property
    def frames(self) -> np.ndarray:
        """Always (T, Z, Y, X): a 3D volume is a cine of one frame."""
        return self.array if self.is_cine else self.array[None]


def read_image(path: str | os.PathLike) -> ImageData:
    """Read a 3D volume or 4D cine from an image file or a DICOM folder."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        from .dicom import read_dicom_cine

        return read_dicom_cine(path)
    if str(path).lower().endswith(".dcm"):
        from .dicom import read_dicom_cine

        return read_dicom_cine(path.parent)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"cannot read {path.name}: not a readable image file ({_first_line(err)})") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path.name} has {image.GetNumberOfComponentsPerPixel()} components per voxel; expected a grey-level MRI")
    dim = image.GetDimension()
    if dim < 3:
        raise InputError(f"{path.name} is a {dim}D image; expected a 3D short-axis stack or a 4D cine")
    if dim > 4:
        raise InputError(f"{path.name} is a {dim}D image; expected 3D or 4D")
    array = sitk.GetArrayFromImage(image)
    if dim == 4 and array.shape[0] == 1:
        array = array[0]
    return ImageData(array=array, geometry=Geometry.of(image))


def to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    """An array (Z, Y, X) or (T, Z, Y, X) as a SimpleITK image with the given spatial geometry."""
    if array.ndim == 3:
        return geometry.apply_to(sitk.GetImageFromArray(array))
    if array.ndim == 4:
        frames = [geometry.apply_to(sitk.GetImageFromArray(frame)) for frame in array]
        return sitk.JoinSeries(frames)
    raise InputError(f"expected a 3D or 4D array, got shape {array.shape}")


def write_image(array: np.ndarray, geometry: Geometry, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Write atomically: a temporary file in the same folder, renamed when complete."""
    from ..outputs import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    image = to_sitk(np.ascontiguousarray(array), geometry)
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)
    return path


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(err).__name__
