"""Test-time augmentation (--tta): the LV-Unet's logits averaged over in-plane flips, on by default."""
from __future__ import annotations

import pytest
import torch

from unetgan.cli import build_parser
from unetgan.errors import InputError
import numpy as np

from unetgan.inference import adapt_and_segment, refine_key_frames
from unetgan.io.images import Geometry
from unetgan.measurements import ed_es_frames
from unetgan.networks.lvunet import FlipAveraged, tta_networks, with_tta
from unetgan.registry import load_lvunet
from unetgan.tta import DEFAULT_TTA, TTA_FLIPS, TTA_SETTINGS


def test_flip_averaging_is_the_mean_of_the_flipped_passes():
    network = load_lvunet("lvunet-robust")
    x = torch.rand(2, 1, 96, 96)
    with torch.no_grad():
        passes = [network(x), network(x.flip(-1)).flip(-1), network(x.flip(-2)).flip(-2),
                  network(x.flip(-2, -1)).flip(-2, -1)]
        four, two = with_tta(network, "flip4")(x), with_tta(network, "flip")(x)
    torch.testing.assert_close(four, sum(passes) / 4)
    torch.testing.assert_close(two, (passes[0] + passes[1]) / 2)
    assert not torch.allclose(four, passes[0])  # the flips do change the logits: averaging is not a no-op


def test_tta_choices_and_default():
    network = load_lvunet("lvunet-robust")
    assert with_tta(network, "none") is network
    wrapped = with_tta(network, "flip4")
    assert isinstance(wrapped, FlipAveraged) and wrapped.metadata == network.metadata
    with pytest.raises(InputError, match="unknown test-time augmentation"):
        with_tta(network, "rotate")
    assert set(TTA_FLIPS) == {"none", "flip", "flip4"}
    assert DEFAULT_TTA == "flip4" and set(TTA_SETTINGS) == {"flip4-ed-es", "flip4", "flip", "none"}
    every, key = tta_networks(network, "flip4-ed-es")
    assert every is network and isinstance(key, FlipAveraged) and key.flips == TTA_FLIPS["flip4"]
    every, key = tta_networks(network, "flip4")
    assert isinstance(every, FlipAveraged) and key is None
    assert tta_networks(network, "none") == (network, None)
    with pytest.raises(InputError, match="unknown test-time augmentation"):
        tta_networks(network, "rotate")
    parser = build_parser()
    for command in (["segment", "x.nrrd", "-o", "y.nrrd"], ["adapt-segment", "x.nrrd", "-o", "out"],
                    ["evaluate", "--manifest", "m.csv"], ["batch", "in", "-o", "out"]):
        assert parser.parse_args(command).tta == DEFAULT_TTA
        assert parser.parse_args(command + ["--tta", "none"]).tta == "none"


def test_the_mrml_layer_passes_its_tta_to_the_backend():
    from UnetGANSlicerLib.workflow import backend_arguments

    assert "--tta" not in backend_arguments("in.nrrd", "out", "Siemens", None, "cpu")  # the backend's default
    arguments = backend_arguments("in.nrrd", "out", "Siemens", None, "cpu", tta="none")
    assert arguments[arguments.index("--tta") + 1] == "none"
    assert build_parser().parse_args(arguments).tta == "none"
    with pytest.raises(InputError, match="unknown test-time augmentation"):
        backend_arguments("in.nrrd", "out", "Siemens", None, "cpu", tta="rotate")


def test_the_measurements_say_how_the_masks_were_made(tmp_path):
    import json

    from unetgan.io.images import Geometry, write_image
    from unetgan.phantom import make_study
    from unetgan.pipeline import adapt_segment_file

    study = make_study("Siemens", seed=2, n_phases=2, n_slices=3, matrix=96)
    path = tmp_path / "cine.nrrd"
    write_image(study.image, Geometry(tuple(study.spacing)), path)
    adapt_segment_file(path, tmp_path / "out", "Siemens", device="cpu", tta="flip", runtime="torch")
    measurements = json.loads((tmp_path / "out" / "measurements.json").read_text())
    assert measurements["test_time_augmentation"] == "flip" and measurements["runtime"] == "torch"
    assert "0.70" in measurements["postprocessing"] and "end slices" in measurements["postprocessing"]


def test_key_frames_are_refined_until_the_measured_ed_and_es_are():
    """A new mask can make another frame the largest: it is segmented again too, and nothing else is."""
    labels = np.zeros((5, 1, 4, 4), np.uint8)
    for t, size in enumerate([6, 9, 3, 8, 5]):  # blood-pool voxels per frame: ED 1, ES 2
        labels[t].flat[:size] = 1
    again = {1: 7, 2: 4, 3: 8}  # segmented again, ED shrinks below frame 3; frame 3's own mask stays

    def segment_again(t):
        labels[t] = 0
        labels[t].flat[:again[t]] = 1

    assert refine_key_frames(labels, segment_again) == [1, 2, 3]
    assert ed_es_frames(labels) == (3, 2)


def test_flip4_ed_es_segments_ed_and_es_as_flip4_and_the_other_frames_once():
    """--tta flip4-ed-es: the frames the measurements use get the four-flip masks, every other frame the masks
    of one pass (real networks on a phantom cine)."""
    from unetgan.phantom import make_study

    study = make_study("Philips", seed=3, n_phases=5, n_slices=3, matrix=128)
    frames, geometry = study.image.astype(np.float32), Geometry(tuple(study.spacing))
    network = load_lvunet("lvunet-robust")
    four = with_tta(network, "flip4")
    once = adapt_and_segment(frames, geometry, network)
    everywhere = adapt_and_segment(frames, geometry, four)
    steps = []
    keyed = adapt_and_segment(frames, geometry, network, key_frame_model=four, progress=lambda d, t: steps.append((d, t)))
    ed, es = ed_es_frames(keyed.labels)
    assert ed != es and sorted(keyed.key_frames) == sorted({ed, es})
    for t in range(frames.shape[0]):
        expected = everywhere if t in (ed, es) else once
        assert np.array_equal(keyed.labels[t], expected.labels[t]), t
        assert keyed.confidence[t] == expected.confidence[t]
    assert not all(np.array_equal(once.labels[t], everywhere.labels[t]) for t in (ed, es))  # the flips matter
    assert steps[-1] == (7, 7) and [d for d, _ in steps] == sorted(d for d, _ in steps)
    single = adapt_and_segment(frames[:1], geometry, network, key_frame_model=four)  # its only frame: ED and ES
    assert np.array_equal(single.labels[0], adapt_and_segment(frames[:1], geometry, four).labels[0])
