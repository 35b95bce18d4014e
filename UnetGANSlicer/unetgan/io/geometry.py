"""Images in memory: an array with its spatial geometry (no file formats here).

Arrays follow SimpleITK's order: a volume is (Z, Y, X), a cine (T, Z, Y, X).
Geometry is 3D, in SimpleITK's (x, y, z) order, shared by every frame of a cine.
Every reader (io/images.py for image files, io/dicom.py for DICOM) builds these; this module
imports no reader, so the import graph stays one-way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

# how far direction cosines may be from a rotation (rounding in DICOM/NIfTI headers is ~1e-6)
DIRECTION_TOLERANCE = 1e-2


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
        if not all(np.isfinite(self.origin)):
            raise InputError(f"image origin must be finite, got {self.origin}")
        axes = np.reshape(self.direction, (3, 3))
        if not np.all(np.isfinite(axes)) or np.abs(axes.T @ axes - np.eye(3)).max() > DIRECTION_TOLERANCE:
            shown = ", ".join(f"{v:.4g}" for v in self.direction)
            raise InputError(f"direction cosines ({shown}) are not orthonormal: the voxel grid is sheared or degenerate; "
                             "expected three perpendicular unit axes (an oblique, rotated grid is fine)")

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
