"""The `unetgan` command line on real files: outputs on the input grid, one-line errors, nothing partial."""
from __future__ import annotations

import contextlib
import io
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from unetgan.cli import main
from unetgan.io.images import Geometry, read_image, write_image
from unetgan.registry import sha256_of

OBLIQUE = Geometry((1.8, 1.8, 8.0), (10.0, -20.0, 5.0), (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0))


def unetgan(*args, env=None):
    """The real program in a child process (imports, exit code, output streams all real)."""
    return subprocess.run([sys.executable, "-m", "unetgan", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def unetgan_here(*args):
    """The same `main` in this process: saves the ~5 s interpreter start per call for the many error cases."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture
def cine_file(tmp_path, ring):
    image, _, _ = ring
    return write_image(image, OBLIQUE, tmp_path / "cine.nrrd")


def test_segment_writes_labelmap_on_the_input_grid(tmp_path, cine_file, tiny_lvunet_file):
    before = cine_file.read_bytes()
    out = tmp_path / "out" / "seg.nrrd"
    result = unetgan("segment", cine_file, "-o", out, "--model", tiny_lvunet_file, "--progress")
    assert result.returncode == 0, result.stderr
    assert [l for l in result.stdout.splitlines() if l.startswith("PROGRESS")][-1] == "PROGRESS 3 3 segment"
    labels, image = read_image(out), read_image(cine_file)
    assert labels.array.shape == image.array.shape and labels.array.dtype == np.uint8
    assert labels.geometry == image.geometry
    measurements = json.loads((tmp_path / "out" / "seg_measurements.json").read_text())
    assert len(measurements["frames"]) == 3
    voxel = np.prod(OBLIQUE.spacing) / 1000
    assert measurements["frames"][1]["blood_pool_ml"] == pytest.approx((labels.array[1] == 1).sum() * voxel, abs=0.01)
    csv_rows = (tmp_path / "out" / "seg_measurements.csv").read_text().splitlines()
    assert csv_rows[0].startswith("frame_number,blood_pool_ml") and csv_rows[1].startswith("1,")  # 1-based, as users count
    assert cine_file.read_bytes() == before, "the input file was changed"


def test_existing_output_is_not_overwritten_without_flag(tmp_path, cine_file, tiny_lvunet_file):
    out = tmp_path / "seg.nrrd"
    out.write_text("precious")
    result = unetgan_here("segment", cine_file, "-o", out, "--model", tiny_lvunet_file)
    assert result.returncode == 2
    assert "exists" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "precious"
    assert unetgan_here("segment", cine_file, "-o", out, "--model", tiny_lvunet_file, "--overwrite").returncode == 0
    assert read_image(out).array.shape == read_image(cine_file).array.shape


def _assert_one_line_error(result, expected: str, folder):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR:") and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not [p for p in folder.rglob("*") if p.name.startswith(("seg", ".partial"))]


def test_bad_inputs_give_one_line_errors_and_no_output(tmp_path, tiny_lvunet_file):
    out = tmp_path / "seg.nrrd"
    write_image(np.zeros((3, 64, 64), np.float32), OBLIQUE, tmp_path / "constant.nrrd")
    (tmp_path / "garbage.nii.gz").write_bytes(b"not an image at all")
    for name, expected in [("constant.nrrd", "constant"), ("garbage.nii.gz", "cannot read"), ("missing.nrrd", "not found")]:
        _assert_one_line_error(unetgan_here("segment", tmp_path / name, "-o", out, "--model", tiny_lvunet_file), expected, tmp_path)


def test_pickle_and_damaged_models_are_refused(tmp_path, cine_file, tiny_lvunet_file):
    evil = tmp_path / "evil.safetensors"
    marker = tmp_path / "pwned"
    evil.write_bytes(pickle.dumps(eval, protocol=2) + f"touch {marker}".encode())
    _assert_one_line_error(unetgan_here("segment", cine_file, "-o", tmp_path / "seg.nrrd", "--model", evil),
                           "not a safetensors file", tmp_path)
    assert not marker.exists()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_lvunet_file.read_bytes()[:-500])
    _assert_one_line_error(unetgan_here("segment", cine_file, "-o", tmp_path / "seg.nrrd", "--model", truncated),
                           "damaged", tmp_path)


def test_registry_hash_mismatch_is_refused(tmp_path, cine_file, tiny_lvunet_file, monkeypatch):
    registry = tmp_path / "models.json"
    entry = {"name": "tiny", "kind": "segmenter", "file": str(tiny_lvunet_file), "sha256": "0" * 64}
    registry.write_text(json.dumps({"models": [entry]}))
    monkeypatch.setenv("UNETGAN_REGISTRY", str(registry))
    _assert_one_line_error(unetgan_here("segment", cine_file, "-o", tmp_path / "seg.nrrd", "--model", "tiny"),
                           "does not match its SHA256", tmp_path)
    entry["sha256"] = sha256_of(tiny_lvunet_file)
    registry.write_text(json.dumps({"models": [entry]}))
    assert unetgan_here("segment", cine_file, "-o", tmp_path / "seg.nrrd", "--model", "tiny").returncode == 0


def test_model_of_another_architecture_is_refused(tmp_path, cine_file, tiny_lvunet_file):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_lvunet_file))
    tensors.pop("stem.0.weight")
    other = tmp_path / "other.safetensors"
    save_file(tensors, str(other), metadata={"architecture": json.dumps("LVUnet"), "config": json.dumps({"widths": [4, 8, 8, 8]})})
    _assert_one_line_error(unetgan_here("segment", cine_file, "-o", tmp_path / "seg.nrrd", "--model", other),
                           "does not fit the architecture", tmp_path)


def test_a_system_error_while_reading_is_one_error_line(cine_file, tmp_path, monkeypatch):
    import errno

    from unetgan import pipeline

    def refused(path, *args, **kwargs):  # read_image's signature (series_uid, ...)
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(pipeline, "read_image", refused)
    result = unetgan_here("segment", cine_file, "-o", tmp_path / "out" / "labels.nrrd")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"ERROR: Input/output error ({cine_file}); expected readable inputs "
                                                  "and a writable output folder"]
    assert not (tmp_path / "out").exists()
