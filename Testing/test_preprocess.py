"""Preprocessing and its inverse: the network grid maps back onto the original grid exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from unetgan.errors import InputError
from unetgan.evaluation import dice
from unetgan.preprocess import SliceGrid, normalise_intensity, prepare_labels, prepare_volume


def test_normalisation_is_robust_and_bounded():
    volume = np.random.default_rng(0).normal(100, 10, (3, 50, 50)).astype(np.float32)
    volume[0, 0, 0] = 1e6  # one hot pixel must not squash the rest
    out = normalise_intensity(volume)
    assert out.min() == 0.0 and out.max() == 1.0
    assert 0.4 < np.median(out) < 0.6


@pytest.mark.parametrize("bad, message", [(np.zeros((2, 40, 40)), "constant"),
                                          (np.full((2, 40, 40), np.nan), "NaN or infinite")])
def test_unusable_intensities_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        normalise_intensity(bad)


@pytest.mark.parametrize("spacing, message", [((0.1, 0.1, 8), "outside 0.3-5 mm"), ((50, 50, 8), "outside 0.3-5 mm"),
                                              ((1.0, 4.0, 8), "anisotropic")])
def test_implausible_spacing_is_refused(spacing, message):
    with pytest.raises(InputError, match=message):
        prepare_volume(np.random.rand(2, 64, 64).astype(np.float32), spacing)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(40, 300), cols=st.integers(40, 300), sx=st.floats(0.6, 2.5), sy=st.floats(0.6, 2.5))
def test_round_trip_returns_the_original_grid(rows, cols, sx, sy):
    grid = SliceGrid.for_spacing((rows, cols), (sx, sy))
    smooth = torch.linspace(0, 1, rows)[:, None] * torch.linspace(1, 2, cols)[None, :]
    forward = grid.forward(smooth[None, None])
    assert forward.shape == (1, 1, 192, 192)
    back = grid.restore(forward)
    assert back.shape == (1, 1, rows, cols)
    # inside the part that fits into the 192 x 192 crop the image comes back (up to interpolation)
    r_keep = min(rows, int(192 * 1.5 / sy) - 4) // 2
    c_keep = min(cols, int(192 * 1.5 / sx) - 4) // 2
    centre = (slice(rows // 2 - r_keep + 2, rows // 2 + r_keep - 2), slice(cols // 2 - c_keep + 2, cols // 2 + c_keep - 2))
    error = (back[0, 0][centre] - smooth[centre]).abs().max()
    assert error < 0.05


def test_labels_survive_the_round_trip(ring):
    _, labels, spacing = ring
    grid = SliceGrid.for_spacing(labels.shape[2:], spacing)
    network_labels = prepare_labels(labels[0], grid)
    onehot = torch.nn.functional.one_hot(network_labels, 3).permute(0, 3, 1, 2).float()
    restored = grid.restore(onehot, fill=torch.tensor([1.0, 0, 0])).argmax(1).numpy()
    for value in (1, 2):
        assert dice(restored == value, labels[0] == value) > 0.95


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-2000, 5000), min_size=20, max_size=400), st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_sorted_quantiles_are_numpys_quantiles(values, q):
    from unetgan.preprocess import sorted_quantiles

    array = np.array(values, dtype=np.float32)
    np.testing.assert_allclose(sorted_quantiles(np.sort(array), q), np.quantile(array, q), rtol=1e-6, atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([np.int16, np.uint16, np.int32]), st.sampled_from([0, -700]))
def test_histogram_matching_of_integer_images_equals_the_float_path(seed, dtype, offset):
    """Integer grey levels, stored as integers or as floats (as DICOM readers hand them over), go through a
    look-up table; its values are those of the per-voxel interpolation."""
    from unittest import mock

    from unetgan import histogram

    rng = np.random.default_rng(seed)
    volume = rng.gamma(2.0, 300.0, size=(3, 20, 24)) + (offset if dtype != np.uint16 else 0)
    volume = volume.astype(dtype)
    reference = np.sort(rng.random(257))
    with mock.patch.object(histogram, "_integer_valued", return_value=False):  # the per-voxel path
        expected = histogram.match_to_reference(volume.astype(np.float32), reference)
    as_float = volume.astype(np.float32)
    assert histogram._integer_valued(as_float, as_float) and not histogram._integer_valued(as_float + 0.5, as_float + 0.5)
    np.testing.assert_array_equal(histogram.match_to_reference(volume, reference), expected)
    np.testing.assert_array_equal(histogram.match_to_reference(as_float, reference), expected)


@pytest.mark.parametrize("shape, spacing", [((256, 256), (1.37, 1.37)), ((224, 180), (1.8, 1.6)),
                                            ((512, 512), (0.7, 0.7)), ((128, 110), (1.5, 1.5))])  # last: padded
@pytest.mark.parametrize("box", [(40, 152, 48, 160), (0, 96, 0, 96), (96, 192, 80, 192), (16, 48, 100, 132)])
def test_restoring_a_box_gives_what_restoring_the_whole_crop_gives(shape, spacing, box):
    import torch

    from unetgan.preprocess import SliceGrid

    r0, r1, c0, c1 = box
    fill = torch.tensor([1.0, 0.0, 0.0])
    part = torch.softmax(torch.randn(2, 3, r1 - r0, c1 - c0, generator=torch.Generator().manual_seed(0)), 1)
    crop = fill.reshape(1, 3, 1, 1).repeat(2, 1, 192, 192)
    crop[:, :, r0:r1, c0:c1] = part
    grid = SliceGrid.for_spacing(shape, spacing)
    (rows, cols), window = grid.restore_window(part, slice(r0, r1), slice(c0, c1), fill)
    assert window.shape[2] < shape[0] or window.shape[3] < shape[1] or r1 - r0 == 192  # less than the field
    got = fill.reshape(1, 3, 1, 1).repeat(2, 1, *shape)
    got[:, :, rows, cols] = window
    torch.testing.assert_close(got, grid.restore(crop, fill=fill), rtol=0, atol=3e-7)
