"""Checks made before an image reader opens anything: what the path is, and what its header points to.

Readers block or wander when fed the wrong kind of path: ITK opens a named pipe
and waits for a writer forever; a MetaImage ``ElementDataFile`` or an NRRD
``data file`` line names any file on the disk, which the reader then shows as an
image; a DICOM folder can hold a symbolic-link loop or tens of thousands of other
files. Each case here becomes one :class:`InputError` at once.

Two policies for headers that point to a separate data file:

- ``"beside"`` (the command line: the user's own disk): the data file must be a
  plain name in the header's own folder;
- ``"attached"`` (the web page: someone else's server): only self-contained
  files (``.mha`` with ``ElementDataFile = LOCAL``, ``.nrrd`` without a
  ``data file`` line, single-file NIfTI ``n+1``/``n+2``).

NIfTI files whose sform is orthonormal only to rounding (converters write them so)
are read by :func:`read_permissive_nifti` in ITK's own permissive mode, with a
warning giving the deviation, up to :data:`SFORM_TOLERANCE`.
"""
from __future__ import annotations

import errno
import gzip
import os
import stat
import struct
import threading
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom import looks_like_dicom  # the DICOM reader's own test: it opens nothing else

ATTACHED, BESIDE = "attached", "beside"
HEADER_BYTES = 64 * 1024  # MetaImage and NRRD headers are text lines far shorter than this
# A DICOM folder holding more entries than this is not one cine or one study: refused before any is opened.
MAX_FOLDER_FILES = 50_000
# Largest |R^T R - I| (R: the sform's 3x3 with unit columns) read with a warning. ITK refuses above 1e-4;
# converters' float32 rounding stays near 1e-4; a real shear of 0.06 degree is 1e-3.
SFORM_TOLERANCE = 1e-3
ITK_PERMISSIVE_VARIABLE = "ITK_NIFTI_SFORM_PERMISSIVE"
DETACHED_SUFFIXES = (".hdr", ".img", ".img.gz", ".mhd", ".nhdr", ".raw", ".raw.gz")

_KIND = {stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device",
         stat.S_ISSOCK: "a socket"}


def _stat(path: Path) -> os.stat_result:
    try:
        return os.stat(path)  # follows links: a link to a pipe is a pipe
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(f"{path}: a symbolic link loop (the link points back to itself); "
                             "expected an image file or a DICOM folder") from None
        if err.errno == errno.ENOENT and os.path.islink(path):
            raise InputError(f"{path}: a broken symbolic link (its target {os.readlink(path)!r} does not exist)") from None
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def special_kind(mode: int) -> str | None:
    """'a named pipe (FIFO)', 'a socket', ... for a mode that is neither a regular file nor a folder."""
    return next((name for test, name in _KIND.items() if test(mode)), None)


def check_input_path(path: str | os.PathLike) -> os.stat_result:
    """The path's status if it is a regular file or a folder; else one clear error (a pipe would block a reader)."""
    path = Path(path)
    info = _stat(path)
    kind = special_kind(info.st_mode)
    if kind:
        raise InputError(f"{path} is {kind}, not an image file: give a NIfTI, NRRD or MHA file or a DICOM folder")
    return info


# ---------------------------------------------------------------- headers that point to other files

def _header_text(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
    return head.decode("latin-1")


def _nrrd_data_file(text: str) -> str | None:
    """The value of an NRRD header's ``data file`` (or ``datafile``) field, or None (data attached)."""
    for line in text.split("\n")[1:]:
        line = line.rstrip("\r")
        if not line:  # the blank line ends the header: the data follow, attached
            return None
        key, sep, value = line.partition(": ")  # fields are "key: value"; key/value pairs use ":="
        if sep and key.strip().lower() in ("data file", "datafile"):
            return value.strip()
    return None


def _metaimage_data_file(text: str) -> str | None:
    """The value of a MetaImage header's ``ElementDataFile`` field, or None (data attached)."""
    for line in text.split("\n"):
        key, sep, value = line.partition("=")
        if sep and key.strip() == "ElementDataFile":
            value = value.strip()
            return None if value.upper() == "LOCAL" else value
    return None


def _nifti_magic(path: Path) -> bytes | None:
    try:
        with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as handle:
            head = handle.read(348)
    except (OSError, EOFError, zlib.error):
        return None
    return head[344:348] if len(head) >= 348 else None


PAIR = "pair"  # an Analyze / NIfTI .hdr + .img pair: ITK finds the partner beside the header by its name


def data_file_pointer(path: Path) -> str | None:
    """What the header of ``path`` names as its separate data file (:data:`PAIR` for a .hdr/.img pair),
    or None when the data are in the file itself. Read from the content, not the name: ITK picks a reader by
    content for NRRD."""
    name = path.name.lower()
    if name.endswith((".hdr", ".img", ".img.gz")):
        return PAIR
    if name.endswith((".nii", ".nii.gz")):
        return PAIR if _nifti_magic(path) in (b"ni1\x00", b"ni2\x00") else None
    text = _header_text(path)
    if text.startswith("NRRD"):
        return _nrrd_data_file(text)
    if name.endswith((".mha", ".mhd")) or "ElementDataFile" in text:
        return _metaimage_data_file(text)
    return None


def check_data_file(path: str | os.PathLike, policy: str = BESIDE) -> None:
    """Refuse a header whose data file is elsewhere (``beside``) or separate at all (``attached``)."""
    path = Path(path)
    pointer = data_file_pointer(path)
    if pointer is None:
        return
    if policy == ATTACHED:
        shown = "a .hdr/.img pair" if pointer == PAIR else repr(pointer)
        raise InputError(f"{path.name}: its header points to a separate data file ({shown}); only files with "
                         "their data attached are read here (.mha with ElementDataFile = LOCAL, .nrrd without a "
                         "'data file' line, .nii or .nii.gz)")
    if pointer == PAIR:
        return
    if (pointer.upper().startswith("LIST") or "%" in pointer or "/" in pointer or "\\" in pointer
            or " " in pointer or pointer in (".", "..")):
        raise InputError(f"{path.name}: its header names the data file {pointer!r}, not a plain file name beside it; "
                         "keep the data file in the header's folder (or save the image as one .nrrd/.mha/.nii.gz file)")
    data = path.parent / pointer
    if os.path.dirname(os.path.realpath(data)) != os.path.realpath(path.parent):
        raise InputError(f"{path.name}: its data file {pointer!r} is a link to another folder; "
                         "keep the data file itself beside the header")
    if os.path.lexists(data):
        check_input_path(data)  # the data file must not be a pipe either


# ---------------------------------------------------------------- DICOM folders

def check_dicom_folder(folder: str | os.PathLike, max_files: int = MAX_FOLDER_FILES, policy: str = BESIDE) -> int:
    """Walk ``folder`` (links to folders are not followed, as the DICOM reader does) before any file is parsed.

    Refuses symbolic-link loops, pipes, devices and sockets, more than ``max_files``
    entries, and a folder where no file carries a DICOM header ("DICM" at byte 128
    or a ``.dcm`` name: the reader opens nothing else). With the ``attached`` policy
    (the page) a link to a file outside the folder is refused too. Returns the number of files."""
    folder = Path(folder)
    real_folder = os.path.realpath(folder)
    files, dicom = 0, 0
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as err:
            raise InputError(f"cannot list {current}: {err.strerror or err}") from None
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    pending.append(path)
                continue
            if entry.is_symlink() and os.path.isdir(path):
                continue
            info = _stat(path) if entry.is_symlink() else entry.stat(follow_symlinks=False)
            if policy == ATTACHED and entry.is_symlink() and \
                    not os.path.realpath(path).startswith(real_folder + os.sep):
                raise InputError(f"{folder}: {path.relative_to(folder)} is a link to a file outside the folder; "
                                 "files from the page are read only inside the folder given")
            kind = special_kind(info.st_mode)
            if kind:
                raise InputError(f"{folder}: {path.relative_to(folder)} is {kind}, not a file; "
                                 "a DICOM folder should hold only the images of one study")
            files += 1
            if files > max_files:
                raise InputError(f"{folder} holds more than {max_files} files: not one DICOM study; "
                                 "give the folder of one cine series (or one study)")
            if not dicom and looks_like_dicom(path):
                dicom += 1
    if files and not dicom:
        raise InputError(f"no DICOM images found in {folder}: none of its {files} files has a DICOM header "
                         "('DICM' at byte 128); expected a folder of DICOM images of one cine")
    return files


# ---------------------------------------------------------------- NIfTI sform within rounding

def nifti_sform_deviation(path: str | os.PathLike) -> float | None:
    """max |R^T R - I| of the NIfTI-1 sform's rotation part (unit columns), or None without an sform."""
    path = Path(path)
    try:
        with (gzip.open if path.name.lower().endswith(".gz") else open)(path, "rb") as handle:
            head = handle.read(348)
    except (OSError, EOFError, zlib.error):
        return None
    for endian in "<>":
        if len(head) >= 348 and struct.unpack_from(endian + "i", head, 0)[0] == 348:
            if struct.unpack_from(endian + "h", head, 254)[0] <= 0:  # sform_code: no sform
                return None
            rows = np.array([struct.unpack_from(endian + "4f", head, 280 + 16 * i)[:3] for i in range(3)], float)
            norms = np.linalg.norm(rows, axis=0)
            if not np.all(np.isfinite(rows)) or np.any(norms == 0):
                return float("inf")
            unit = rows / norms
            return float(np.abs(unit.T @ unit - np.eye(3)).max())
    return None


_PERMISSIVE = threading.Lock()


@contextmanager
def itk_permissive_sform():
    """ITK's NIfTI reader in permissive mode (it takes the nearest rotation of the sform) for this block only."""
    import SimpleITK as sitk

    with _PERMISSIVE:
        saved = os.environ.get(ITK_PERMISSIVE_VARIABLE)
        os.environ[ITK_PERMISSIVE_VARIABLE] = "1"  # ITK checks that the variable is set, not its value
        display = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK's own "non-orthogonal sform" lines: ours replace them
        try:
            yield
        finally:
            sitk.ProcessObject.SetGlobalWarningDisplay(display)
            if saved is None:
                del os.environ[ITK_PERMISSIVE_VARIABLE]
            else:
                os.environ[ITK_PERMISSIVE_VARIABLE] = saved


def sform_warning(path: Path, deviation: float) -> str:
    """The warning for an sform read in permissive mode, or InputError beyond :data:`SFORM_TOLERANCE`."""
    if not deviation <= SFORM_TOLERANCE:
        raise InputError(f"cannot read {path.name}: its sform direction cosines are not orthonormal "
                         f"(deviation {deviation:.2g} > tolerance {SFORM_TOLERANCE:g}): the voxel grid is sheared; "
                         "expected perpendicular axes (re-export the image from the scanner's DICOM)")
    return (f"{path.name}: the sform's direction cosines are orthonormal only to {deviation:.1e} "
            f"(tolerance {SFORM_TOLERANCE:g}); read with the nearest rotation, as ITK's permissive mode and "
            "nibabel-based tools do")


def read_tolerating_rounded_sform(path: Path, read):
    """``read()`` (an ITK read of ``path``) and the warnings it needs: a NIfTI that ITK refuses for an sform
    orthonormal only to rounding is read again in ITK's permissive mode, within :data:`SFORM_TOLERANCE`.
    ITK's other errors (RuntimeError) pass through."""
    try:
        return read(), []
    except RuntimeError as err:
        deviation = nifti_sform_deviation(path) if "orthonormal" in str(err) else None
        if deviation is None:
            raise
    warning = sform_warning(path, deviation)
    with itk_permissive_sform():
        return read(), [warning]
