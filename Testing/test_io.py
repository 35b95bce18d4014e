"""Image I/O with geometry, manifests and Sunnybrook contours, on files written here."""
from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from unetgan.errors import InputError
from unetgan.io.images import Geometry, ImageData, read_image, write_image
from unetgan.io.manifest import convert_labels, load_item, read_manifest
from unetgan.io.sunnybrook import rasterise, read_contour

OBLIQUE = Geometry((1.25, 1.4, 8.0), (-12.5, 30.0, 101.0),
                   tuple(sitk.VersorTransform((0.2, 0.3, 0.9), 0.4).GetMatrix()))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("shape", [(4, 20, 24), (3, 4, 20, 24)])
def test_round_trip_keeps_array_and_geometry(tmp_path, suffix, shape):
    array = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = write_image(array, OBLIQUE, tmp_path / f"x{suffix}")
    back = read_image(path)
    np.testing.assert_array_equal(back.array, array)
    assert back.is_cine == (len(shape) == 4)
    np.testing.assert_allclose(back.geometry.spacing, OBLIQUE.spacing, rtol=1e-6)
    np.testing.assert_allclose(back.geometry.origin, OBLIQUE.origin, atol=1e-4)
    np.testing.assert_allclose(back.geometry.direction, OBLIQUE.direction, atol=1e-6)
    assert not list(tmp_path.glob(".tmp-*")), "atomic write left a temporary file"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask, "written with owner-only permissions"


def test_2d_image_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "slice.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((10, 10), np.float32)), str(path))
    with pytest.raises(InputError, match="2D image; expected a 3D"):
        read_image(path)


def test_truncated_file_is_refused(tmp_path):
    path = write_image(np.ones((2, 40, 40), np.float32), OBLIQUE, tmp_path / "x.nii.gz")
    damaged = tmp_path / "damaged.nii.gz"
    damaged.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot read damaged.nii.gz"):
        read_image(damaged)


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "nothing.nrrd")


def test_geometry_rejects_bad_spacing():
    with pytest.raises(InputError, match="spacing"):
        Geometry((1.0, 0.0, 1.0))


def _write_dataset(tmp_path, ring, labels_as="mnms"):
    image, labels, spacing = ring
    geometry = Geometry(spacing)
    rows = ["subject,vendor,phase,image,label,split"]
    for t, phase in ((0, "ED"), (1, "ES")):
        write_image(image[t], geometry, tmp_path / f"s1_{phase}.nii.gz")
        stored = labels[t] if labels_as == "mnms" else np.select([labels[t] == 1, labels[t] == 2], [3, 2], 0)
        write_image(stored.astype(np.uint8), geometry, tmp_path / f"s1_{phase}_gt.nii.gz")
        rows.append(f"s1,Philips,{phase},s1_{phase}.nii.gz,s1_{phase}_gt.nii.gz,train_labelled")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "manifest.csv"


@pytest.mark.parametrize("convention", ["mnms", "acdc"])
def test_manifest_loads_volumes_with_our_label_convention(tmp_path, ring, convention):
    manifest = _write_dataset(tmp_path, ring, convention)
    items = read_manifest(manifest, vendors=["philips"], splits=["train_labelled"])
    assert [i.phase for i in items] == ["ED", "ES"]
    volume = load_item(items[0], convention)[0]
    np.testing.assert_array_equal(volume.labels, ring[1][0])


def test_manifest_errors_name_the_line(tmp_path, ring):
    manifest = _write_dataset(tmp_path, ring)
    (tmp_path / "s1_ES.nii.gz").unlink()
    with pytest.raises(InputError, match=r"line 3: image not found: s1_ES.nii.gz"):
        read_manifest(manifest)
    (tmp_path / "bad.csv").write_text("subject,image\nx,y\n")
    with pytest.raises(InputError, match="missing column"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="no rows match"):
        read_manifest(manifest, vendors=["GE"])


def test_label_conventions():
    stored = np.array([0, 1, 2, 3])
    np.testing.assert_array_equal(convert_labels(stored, "mnms"), [0, 1, 2, 0])
    np.testing.assert_array_equal(convert_labels(stored, "acdc"), [0, 0, 2, 1])
    with pytest.raises(InputError, match="small non-negative integers"):
        convert_labels(np.array([0.5, 1.0]), "mnms")


def test_contours_are_read_and_rasterised(tmp_path):
    path = tmp_path / "IM-0001-0048-icontour-manual.txt"
    path.write_text("1.5 2.5\n6.5 2.5\n6.5 7.5\n1.5 7.5\n")  # x (column) 1.5-6.5, y (row) 2.5-7.5, 1-based
    mask = rasterise(read_contour(path), (10, 10))
    assert mask.sum() == 25 and mask[2:7, 1:6].all()  # 0-based rows 2-6, columns 1-5
    path.write_text("2.0 2.0\n7.0 oops\n")
    with pytest.raises(InputError, match="line 2: expected 'x y' numbers"):
        read_contour(path)
