"""Inputs that are not image files, headers that point elsewhere, and real NIfTI sforms ITK refuses.

Every case must end in one `InputError` (the CLI's `ERROR:` line) at once, never a
hang: a named pipe, a device, a socket, symbolic-link loops, a DICOM folder of
tens of thousands of other files. Files are made here to match what real
converters write (no real data): an sform whose direction cosines are
orthonormal only to ~1e-4 is made by editing a NIfTI header's srow fields.
"""
from __future__ import annotations

import gzip
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tiny_lvunet
from unetgan.errors import InputError
from unetgan.io import safety
from unetgan.io.images import Geometry, read_image, write_image

SECRET = b"TOP-SECRET-SERVER-BYTES"
QUICK_S = 5.0


def read_error(path, **kwargs) -> str:
    start = time.monotonic()
    with pytest.raises(InputError) as caught:
        read_image(path, **kwargs)
    assert time.monotonic() - start < QUICK_S
    return str(caught.value)


# ---------------------------------------------------------------- not files

def test_named_pipe_is_refused_at_once(tmp_path):
    pipe = tmp_path / "cine.nii.gz"
    os.mkfifo(pipe)
    assert "named pipe" in read_error(pipe)
    link = tmp_path / "link.nrrd"
    link.symlink_to(pipe)
    assert "named pipe" in read_error(link)


def test_device_and_socket_are_refused(tmp_path):
    device = tmp_path / "zero.nrrd"
    device.symlink_to("/dev/zero")  # a reader would read zeros forever
    assert "character device" in read_error(device)
    path = tmp_path / "s.mha"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        assert "socket" in read_error(path)
    finally:
        server.close()


def test_symlink_loop_as_input(tmp_path):
    (tmp_path / "a.nii").symlink_to(tmp_path / "b.nii")
    (tmp_path / "b.nii").symlink_to(tmp_path / "a.nii")
    assert "symbolic link loop" in read_error(tmp_path / "a.nii")


@pytest.mark.parametrize("make", ["loop", "fifo"])
def test_dicom_folder_with_a_link_loop_or_pipe(tmp_path, make):
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    if make == "loop":
        (folder / "IM0001").symlink_to(folder / "IM0002")
        (folder / "IM0002").symlink_to(folder / "IM0001")
        (folder / "sub").mkdir()
        (folder / "sub" / "up").symlink_to(folder)  # a link to a folder above: not followed
        expected = "symbolic link loop"
    else:
        os.mkfifo(folder / "IM0001")
        expected = "named pipe"
    assert expected in read_error(folder)


def test_page_policy_refuses_links_out_of_a_dicom_folder(tmp_path, secret_file):
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"\0" * 128 + b"DICM")
    (folder / "IM0002.dcm").symlink_to(secret_file)
    assert "link to a file outside the folder" in read_error(folder, data_files=safety.ATTACHED)
    assert safety.check_dicom_folder(folder) == 2  # the command line follows the user's own links


def test_folder_of_many_non_dicom_files_is_quick(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    for i in range(20_000):  # tens of thousands: every one is looked at (132 bytes), none parsed
        (folder / f"{i:05d}.txt").touch()
    start = time.monotonic()
    message = read_error(folder)
    assert "no DICOM images found" in message and "20000 files" in message
    assert time.monotonic() - start < QUICK_S


def test_folder_over_the_file_cap_is_refused_before_reading(tmp_path, monkeypatch):
    folder = tmp_path / "export"
    folder.mkdir()
    for i in range(60):
        (folder / f"{i}.dcm").write_bytes(b"\0" * 128 + b"DICM")
    assert "more than 50 files" in str(_catch(safety.check_dicom_folder, folder, max_files=50))
    assert safety.check_dicom_folder(folder, max_files=60) == 60


def _catch(function, *args, **kwargs):
    with pytest.raises(InputError) as caught:
        function(*args, **kwargs)
    return caught.value


# ---------------------------------------------------------------- headers that point to another file

@pytest.fixture
def secret_file(tmp_path):
    outside = tmp_path / "server" / "secret.raw"
    outside.parent.mkdir()
    outside.write_bytes(SECRET * 4)  # 92 bytes: enough for a 4 x 4 x 4 uint8 volume
    return outside


def mha_header(data_file: str) -> str:
    return ("ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementSpacing = 1 1 1\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data_file}\n")


def nrrd_header(data_file: str) -> str:
    return f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\ndata file: {data_file}\n\n"


@pytest.mark.parametrize("suffix,header", [(".mha", mha_header), (".mhd", mha_header), (".nrrd", nrrd_header),
                                           (".nhdr", nrrd_header)])
@pytest.mark.parametrize("policy", [safety.BESIDE, safety.ATTACHED])
def test_header_pointing_to_a_server_file_is_refused(tmp_path, secret_file, suffix, header, policy):
    upload = tmp_path / "upload" / f"case{suffix}"
    upload.parent.mkdir()
    for pointer in (str(secret_file), "../server/secret.raw"):
        upload.write_text(header(pointer))
        message = read_error(upload, data_files=policy)
        assert "data file" in message and SECRET.decode() not in message
    link = upload.parent / "data.raw"  # beside, but a link to the server's file
    link.symlink_to(secret_file)
    upload.write_text(header("data.raw"))
    assert SECRET.decode() not in read_error(upload, data_files=policy)


@pytest.mark.parametrize("suffix,header", [(".mhd", mha_header), (".nhdr", nrrd_header)])
def test_detached_data_beside_the_header(tmp_path, suffix, header):
    """The command line reads a header with its data file beside it; the page reads only attached data."""
    (tmp_path / "case.raw").write_bytes(bytes(range(64)))
    (tmp_path / f"case{suffix}").write_text(header("case.raw"))
    image = read_image(tmp_path / f"case{suffix}")
    assert image.array.shape == (4, 4, 4) and int(image.array.max()) == 63
    assert "attached" in read_error(tmp_path / f"case{suffix}", data_files=safety.ATTACHED)


def test_attached_files_still_read_under_the_page_policy(tmp_path, ring):
    image, _, _ = ring
    for name in ("c.nrrd", "c.mha", "c.nii.gz"):
        write_image(image[0], Geometry((1.5, 1.5, 8.0)), tmp_path / name)
        assert read_image(tmp_path / name, data_files=safety.ATTACHED).array.shape == image[0].shape


def test_nifti_pair_is_refused_in_the_page(tmp_path):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16)), str(tmp_path / "pair.hdr"))
    assert (tmp_path / "pair.img").exists()
    assert "hdr/.img pair" in read_error(tmp_path / "pair.hdr", data_files=safety.ATTACHED)
    assert read_image(tmp_path / "pair.hdr").array.shape == (4, 5, 6)  # the command line reads the pair


# ---------------------------------------------------------------- NIfTI sform orthonormal only to rounding

def rounded_sform_nifti(path: Path, shear: float, image=None) -> Path:
    """A NIfTI whose only transform is an sform with columns 0 and 1 off perpendicular by ``shear``
    (qform_code 0, as some converters write): what ITK refuses and nibabel reads."""
    import SimpleITK as sitk

    image = np.arange(4 * 40 * 48, dtype=np.int16).reshape(4, 40, 48) if image is None else image
    volume = sitk.GetImageFromArray(image)
    volume.SetSpacing((1.5, 1.5, 8.0))
    plain = path.with_name("plain.nii")
    sitk.WriteImage(volume, str(plain))
    header = bytearray(plain.read_bytes())
    plain.unlink()
    rows = [list(struct.unpack_from("<4f", header, 280 + 16 * i)) for i in range(3)]
    rows[0][1] += shear * 1.5  # x gets a little of y: the columns stay unit length to first order
    for i, row in enumerate(rows):
        struct.pack_into("<4f", header, 280 + 16 * i, *row)
    struct.pack_into("<h", header, 252, 0)  # qform_code 0: ITK has only the sform to go by
    data = bytes(header)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("name", ["rounded.nii", "rounded.nii.gz"])
def test_sform_orthonormal_to_1e4_is_read_with_a_warning(tmp_path, name):
    import SimpleITK as sitk

    path = rounded_sform_nifti(tmp_path / name, 1e-4)
    with pytest.raises(RuntimeError, match="orthonormal"):
        sitk.ReadImage(str(path))  # what every command did before
    image = read_image(path)
    (warning,) = image.meta["warnings"]
    assert "orthonormal only to 1.0e-04" in warning and f"tolerance {safety.SFORM_TOLERANCE:g}" in warning
    axes = np.reshape(image.geometry.direction, (3, 3))
    assert np.abs(axes.T @ axes - np.eye(3)).max() < 1e-6  # the nearest rotation
    assert image.geometry.spacing == pytest.approx((1.5, 1.5, 8.0))
    assert safety.ITK_PERMISSIVE_VARIABLE not in os.environ  # only for that read


def test_sform_beyond_the_tolerance_is_refused(tmp_path):
    path = rounded_sform_nifti(tmp_path / "sheared.nii", 5 * safety.SFORM_TOLERANCE)
    message = read_error(path)
    assert "not orthonormal" in message and f"tolerance {safety.SFORM_TOLERANCE:g}" in message


def test_mrml_layer_keeps_the_reading_warning(tmp_path):
    from UnetGANSlicerLib import context, loading

    logics = context.setup_standalone()
    try:
        loaded = loading.load_image(rounded_sform_nifti(tmp_path / "rounded.nii.gz", 1e-4), logics["scene"])
        assert any("orthonormal only to 1.0e-04" in w for w in loaded.warnings)
    finally:
        logics["scene"].Clear(True)


def unetgan(*args, timeout=120):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "unetgan", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_cli_named_pipe_errors_within_seconds(tmp_path):
    pipe = tmp_path / "cine.nii.gz"
    os.mkfifo(pipe)
    start = time.monotonic()
    done = unetgan("segment", pipe, "-o", tmp_path / "labels.nrrd", timeout=60)  # blocked forever before
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("ERROR:")
    assert "named pipe" in done.stderr
    assert time.monotonic() - start < 30  # mostly the interpreter and torch starting


def test_cli_reads_a_rounded_sform_with_a_warning(tmp_path, ring):
    image, _, _ = ring
    path = rounded_sform_nifti(tmp_path / "rounded.nii.gz", 1e-4, image=image[0].astype(np.int16))
    model = write_tiny_lvunet(tmp_path / "tiny.safetensors")
    done = unetgan("segment", path, "-o", tmp_path / "labels.nrrd", "--model", model, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "WARNING: rounded.nii.gz: the sform's direction cosines are orthonormal only to 1.0e-04" in done.stderr
    assert "ITK" not in done.stderr.replace("ITK's", "")  # ITK's own warning lines are replaced by ours
