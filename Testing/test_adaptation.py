"""Unet-GAN adaptation core: SSIM with exponents, GAN parts, feature loss, adapter training.

Tiny networks and 32-64 pixel images keep this well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from unetgan.criterion import label_free_criterion, mask_plausibility
from unetgan.errors import ModelError
from unetgan.losses.adversarial import ImagePool, discriminator_loss, generator_adversarial_loss, lsgan_loss
from unetgan.losses.ssim import ssim, ssim_loss
from unetgan.losses.unet_features import UnetFeatureLoss
from unetgan.networks.discriminator import PatchDiscriminator, receptive_field
from unetgan.networks.generator import ResnetGenerator, count_flops, load_generator, save_generator
from unetgan.networks.lvunet import LVUnet
from unetgan.training.train_adapter import AdapterConfig, train_adapter


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_lvunet() -> LVUnet:
    torch.manual_seed(0)
    return LVUnet(widths=(4, 8, 8, 8), blocks=(1, 1, 1, 1), feature_taps=(3, 4)).eval()


def phantom_slices(n: int, size: int, contrast: float, seed: int) -> np.ndarray:
    """Ring (myocardium) around a bright disc (blood pool), vendor-like contrast via a gamma."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    slices = []
    for _ in range(n):
        cy, cx = rng.uniform(0.4, 0.6, 2) * size
        r = np.hypot(yy - cy, xx - cx)
        pool_r = rng.uniform(0.1, 0.16) * size
        image = np.where(r < pool_r, 0.9, np.where(r < pool_r * 1.5, 0.3, 0.15))
        image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1) ** contrast
        slices.append(image)
    return np.stack(slices).astype(np.float32)


def smooth_image(size: int = 64, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 1, size + 6, size + 6), 7, stride=1)
    return (x - x.min()) / (x.max() - x.min())


# --- SSIM ----------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_with_unit_exponents_equals_monai(seed):
    from monai.metrics import SSIMMetric

    torch.manual_seed(seed)
    x = torch.rand(3, 1, 48, 40)
    y = (0.8 * x + 0.1 + 0.1 * torch.randn_like(x)).clamp(0, 1)
    y[0] = smooth_image(48)[..., :40]  # one unrelated, one noisy, ...
    y[2] = x[2]  # ... and one identical pair
    expected = SSIMMetric(spatial_dims=2, data_range=1.0, win_size=11, kernel_sigma=1.5, reduction="none")(x, y)
    assert torch.allclose(ssim(x, y), expected.flatten(), atol=1e-5)
    assert ssim(x, y)[2] == pytest.approx(1.0, abs=1e-5)


def test_small_luminance_contrast_exponents_forgive_intensity_changes_not_structure():
    x = smooth_image()
    intensity_changed = 0.5 * x + 0.4  # another vendor's brightness and contrast, same anatomy
    structure_changed = x.flip(-1)  # same intensities, anatomy moved
    paper = dict(alpha=0.1, beta=0.1, gamma=1.0)
    plain_intensity, plain_structure = ssim(x, intensity_changed).item(), ssim(x, structure_changed).item()
    paper_intensity, paper_structure = ssim(x, intensity_changed, **paper).item(), ssim(x, structure_changed, **paper).item()
    assert paper_intensity > 0.97 and plain_intensity < paper_intensity - 0.05
    assert paper_structure < 0.5
    assert abs(paper_structure - plain_structure) < abs(paper_intensity - plain_intensity)


@pytest.mark.parametrize("exponents", [(1.0, 1.0, 1.0), (0.1, 0.1, 1.0), (0.1, 0.1, 0.5)])
@pytest.mark.parametrize("case", ["identical", "both_constant", "one_constant", "zeros"])
def test_ssim_loss_gradients_are_finite(exponents, case):
    x = smooth_image(32)
    y = {"identical": x.clone(), "both_constant": torch.full_like(x, 0.5), "one_constant": torch.full_like(x, 0.3),
         "zeros": torch.zeros_like(x)}[case]
    if case in ("both_constant", "zeros"):
        x = y.clone()
    x.requires_grad_(True)
    loss = ssim_loss(x, y, *exponents)
    loss.backward()
    assert math.isfinite(loss.item())
    assert torch.isfinite(x.grad).all()
    if case != "one_constant":
        assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_loss_is_squared_per_image_dissimilarity():
    x = smooth_image(32)
    y = x.flip(-1)
    per_image = ssim(torch.cat([x, x]), torch.cat([x, y]), 0.1, 0.1, 1.0)
    assert ssim_loss(torch.cat([x, x]), torch.cat([x, y])).item() == pytest.approx(((1 - per_image) ** 2).mean().item(), rel=1e-6)


# --- networks --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(192, 192), (36, 44), (20, 28)])
def test_generator_keeps_the_image_shape(shape):
    generator = ResnetGenerator(filters=4, n_blocks=1)
    x = torch.rand(2, 1, *shape) * 2 - 1
    with torch.no_grad():
        y = generator(x)
    assert y.shape == x.shape and y.abs().max() <= 1


def test_a_generator_with_3x3_edges_keeps_the_shape_and_round_trips_and_old_files_keep_7x7(tmp_path):
    small = ResnetGenerator(filters=4, n_blocks=1, residual_output=True, edge_kernel=3).eval()
    assert small.body[1].kernel_size == (3, 3) and small.head[1].kernel_size == (3, 3)
    x = torch.rand(2, 1, 36, 44) * 2 - 1
    with torch.no_grad():
        assert small(x).shape == x.shape
    save_generator(small, tmp_path / "small.safetensors")
    assert load_generator(tmp_path / "small.safetensors").config.edge_kernel == 3
    # files written before the option existed have no edge_kernel in their config: the reference's 7
    from unetgan.registry import load_adapter
    shipped = load_adapter("adapter-siemens-augment-unet")  # an adapter written by an earlier version
    assert "edge_kernel" not in shipped.metadata["config"] and shipped.head[1].kernel_size == (7, 7)
    with pytest.raises(ValueError, match="odd"):
        ResnetGenerator(filters=4, n_blocks=1, edge_kernel=4)


def test_generator_has_no_transposed_convolutions_and_rejects_odd_sizes():
    generator = ResnetGenerator(filters=4, n_blocks=2)
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose1d, nn.ConvTranspose3d)) for m in generator.modules())
    with pytest.raises(ValueError, match="divisible by 4"):
        generator(torch.zeros(1, 1, 30, 32))


def test_residual_generator_starts_as_identity():
    generator = ResnetGenerator(filters=4, n_blocks=1, residual_output=True)
    x = torch.rand(1, 1, 32, 32) * 1.9 - 0.95
    with torch.no_grad():
        assert torch.allclose(generator(x), x, atol=1e-5)


def test_an_identity_adapter_skips_its_network_with_the_same_values():
    from unetgan.inference import translate_slices

    slices = torch.rand(5, 1, 32, 32)
    slices[0, 0, 0, :4] = torch.tensor([0.0, 1.0, 0.001, 0.999])  # the clamp's extremes
    identity = ResnetGenerator(filters=4, n_blocks=1, residual_output=True).eval()
    assert identity.is_identity()
    calls = []
    identity.body.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        through_network = ((identity(slices * 2 - 1) + 1) / 2).clamp(0, 1)
    calls.clear()
    assert torch.equal(translate_slices(identity, slices, "cpu"), through_network)
    assert calls == []  # the body never ran
    trained = ResnetGenerator(filters=4, n_blocks=1, residual_output=True).eval()
    with torch.no_grad():
        trained.head[1].bias.fill_(0.1)
    assert not trained.is_identity() and not ResnetGenerator(filters=4, n_blocks=1).is_identity()
    trained.body.register_forward_hook(lambda *args: calls.append(1))
    translate_slices(trained, slices, "cpu")
    assert calls  # a trained adapter runs its network


def test_the_translated_view_fades_into_the_generator_input_at_the_crop_edge():
    """A field wider than the network's crop (300 px of 1.5 mm: 450 mm against 288): past the crop the view shows
    the generator's input, and where the crop ends the translation fades out instead of stepping."""
    from unetgan.inference import CROP_EDGE_FADE, translate_to_source

    class Brighten(nn.Module):  # a translation that adds a constant: inside the crop the view is the input + 0.1
        def forward(self, x):
            return x + 0.2

    y, x = np.mgrid[0:300, 0:300].astype(np.float32)
    volume = (300 + 100 * np.sin(x / 40) + 100 * np.sin(y / 37))[None]  # smooth: resampling keeps it
    low, high = np.percentile(volume, (1, 99))
    view = translate_to_source(volume, (1.5, 1.5, 8.0), Brighten())
    added = (view - np.clip(volume, low, high))[0, 150] / (high - low)  # the middle row, in the [0, 1] range
    assert added[150] == pytest.approx(0.1, abs=0.01) and abs(added[0]) < 0.005  # translated / the input
    # the crop spans columns 54-245: the 0.1 comes on over CROP_EDGE_FADE (16) columns, not in a step
    assert CROP_EDGE_FADE == 16 and np.abs(np.diff(added)).max() < 0.1 / 10
    assert np.all(added[:50] < 0.005) and np.all(added[72:228] > 0.095)


def test_count_flops_grows_with_width_and_depth():
    small = count_flops(ResnetGenerator(filters=4, n_blocks=1), size=32)
    assert small > 0
    assert count_flops(ResnetGenerator(filters=8, n_blocks=1), size=32) > 3 * small
    assert count_flops(ResnetGenerator(filters=4, n_blocks=3), size=32) > small


def test_patchgan_output_shape_and_receptive_field():
    assert receptive_field(3) == 70
    discriminator = PatchDiscriminator(filters=4, n_layers=3)
    assert discriminator(torch.zeros(2, 1, 256, 256)).shape == (2, 1, 30, 30)  # CycleGAN's 30x30 patches
    assert discriminator(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 6, 6)


# --- adversarial parts -------------------------------------------------------

def test_lsgan_losses():
    ones, zeros = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert lsgan_loss(ones, True).item() == 0 and lsgan_loss(zeros, True).item() == 1
    assert generator_adversarial_loss(zeros).item() == 1
    assert discriminator_loss(ones, zeros).item() == 0
    assert discriminator_loss(zeros, ones).item() == 1


def test_image_pool_fills_then_mixes_history_and_restores_exactly():
    pool = ImagePool(size=4, seed=3)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 4  # filling: returns its input
    new = torch.arange(100.0, 164.0).view(64, 1, 1, 1)
    state, images = pool.state()
    out = pool.query(new)
    from_history = (out != new).sum().item()
    assert 16 < from_history < 48  # about half the time an older fake
    assert set(out.flatten().tolist()) >= {0.0, 1.0, 2.0, 3.0} - set(t.item() for t in pool.images)
    assert len(pool) == 4

    again = ImagePool(size=4, seed=99)
    again.load_state(json.loads(json.dumps(state)), images)
    assert torch.equal(again.query(new), out)

    assert torch.equal(ImagePool(size=0).query(new), new)


# --- Unet feature loss ---------------------------------------------------------

def test_feature_loss_zero_for_identity_and_trains_only_the_generator():
    lvunet = tiny_lvunet()
    loss_fn = UnetFeatureLoss(lvunet)
    loss_fn.train()
    assert not lvunet.training  # stays frozen in eval mode
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert loss_fn(x, x.clone()).item() == 0

    generator = ResnetGenerator(filters=4, n_blocks=1)
    loss = loss_fn(x, generator(x))
    loss.backward()
    assert loss.item() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in generator.parameters())
    assert any(p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None and not p.requires_grad for p in lvunet.parameters())


# --- label-free criterion -----------------------------------------------------

def ring_mask(size: int = 48, pool_r: float = 8, wall: float = 5) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    return np.where(r < pool_r, 1, np.where(r < pool_r + wall, 2, 0)).astype(np.uint8)


def test_mask_plausibility_prefers_an_enclosed_single_pool():
    good = ring_mask()
    assert mask_plausibility(good) == pytest.approx(1.0)
    open_ring = good.copy()
    open_ring[:24][good[:24] == 2] = 0  # upper half of the wall missing
    two_pools = good.copy()
    two_pools[2:6, 2:6] = 1
    assert mask_plausibility(open_ring) < 0.7
    assert mask_plausibility(two_pools) < 0.95
    assert mask_plausibility(np.where(good == 2, 0, good)) == 0  # pool without wall
    assert math.isnan(mask_plausibility(np.zeros_like(good)))


def test_label_free_criterion_components_are_bounded():
    images = torch.from_numpy(phantom_slices(3, 32, 1.0, 0)[:, None])
    result = label_free_criterion(tiny_lvunet(), images, reference_area=100.0)
    for key in ("coverage", "confidence", "flip_agreement", "plausibility", "area_ratio", "score"):
        assert 0 <= result[key] <= 1, (key, result)


# --- adapter training end to end ---------------------------------------------

def tiny_config(**overrides) -> AdapterConfig:
    values = dict(filters=4, n_blocks=1, disc_filters=4, disc_layers=2, batch_size=2, iterations=4, eval_every=2,
                  crop_size=32, n_eval_slices=3, n_sample_slices=2, pool_size=3, lr_decay_fraction=0.0,
                  device="cpu", time_limit_s=None)
    values.update(overrides)
    return AdapterConfig(**values)


@pytest.fixture(scope="module")
def domains():
    return phantom_slices(8, 48, 1.0, 1), phantom_slices(8, 48, 2.5, 2)


def test_train_adapter_writes_a_loadable_adapter(tmp_path, domains):
    source, target = domains
    calls = []
    out = tmp_path / "adapter.safetensors"
    result = train_adapter(source, target, tiny_lvunet(), tiny_config(), out,
                           progress=lambda i, n, losses: calls.append((i, n, losses)), sample_dir=tmp_path / "samples",
                           source_vendor="Philips", target_vendor="Siemens")
    assert [c[0] for c in calls] == [1, 2, 3, 4] and calls[0][1] == 4
    assert {"G", "G_gan", "cycle", "unet", "D_S", "D_T"} <= set(calls[0][2])
    assert result.iterations == 4 and result.best_iteration in (0, 2, 4)
    assert [h["iteration"] for h in result.history] == [0, 2, 4]  # identity baseline, then each evaluation
    # the shipped generator is the best candidate by the criterion, the untrained identity included
    assert result.best_score == max(h["score"] for h in result.history)
    assert result.best_iteration == next(h["iteration"] for h in result.history if h["score"] == result.best_score)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["iter_000002.png", "iter_000004.png"]

    adapter = load_generator(out)
    assert adapter.metadata["source_vendor"] == "Philips" and adapter.metadata["target_vendor"] == "Siemens"
    assert adapter.metadata["identity"] == (result.best_iteration == 0)
    assert adapter.metadata["criterion"]["score"] == pytest.approx(result.best_score)
    with torch.no_grad():
        translated = adapter(torch.from_numpy(target[:2, None]) * 2 - 1)  # whole slices, not crops
    assert translated.shape == (2, 1, 48, 48) and torch.isfinite(translated).all()


def test_resume_continues_from_the_saved_iteration_and_matches_an_uninterrupted_run(tmp_path, domains):
    source, target = domains
    straight = train_adapter(source, target, tiny_lvunet(), tiny_config(), tmp_path / "a.safetensors", progress=lambda *a: None)

    first = train_adapter(source, target, tiny_lvunet(), tiny_config(iterations=2), tmp_path / "b.safetensors",
                          progress=lambda *a: None)
    assert first.iterations == 2
    seen = []
    resumed = train_adapter(source, target, tiny_lvunet(), tiny_config(), tmp_path / "b.safetensors",
                            progress=lambda i, n, losses: seen.append(i), resume=True)
    assert seen == [3, 4] and resumed.iterations == 4

    from safetensors.torch import load_file

    a = load_file(str(straight.checkpoint_dir / "weights.safetensors"))
    b = load_file(str(resumed.checkpoint_dir / "weights.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    with pytest.raises(ValueError, match="generator"):
        train_adapter(source, target, tiny_lvunet(), tiny_config(filters=8, iterations=6), tmp_path / "b.safetensors",
                      progress=lambda *a: None, resume=True)


def test_generator_save_load_round_trip_and_mismatch(tmp_path):
    generator = ResnetGenerator(filters=4, n_blocks=2, upsample_mode="bilinear").eval()
    path = tmp_path / "g.safetensors"
    save_generator(generator, path, source_vendor="Philips")
    loaded = load_generator(path)
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), generator(x))
    assert loaded.config == generator.config

    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    wrong = {"architecture": "ResnetGenerator", "config": {**loaded.metadata["config"], "n_blocks": 3}}
    save_file(tensors, str(tmp_path / "wrong.safetensors"), metadata={k: json.dumps(v) for k, v in wrong.items()})
    with pytest.raises(ValueError, match="does not fit the architecture"):
        load_generator(tmp_path / "wrong.safetensors")
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata={"architecture": json.dumps("LVUnet")})
    with pytest.raises(ModelError, match="not a Unet-GAN generator"):
        load_generator(tmp_path / "other.safetensors")


def test_config_presets_and_round_trip():
    fast, paper = AdapterConfig.fast(), AdapterConfig.paper()
    assert paper.lr == 1e-5 and paper.lambda_unet == 15 and paper.lambda_ssim == 5
    assert (paper.filters, paper.n_blocks) == (64, 9)
    assert fast.crop_size == 128 and fast.filters < paper.filters
    assert AdapterConfig.from_dict(json.loads(json.dumps(fast.to_dict()))) == fast
    with pytest.raises(ValueError):
        AdapterConfig(cycle_loss="l2")


def test_a_run_whose_checkpoints_never_beat_the_identity_ships_the_identity(tmp_path, domains):
    """A generator wrecked by a huge learning rate loses to 'no translation' by the criterion: the file
    written is then the untrained residual generator, which returns its input."""
    source, target = domains
    out = tmp_path / "adapter.safetensors"
    result = train_adapter(source, target, tiny_lvunet(), tiny_config(lr=50.0), out, progress=lambda *a: None)
    identity = result.history[0]["score"]
    if result.best_iteration == 0:
        adapter = load_generator(out).eval()
        x = torch.rand(1, 1, 32, 32) * 1.9 - 0.95
        with torch.no_grad():
            assert torch.allclose(adapter(x), x, atol=1e-5)
        assert adapter.metadata["identity"] is True and result.best_score == identity
    else:  # a checkpoint may only be shipped when it scores above the identity
        assert result.best_score > identity
