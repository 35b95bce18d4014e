"""Test-time augmentation (--tta): the LV-Unet's logits averaged over in-plane flips, on by default."""
from __future__ import annotations

import pytest
import torch

from unetgan.cli import build_parser
from unetgan.errors import InputError
from unetgan.networks.lvunet import FlipAveraged, with_tta
from unetgan.registry import load_lvunet
from unetgan.tta import DEFAULT_TTA, TTA_FLIPS


def test_flip_averaging_is_the_mean_of_the_flipped_passes():
    network = load_lvunet("lvunet-robust")
    x = torch.rand(2, 1, 96, 96)
    with torch.no_grad():
        passes = [network(x), network(x.flip(-1)).flip(-1), network(x.flip(-2)).flip(-2),
                  network(x.flip(-2, -1)).flip(-2, -1)]
        four, two = with_tta(network, "flip4")(x), with_tta(network, "flip")(x)
        half_turn = with_tta(network, "rot180")(x)
    torch.testing.assert_close(four, sum(passes) / 4)
    torch.testing.assert_close(two, (passes[0] + passes[1]) / 2)
    torch.testing.assert_close(half_turn, (passes[0] + passes[3]) / 2)
    assert not torch.allclose(four, passes[0])  # the flips do change the logits: averaging is not a no-op


def test_tta_choices_and_default():
    network = load_lvunet("lvunet-robust")
    assert with_tta(network, "none") is network
    wrapped = with_tta(network, "flip4")
    assert isinstance(wrapped, FlipAveraged) and wrapped.metadata == network.metadata
    with pytest.raises(InputError, match="unknown test-time augmentation"):
        with_tta(network, "rotate")
    assert DEFAULT_TTA == "none" and set(TTA_FLIPS) == {"rot180", "flip4", "flip", "none"}
    assert list(TTA_FLIPS)[0] == DEFAULT_TTA  # the front ends offer them in this order, the default first
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
    from unetgan import postprocess

    assert measurements["postprocessing"] == postprocess.description()
    assert f"{postprocess.MIN_END_SLICE_COVERAGE:.2f}" in measurements["postprocessing"]
    assert f"under {postprocess.MIN_BASAL_AREA_RATIO:.2f} of the next slice's" in measurements["postprocessing"]
