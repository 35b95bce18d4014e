"""Images with their geometry: NIfTI, NRRD, MHA (3D or 4D) and DICOM cine folders.

Arrays follow SimpleITK's order: a volume is (Z, Y, X), a cine (T, Z, Y, X).
Geometry is 3D, in SimpleITK's (x, y, z) order, shared by every frame of a cine.
"""
from __future__ import annotations

import gzip
import os
import re
import stat
import struct
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from . import safety
from .dicom import read_dicom_cine
from .geometry import DIRECTION_TOLERANCE, Geometry, ImageData  # noqa: F401 (re-exported: readers' callers import them here)

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
EXPECTED_FILES = "a NIfTI, NRRD or MHA file (3D stack or 4D cine) or a DICOM folder"
# memory a run needs per voxel: the image as read, the translation (float32) and the labels (uint8)
RUN_BYTES_PER_VOXEL = 9


def read_image(path: str | os.PathLike, series_uid: str | None = None, data_files: str = safety.BESIDE) -> ImageData:
    """Read a 3D volume or 4D cine from an image file or a DICOM folder (a study: `series_uid`, or the
    short-axis cine found among its series). `data_files`: where a header's separate data file may be
    (:mod:`.safety`: "beside" the header, or "attached" only, for files from others)."""
    path = Path(path)
    if not os.path.lexists(path):
        raise InputError(f"input not found: {path}")
    if stat.S_ISDIR(safety.check_input_path(path).st_mode):  # a pipe or device would block the readers
        safety.check_dicom_folder(path, policy=data_files)
        return read_dicom_cine(path, series_uid)
    if str(path).lower().endswith(".dcm"):
        safety.check_dicom_folder(path.parent, policy=data_files)
        return read_dicom_cine(path.parent, series_uid)
    safety.check_data_file(path, data_files)

    def itk_read():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        with _native_stderr_silenced():  # the NIfTI library prints its own "** ERROR" lines beside the exception
            reader.ReadImageInformation()  # the header only: sizes are checked before any voxel is allocated
        _check_size(path, reader.GetSize())
        _check_nifti_complete(path)  # ITK fills a truncated NIfTI with zeros instead of failing
        return reader.Execute()

    try:
        image, warnings = safety.read_tolerating_rounded_sform(path, itk_read)
    except RuntimeError as err:
        raise InputError(f"cannot read {path.name}: not a readable image file ({_first_line(err)}); "
                         f"expected {EXPECTED_FILES}") from None
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
    return ImageData(array=array, geometry=Geometry.of(image), meta={"warnings": warnings})


def to_sitk(array: np.ndarray, geometry: Geometry) -> sitk.Image:
    """An array (Z, Y, X) or (T, Z, Y, X) as a SimpleITK image with the given spatial geometry."""
    if array.ndim == 3:
        return geometry.apply_to(sitk.GetImageFromArray(array))
    if array.ndim == 4:
        # one copy of the cine (a list of frames then JoinSeries made two): large studies stay within memory
        image = sitk.GetImageFromArray(array, isVector=False)
        image.SetSpacing(geometry.spacing + (1.0,))
        image.SetOrigin(geometry.origin + (0.0,))
        direction = np.eye(4)
        direction[:3, :3] = np.reshape(geometry.direction, (3, 3))
        image.SetDirection(tuple(direction.ravel()))
        return image
    raise InputError(f"expected a 3D or 4D array, got shape {array.shape}")


def write_image(array: np.ndarray, geometry: Geometry, path: str | os.PathLike, overwrite: bool = True,
                compress: bool = True) -> Path:
    """Write atomically: a temporary file in the same folder, renamed when complete.

    compress=False for files that only hand images between processes (read once, then deleted):
    compressing a 300-image float32 cine takes about 1.5 s, writing it raw about 0.2 s."""
    from ..outputs import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    image = to_sitk(np.ascontiguousarray(array), geometry)
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return path


def _check_size(path: Path, size) -> None:
    """Refuse an empty image, or one too large for this machine's memory, from its header."""
    shown = " x ".join(str(n) for n in size)
    voxels = int(np.prod([int(n) for n in size], dtype=object))
    if voxels == 0:
        raise InputError(f"{path.name} is empty ({shown} voxels); expected a 3D stack or a 4D cine")
    memory = _physical_memory()
    if memory and voxels * RUN_BYTES_PER_VOXEL > memory:
        raise InputError(f"{path.name} is {shown} voxels: about {voxels * RUN_BYTES_PER_VOXEL / 2**30:.0f} GiB to process, "
                         f"more than this machine's {memory / 2**30:.0f} GiB of memory; crop it around the heart or "
                         "split the cine")


def _check_nifti_complete(path: Path) -> None:
    """Refuse a NIfTI file (.nii, .nii.gz) that holds fewer bytes than its header promises."""
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return
    compressed = name.endswith(".gz")
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            head = handle.read(540)
        expected = _nifti_bytes(head)
        if expected is None:
            return  # a header we do not parse (ITK accepted it): leave it to ITK
        if not compressed:
            size = path.stat().st_size
        else:
            with open(path, "rb") as raw:  # gzip's trailer holds the size mod 2**32: the usual case costs nothing
                raw.seek(-4, os.SEEK_END)
                if int.from_bytes(raw.read(4), "little") == expected % 2**32:
                    return
            with gzip.open(path, "rb") as handle:  # else count (a truncated stream raises EOFError)
                size = sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 22), b""))
    except (EOFError, OSError, zlib.error) as err:
        raise InputError(f"cannot read {path.name}: the file is truncated or damaged ({err}); expected {EXPECTED_FILES}") from None
    if size < expected:
        raise InputError(f"cannot read {path.name}: the file is truncated ({size} of {expected} bytes"
                         f"{' once decompressed' if compressed else ''}); expected {EXPECTED_FILES}")


def _nifti_bytes(head: bytes) -> int | None:
    """Header plus voxel bytes that a NIfTI-1 or NIfTI-2 header announces, or None if it is not one."""
    for endian in "<>":
        sizeof_hdr = struct.unpack(endian + "i", head[:4])[0] if len(head) >= 4 else 0
        if sizeof_hdr == 348 and len(head) >= 348:  # NIfTI-1: dim int16[8] at 40, bitpix at 72, vox_offset float at 108
            dims = struct.unpack(endian + "8h", head[40:56])
            bitpix, offset = struct.unpack(endian + "h", head[72:74])[0], struct.unpack(endian + "f", head[108:112])[0]
            break
        if sizeof_hdr == 540 and len(head) >= 540:  # NIfTI-2: bitpix at 14, dim int64[8] at 16, vox_offset int64 at 168
            dims = struct.unpack(endian + "8q", head[16:80])
            bitpix, offset = struct.unpack(endian + "h", head[14:16])[0], struct.unpack(endian + "q", head[168:176])[0]
            break
    else:
        return None
    if not 1 <= dims[0] <= 7 or bitpix <= 0 or not np.isfinite(offset) or offset < 0:
        return None
    return int(offset) + int(np.prod([max(1, int(d)) for d in dims[1 : dims[0] + 1]], dtype=object)) * bitpix // 8


@contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a moment: C libraries print there; what they say is in the exception."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        saved = None
    if saved is None:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not on every platform (Windows): no check there
        return None


def _first_line(err: Exception) -> str:
    """The useful part of an ITK/SimpleITK error: the reader's own reason, without addresses and matrices."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    specific = [line for line in lines if line.startswith("[nrrd]")]
    if specific:
        return specific[-1][:200]
    errors = [line for line in lines if "ERROR:" in line]
    if errors:
        reason = errors[-1].split("ERROR:", 1)[1]
        reason = re.sub(r"^\s*\w+\(0x[0-9a-fA-F]+\):\s*", "", reason)  # "Image(0x55d...): "
        reason = reason.split(" Refusing to change")[0].strip()
        if reason:
            return reason[:200]
    return lines[-1][:200]
