"""Through-plane context: an LV-Unet that also sees the slices on either side (preprocess.with_neighbours),
widened from a one-slice network, trained, and run by the inference path on every runtime."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import ring_study
from test_training import ring_volumes
from unetgan.errors import InputError
from unetgan.inference import context_slices, segment
from unetgan.networks.lvunet import LVUnet, LVUnetConfig, widen_network, widen_to_context, with_tta
from unetgan.preprocess import prepare_volume, with_neighbours
from unetgan.registry import load_lvunet
from unetgan.runtime import on_runtime
from unetgan.training.appearance import random_intensity_network
from unetgan.training.train_unet import UnetTrainConfig, train_unet


def test_each_slice_gets_its_neighbours_as_channels():
    slices = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    stacked = with_neighbours(slices, 1)
    assert stacked.shape == (4, 3, 2, 2)
    # channel 1 is the slice itself, 0 the one before, 2 the one after; the ends repeat themselves
    assert stacked[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert with_neighbours(slices, 2)[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert with_neighbours(slices, 0) is slices


def small_lvunet(in_channels=1, seed=0) -> LVUnet:
    torch.manual_seed(seed)
    model = LVUnet(LVUnetConfig(in_channels=in_channels, widths=(8, 8, 16, 16)))
    with torch.no_grad():  # BatchNorm statistics away from 0 / 1, so that a wrong channel would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def widened(model: LVUnet) -> LVUnet:
    return widen_network(model, 3)


def test_a_widened_network_starts_as_the_one_slice_network():
    narrow = small_lvunet()
    wide = widened(narrow)
    assert context_slices(narrow) == 0 and context_slices(wide) == 1 == wide.config.context_slices
    slices = torch.rand(5, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(wide(with_neighbours(slices, 1)), narrow(slices), rtol=0, atol=1e-5)
    # its neighbour kernels start at zero, the centre one is the narrow stem's
    stem = wide.stem[0].weight
    assert not stem[:, [0, 2]].any() and torch.equal(stem[:, 1], narrow.stem[0].weight[:, 0])
    with pytest.raises(Exception, match="cannot widen"):
        widen_to_context(narrow.state_dict(), 2)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_inference_path_feeds_a_context_network_its_neighbours(runtime):
    narrow = small_lvunet(seed=1)
    with torch.no_grad():  # neighbour kernels that matter: the masks must now differ from the narrow network's
        wide = widened(narrow)
        wide.stem[0].weight[:, [0, 2]] = torch.randn_like(wide.stem[0].weight[:, [0, 2]])
    image, _, spacing = ring_study(n_frames=1, n_slices=4, seed=3)
    slices, _ = prepare_volume(image[0], spacing)
    with torch.no_grad():
        expected = wide(with_neighbours(slices, 1)).argmax(1)
        without_context = wide(slices.repeat(1, 3, 1, 1)).argmax(1)
    assert not torch.equal(expected, without_context)  # the neighbours change the answer
    network = with_tta(on_runtime(wide, runtime), "none")
    channels_seen = []
    original = network.forward

    def spy(x):
        channels_seen.append(x.shape[1])
        return original(x)

    network.forward = spy
    result = segment(image[0], spacing, network, postprocess=False)
    assert set(channels_seen) == {3}
    assert result.labels.shape == image[0].shape and (result.labels > 0).any()
    # flip averaging keeps the context
    assert context_slices(with_tta(on_runtime(wide, runtime), "flip4")) == 1


def test_gin_runs_one_network_over_all_channels():
    image = torch.rand(1, 32, 32)
    stacked = image.repeat(3, 1, 1)
    out = random_intensity_network(stacked, torch.Generator().manual_seed(5))
    assert out.shape == (3, 32, 32)
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[1], out[2])
    # one channel: what it was before channels were allowed (the same draw, the same image)
    single = random_intensity_network(image, torch.Generator().manual_seed(5))
    torch.testing.assert_close(single, out[:1])


def test_training_widens_a_one_slice_network_and_learns(tmp_path, torch_threads):
    config = UnetTrainConfig(widths=(8, 8, 16, 16), crop=64, batch=4, epochs=2, steps_per_epoch=20, lr=5e-3,
                             val_subjects=1)
    start = train_unet(ring_volumes(4), config, tmp_path / "narrow", progress=False, log=lambda *_: None)
    context = replace(config, init_from=str(tmp_path / "narrow" / "last.safetensors"), context_slices=1)
    result = train_unet(ring_volumes(4), context, tmp_path / "wide", progress=False, log=lambda *_: None)
    model = load_lvunet(tmp_path / "wide" / "last.safetensors")
    assert model.config.in_channels == 3 and model.metadata["train_config"]["context_slices"] == 1
    assert result["best_val_dice"] > 0.7 and start["best_val_dice"] > 0.7
    # a one-slice teacher teaches a network that sees three: widened, it answers from the centre slice
    from unetgan.training.train_unet import _flip_averaged_teacher

    teacher_file = str(tmp_path / "narrow" / "last.safetensors")
    teacher = _flip_averaged_teacher(teacher_file, "cpu", 3)
    slices = torch.rand(3, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(teacher(with_neighbours(slices, 1)),
                                   _flip_averaged_teacher(teacher_file, "cpu")(slices), rtol=0, atol=1e-5)
    taught = train_unet(ring_volumes(4), replace(context, distill_from=teacher_file, epochs=1, steps_per_epoch=2),
                        tmp_path / "taught", progress=False, log=lambda *_: None)
    assert taught["validation_subjects"] == result["validation_subjects"]


def test_an_adapter_is_not_trained_against_a_context_network():
    from unetgan.training.train_adapter import AdapterConfig, _AdapterTraining

    slices = np.random.default_rng(0).random((8, 1, 64, 64)).astype(np.float32)
    with pytest.raises(InputError, match="one-slice LV-Unet"):
        _AdapterTraining(slices, slices, widened(small_lvunet()), AdapterConfig())


def test_a_one_slice_network_joins_a_context_networks_soup_widened(tmp_path):
    """scripts/recipes/soup_lvunet.py with a context network first: the one-slice ingredient's stem kernel goes to the
    centre channel, its neighbour kernels count as zero."""
    import subprocess
    import sys

    from conftest import MODULE_DIR
    from unetgan.weights import read_weights, write_weights

    narrow, wide = small_lvunet(seed=2), widened(small_lvunet(seed=3))
    with torch.no_grad():
        wide.stem[0].weight.normal_()
    files = []
    for name, network in (("wide", wide), ("narrow", narrow)):
        files.append(tmp_path / f"{name}.safetensors")
        write_weights(network, files[-1], {"architecture": "LVUnet", "config": network.config.to_dict()})
    out = tmp_path / "mix.safetensors"
    done = subprocess.run([sys.executable, str(MODULE_DIR.parent / "scripts" / "recipes" / "soup_lvunet.py"), *map(str, files),
                           "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    mix = read_weights(out)[0]["stem.0.weight"]
    assert mix.shape[1] == 3
    torch.testing.assert_close(mix[:, [0, 2]], wide.stem[0].weight[:, [0, 2]] / 2)
    torch.testing.assert_close(mix[:, 1], (wide.stem[0].weight[:, 1] + narrow.stem[0].weight[:, 0]) / 2)
    assert load_lvunet(out).config.in_channels == 3
    # the other way round (a one-slice network first) a context network cannot join
    refused = subprocess.run([sys.executable, str(MODULE_DIR.parent / "scripts" / "recipes" / "soup_lvunet.py"),
                              *map(str, files[::-1]), "-o", str(tmp_path / "bad.safetensors")],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "cannot widen" in refused.stderr
