"""Unet-GAN adapter training: a CycleGAN between target and source vendor,
guided by the frozen source LV-Unet (METHOD.md, step 2).

Networks: G_S (target -> source, the adapter shipped for inference), G_T
(source -> target), D_S and D_T (PatchGANs judging source / target images).

Generator loss per iteration (one batch of each domain, in [-1, 1]):

    L_G = LSGAN(D_S(G_S(x_T))) + LSGAN(D_T(G_T(x_S)))
        + lambda_unet * [ L_Unet(x_T, G_S(x_T)) + L_Unet(x_S, G_T(x_S)) ]
        + lambda_ssim * [ L_SSIM(G_T(G_S(x_T)), x_T) + L_SSIM(G_S(G_T(x_S)), x_S) ]

- The feature loss is applied in both directions: G_T must not move anatomy
  either, otherwise the cycle G_S(G_T(x_S)) could be learnt on images with
  altered anatomy and G_S would inherit that.
- The SSIM loss compares each image with its cycle reconstruction (the
  paper's replacement of CycleGAN's L1 cycle loss); ``cycle_loss="l1"`` is the
  ablation with CycleGAN's L1 and weight ``lambda_l1``. SSIM between input and
  translation is off by default (``lambda_ssim_translation``), since the
  feature loss is what keeps anatomy there.
- The discriminators are updated after the generators, each on real images
  and on a 50-image history of fakes, with CycleGAN's halved LSGAN loss.

Checkpoint selection without target labels: see ``label_free_criterion``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from ..distributed import SINGLE, Ranks, join, mean_and_any, parallel
from ..errors import InputError
from ..inference import context_slices
from ..losses.adversarial import ImagePool, discriminator_loss, generator_adversarial_loss
from ..losses.ssim import ssim, ssim_loss
from ..losses.unet_features import UnetFeatureLoss, to_unit_range
from ..networks.discriminator import PatchDiscriminator
from ..networks.generator import GeneratorConfig, build_generator, load_generator, save_generator

__all__ = ["AdapterConfig", "TrainResult", "train_adapter", "label_free_criterion", "load_generator"]

ProgressCallback = Callable[[int, int, dict], None]


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

@dataclass
class AdapterConfig:
    """Hyper-parameters of one adapter training run.

    Learning rate: the paper uses Adam at 1e-5 (``paper()``), which suits its
    long GPU runs. ``fast()`` uses the reference CycleGAN's 2e-4 with Adam
    betas (0.5, 0.999): with only a few thousand iterations on a CPU, 1e-5
    barely moves the networks, and beta1 = 0.5 is CycleGAN's (and DCGAN's)
    remedy for the oscillation momentum causes in the adversarial game.

    bf16 is off by default: on a CPU without AVX-512 bf16 (e.g. AVX2-only
    AMD EPYC) bf16 autocast made generator iterations about 25x slower, not
    faster. channels_last gave nothing measurable for these small networks.

    ``residual_output`` (fast preset): the generators start as the identity
    (see ``networks.generator``), so every checkpoint keeps the anatomy from
    the first iteration and a short run can only move away from "no
    adaptation" as far as the losses allow; the paper preset keeps the
    reference generator.

    ``lambda_unet`` is the paper's 15, but the feature loss's scale depends on
    the LV-Unet's feature magnitudes, and it is minimised by the identity: it
    charges every change of the frozen network's features, the wanted ones
    included. On a synthetic vendor pair, L_Unet of the *perfect*
    translation (6.6) was 7x that of a 4-pixel shift of the anatomy (0.9) for
    a U-Net trained without intensity augmentation. Calibrate it for the
    LV-Unet in use (an LV-Unet trained with intensity augmentation has more
    vendor-invariant features, which is what this loss assumes).
    """

    # generators
    filters: int = 32
    n_blocks: int = 6
    upsample_mode: str = "nearest"
    residual_output: bool = True
    # discriminators
    disc_filters: int = 64
    disc_layers: int = 3
    # optimisation
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_fraction: float = 0.5  # linear decay to 0 over this last fraction of the iterations (CycleGAN)
    batch_size: int = 1
    iterations: int = 2000
    time_limit_s: float | None = None  # per call: stop (then evaluate and save) after this many seconds
    # losses
    lambda_unet: float = 15.0
    lambda_ssim: float = 5.0
    lambda_l1: float = 10.0  # only for cycle_loss="l1" (CycleGAN's weight)
    lambda_ssim_translation: float = 0.0
    ssim_alpha: float = 0.1
    ssim_beta: float = 0.1
    ssim_gamma: float = 1.0
    cycle_loss: str = "ssim"  # "ssim" | "l1"
    use_feature_loss: bool = True
    pool_size: int = 50
    # data
    crop_size: int | None = 128  # random crops for training; None = whole slices. Inference is always 192.
    flip_augment: bool = True
    # evaluation / checkpoint selection
    eval_every: int = 200
    n_eval_slices: int = 24
    n_sample_slices: int = 4
    # runtime
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    bf16: bool = False  # bf16 autocast (CPU or GPU); losses stay float32
    channels_last: bool = False

    @classmethod
    def fast(cls, **overrides) -> "AdapterConfig":
        """For 2 CPU cores: 16 filters / 6 blocks (3.0 GFLOP per 192x192 image against the
        reference's 63), batches of two 128x128 crops, 1500 iterations; about 1.2 s per
        iteration on one loaded AVX2 core, so about 30 minutes, capped at 40."""
        base = cls(
            filters=16, n_blocks=6, residual_output=True, disc_filters=32, disc_layers=3,
            lr=2e-4, batch_size=2, iterations=1500, crop_size=128, eval_every=250, n_eval_slices=24,
            time_limit_s=40 * 60,
        )
        return replace(base, **overrides)

    @classmethod
    def paper(cls, **overrides) -> "AdapterConfig":
        """The paper's settings (Adam 1e-5, lambdas 15 / 5, SSIM exponents 0.1 / 0.1 / 1) with the
        reference CycleGAN networks (64 filters, 9 blocks, 70x70 PatchGAN) on whole 192x192
        slices, for a GPU. The paper gives no iteration count; 100k at batch 1 is about 60
        passes over its 1680 Siemens images."""
        base = cls(
            filters=64, n_blocks=9, residual_output=False, disc_filters=64, disc_layers=3,
            lr=1e-5, batch_size=1, iterations=100_000, crop_size=None, eval_every=2000, n_eval_slices=64,
            device="auto", bf16=False,
        )
        return replace(base, **overrides)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.cycle_loss not in ("ssim", "l1"):
            raise ValueError(f"cycle_loss must be 'ssim' or 'l1', not {self.cycle_loss!r}")
        if self.crop_size is not None and (self.crop_size % 4 or self.crop_size < 16):
            raise ValueError("crop_size must be a multiple of 4 and at least 16")
        if self.iterations < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise ValueError("iterations, eval_every and batch_size must be positive")

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(1, 1, self.filters, self.n_blocks, self.upsample_mode, self.residual_output)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["betas"] = list(self.betas)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "AdapterConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainResult:
    adapter_path: Path  # best G_S by the label-free criterion
    checkpoint_dir: Path  # everything needed to resume
    iterations: int  # iterations done in total (including resumed ones)
    best_iteration: int
    best_score: float
    identity_score: float  # the criterion on the untranslated target images, for comparison
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------
# Label-free checkpoint selection
# --------------------------------------------------------------------------

def _largest_component_fraction(mask: np.ndarray) -> float:
    labels, count = ndimage.label(mask)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() / mask.sum())


def mask_plausibility(mask: np.ndarray) -> float:
    """How much a (H, W) label mask looks like a short-axis LV, in [0, 1].

    A blood pool (1) in one piece, a myocardium (2) in one piece, and the pool
    surrounded by myocardium: the product of the largest-component fractions
    of pool and myocardium and the fraction of the pool's outer border that is
    myocardium. Apical slices with myocardium only score by the myocardium's
    largest-component fraction. Empty masks are not judged (NaN).
    """
    pool, myo = mask == 1, mask == 2
    if not pool.any() and not myo.any():
        return math.nan
    if not myo.any():
        return 0.0  # a pool with no wall is never right
    myo_score = _largest_component_fraction(myo)
    if not pool.any():
        return myo_score
    border = ndimage.binary_dilation(pool) & ~pool
    enclosure = float(myo[border].mean()) if border.any() else 0.0
    return _largest_component_fraction(pool) * myo_score * enclosure


def _dice_foreground(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice over labels 1 and 2 present in either mask; NaN when both are empty."""
    scores = []
    for label in (1, 2):
        x, y = a == label, b == label
        total = x.sum() + y.sum()
        if total:
            scores.append(2 * (x & y).sum() / total)
    return float(np.mean(scores)) if scores else math.nan


@torch.no_grad()
def _segment(lvunet: nn.Module, images_unit: torch.Tensor, flipped: bool = True, batch: int = 8):
    """LV-Unet probabilities (N, C, H, W) and, for a flip-consistency check, the
    labels predicted on the horizontally flipped images, flipped back (N, H, W)
    (None unless ``flipped``)."""
    probabilities, flipped_labels = [], []
    for start in range(0, len(images_unit), batch):
        x = images_unit[start:start + batch]
        probabilities.append(torch.softmax(lvunet(x).float(), 1))
        if flipped:
            flipped_labels.append(lvunet(x.flip(-1)).float().argmax(1).flip(-1))
    return torch.cat(probabilities), (torch.cat(flipped_labels) if flipped else None)


def foreground_area(lvunet: nn.Module, images_unit: torch.Tensor) -> float:
    """Mean predicted LV area (pixels) per slice, slices without LV counting as 0."""
    labels = _segment(lvunet, images_unit, flipped=False)[0].argmax(1)
    return float((labels > 0).flatten(1).sum(1).float().mean())


CRITERION_COMPONENTS = ("confidence", "flip_agreement", "plausibility", "area_ratio")


def label_free_criterion(lvunet: nn.Module, images_unit: torch.Tensor, reference_area: float) -> dict:
    """How well the source LV-Unet copes with these images, without labels; higher is better.

    ``images_unit``: (N, 1, H, W) in [0, 1], e.g. translated target slices
    G_S(x_T) of a fixed held-out set. ``reference_area``: ``foreground_area``
    of the LV-Unet on source slices (where it is known to work).

    Components, each in [0, 1]:
    - confidence: mean max-softmax over the pixels predicted as LV (blood pool
      or myocardium): a U-Net is unsure on images unlike its training data;
    - flip_agreement: Dice between the masks of an image and of its mirror
      image (flipped back), over slices with any LV: a network on familiar
      ground is equivariant to the flips it was trained with, a lost one is not;
    - plausibility: ``mask_plausibility`` averaged over slices with any LV:
      one pool, one myocardium, the pool enclosed by the myocardium;
    - area_ratio: min/max of the mean predicted LV area per slice (empty
      slices count as 0) and the source reference: catches a generator that
      erases, shrinks or inflates the heart, for which the three above can be
      excellent (a small tidy disc is confidently, stably and plausibly segmented).

    ``score`` is their geometric mean, so that no component can make up for
    another that has collapsed (with an arithmetic mean, a generator that
    shrank every heart to a dot scored best in a synthetic check). If no slice
    has any LV, every component is 0. ``coverage`` (fraction of slices with
    LV) is reported but not scored.
    """
    probabilities, flipped = _segment(lvunet, images_unit)
    confidence_map, labels = probabilities.max(1)
    labels_np, flipped_np = labels.cpu().numpy(), flipped.cpu().numpy()
    foreground = labels > 0
    found = foreground.flatten(1).any(1)
    result = {"coverage": float(found.float().mean())}
    if not found.any():
        result.update({name: 0.0 for name in CRITERION_COMPONENTS}, score=0.0)
        return result

    result["confidence"] = float(confidence_map[foreground].mean())
    agreements = [_dice_foreground(a, b) for a, b in zip(labels_np, flipped_np)]
    result["flip_agreement"] = float(np.nanmean(agreements))
    result["plausibility"] = float(np.nanmean([mask_plausibility(m) for m in labels_np[found.cpu().numpy()]]))
    area = float(foreground.flatten(1).sum(1).float().mean())
    result["area_ratio"] = min(area, reference_area) / max(area, reference_area) if reference_area > 0 else 0.0
    components = np.array([result[name] for name in CRITERION_COMPONENTS])
    result["score"] = float(np.prod(components) ** (1 / len(components)))
    return result


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def _as_slices(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty (N, H, W) array of slices, got shape {array.shape}")
    if array.shape[1] % 4 or array.shape[2] % 4:
        raise ValueError(f"{name}: slice height and width must be divisible by 4, got {array.shape[1:]}")
    return array


class SliceSampler:
    """Random batches of random crops (and flips) of one domain's slices, in [-1, 1]."""

    def __init__(self, slices: np.ndarray, crop_size: int | None, flip: bool, rng: np.random.Generator):
        self.slices, self.flip, self.rng = slices, flip, rng
        height, width = slices.shape[1:]
        self.crop = None if crop_size is None or crop_size >= min(height, width) else crop_size

    def batch(self, size: int) -> torch.Tensor:
        images = []
        for index in self.rng.integers(0, len(self.slices), size):
            image = self.slices[index]
            if self.crop:
                top = self.rng.integers(0, image.shape[0] - self.crop + 1)
                left = self.rng.integers(0, image.shape[1] - self.crop + 1)
                image = image[top:top + self.crop, left:left + self.crop]
            if self.flip:
                if self.rng.random() < 0.5:
                    image = image[:, ::-1]
                if self.rng.random() < 0.5:
                    image = image[::-1, :]
            images.append(np.ascontiguousarray(image))
        return torch.from_numpy(np.stack(images)[:, None]) * 2 - 1


def _split_eval(target: np.ndarray, n_eval: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A fixed held-out set of target slices for checkpoint selection, and the rest for training.

    With too few slices to spare (fewer than 2 * n_eval), all are used for both:
    the criterion needs no labels, so sharing costs only independence.
    """
    n_eval = min(n_eval, len(target))
    order = rng.permutation(len(target))
    eval_slices = target[np.sort(order[:n_eval])]
    if len(target) < 2 * n_eval:
        return target, eval_slices
    return target[np.sort(order[n_eval:])], eval_slices


# --------------------------------------------------------------------------
# Checkpoints: safetensors for weights, torch.save only for optimiser state
# (loaded back with weights_only=True), JSON for the rest.
# --------------------------------------------------------------------------

WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE = "weights.safetensors", "optimizers.pt", "state.json"


def default_checkpoint_dir(out_path: Path) -> Path:
    return out_path.with_name(out_path.stem + "_checkpoint")


def _save_checkpoint(directory: Path, nets: dict[str, nn.Module], optimizers: dict, pools: dict[str, ImagePool],
                     state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"{name}.{key}": value.detach().float().cpu().contiguous()
               for name, net in nets.items() for key, value in net.state_dict().items()}
    state = dict(state, pools={})
    for name, pool in pools.items():
        pool_state, images = pool.state()
        state["pools"][name] = pool_state
        if images is not None:
            tensors[f"pool.{name}"] = images.float().cpu().contiguous()
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / WEIGHTS_FILE))
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
    # Swap in the complete new checkpoint only once it is fully written.
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _check_resumable(directory: Path, config: AdapterConfig) -> None:
    """Refuse, with a readable message, to resume into different networks."""
    if not (directory / STATE_FILE).is_file():
        raise FileNotFoundError(f"no adapter checkpoint in {directory}")
    saved = AdapterConfig.from_dict(json.loads((directory / STATE_FILE).read_text())["config"])
    if saved.generator_config() != config.generator_config():
        raise ValueError(f"cannot resume {directory}: its generator {saved.generator_config()} "
                         f"differs from the configuration's {config.generator_config()}")
    if (saved.disc_filters, saved.disc_layers) != (config.disc_filters, config.disc_layers):
        raise ValueError(f"cannot resume {directory}: its discriminator ({saved.disc_filters} filters, "
                         f"{saved.disc_layers} layers) differs from the configuration's "
                         f"({config.disc_filters}, {config.disc_layers})")


def _load_checkpoint(directory: Path, nets: dict[str, nn.Module], optimizers: dict, pools: dict[str, ImagePool],
                     device: torch.device) -> dict:
    from safetensors.torch import load_file

    if not (directory / STATE_FILE).is_file():
        raise FileNotFoundError(f"no adapter checkpoint in {directory}")
    state = json.loads((directory / STATE_FILE).read_text())
    tensors = load_file(str(directory / WEIGHTS_FILE))
    for name, net in nets.items():
        prefix = name + "."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(own, strict=True)
        except RuntimeError as err:
            first_line = str(err).splitlines()[0]
            raise ValueError(f"checkpoint {directory} does not fit this configuration's {name}: {first_line}") from None
    saved = torch.load(directory / OPTIMIZER_FILE, map_location=device, weights_only=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(saved[name])
    for name, pool in pools.items():
        images = tensors.get(f"pool.{name}")
        pool.load_state(state["pools"][name], None if images is None else images.to(device))
    return state


# --------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------

def save_samples(path: Path, target: torch.Tensor, translated: torch.Tensor, reconstructed: torch.Tensor,
                 labels: torch.Tensor, title: str) -> None:
    """One row per slice: target | translated | reconstruction | translated with LV-Unet mask outline.

    Images in [0, 1]. Uses the Agg canvas directly, so the global matplotlib
    backend of the caller (e.g. Slicer's) is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = len(target)
    figure = Figure(figsize=(8, 2 * rows + 0.4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 4, squeeze=False)
    columns = ("target", "translated (G_S)", "reconstruction", "LV-Unet on translated")
    for row in range(rows):
        panels = (target[row, 0], translated[row, 0], reconstructed[row, 0], translated[row, 0])
        for col, (ax, image) in enumerate(zip(axes[row], panels)):
            ax.imshow(image.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(columns[col], fontsize=8)
        mask = labels[row].cpu().numpy()
        for label, colour in ((1, "red"), (2, "lime")):
            if (mask == label).any():
                axes[row, 3].contour(mask == label, levels=[0.5], colors=colour, linewidths=0.7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def _pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _learning_rate(config: AdapterConfig, iteration: int) -> float:
    """Constant, then linear decay to 0 over the last ``lr_decay_fraction`` of the run."""
    decay_start = config.iterations * (1 - config.lr_decay_fraction)
    if config.lr_decay_fraction <= 0 or iteration < decay_start:
        return config.lr
    return config.lr * max(0.0, (config.iterations - iteration) / (config.iterations - decay_start + 1))


def _build_networks(config: AdapterConfig) -> dict[str, nn.Module]:
    # Seeded in a forked RNG so the caller's global torch RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator_config = config.generator_config()
        return {
            "G_S": build_generator(generator_config),
            "G_T": build_generator(generator_config),
            "D_S": PatchDiscriminator(1, config.disc_filters, config.disc_layers),
            "D_T": PatchDiscriminator(1, config.disc_filters, config.disc_layers),
        }


class CycleGenerators(nn.Module):
    """Both generators' passes of one iteration in one call: DistributedDataParallel averages the gradients of
    a module called once per backward (each generator is used twice: translation and cycle)."""

    def __init__(self, G_S: nn.Module, G_T: nn.Module):
        super().__init__()
        self.G_S, self.G_T = G_S, G_T

    def forward(self, real_S, real_T):
        fake_S = self.G_S(real_T)
        fake_T = self.G_T(real_S)
        return fake_S, fake_T, self.G_T(fake_S), self.G_S(fake_T)


class Discriminators(nn.Module):
    """Both discriminators on real images and on the history of fakes, in one call (see CycleGenerators)."""

    def __init__(self, D_S: nn.Module, D_T: nn.Module):
        super().__init__()
        self.D_S, self.D_T = D_S, D_T

    def forward(self, real_S, pooled_S, real_T, pooled_T):
        return self.D_S(real_S), self.D_S(pooled_S), self.D_T(real_T), self.D_T(pooled_T)


class _AdapterTraining:
    """State and steps of one run; ``train_adapter`` is the entry point.

    Under torchrun (`where` with several ranks) each process draws its own crops (its samplers seeded with
    its rank) and DistributedDataParallel averages the generators' and the discriminators' gradients."""

    def __init__(self, source: np.ndarray, target: np.ndarray, lvunet: nn.Module, config: AdapterConfig,
                 where: Ranks = SINGLE):
        self.config, self.where = config, where
        if context_slices(lvunet):
            # the feature loss and the label-free criterion feed it single translated slices
            raise InputError("an adapter is trained against a one-slice LV-Unet; this one also sees neighbour "
                             "slices (--context-slices): train against the one-slice network it was widened from")
        self.device = where.device(config.device) if where.distributed else _pick_device(config.device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        rng = np.random.default_rng(config.seed)
        train_target, eval_target = _split_eval(target, config.n_eval_slices, rng)
        self.source = SliceSampler(source, config.crop_size, config.flip_augment, rng)
        self.target = SliceSampler(train_target, config.crop_size, config.flip_augment, rng)
        self.rng = rng  # shared by both samplers; its state goes into checkpoints

        self.nets = {name: net.to(self.device, memory_format=self.memory_format)
                     for name, net in _build_networks(config).items()}
        # the plain networks are saved and evaluated; these run the training passes (DDP-wrapped under torchrun)
        self.generators = parallel(CycleGenerators(self.nets["G_S"], self.nets["G_T"]), where)
        self.discriminators = parallel(Discriminators(self.nets["D_S"], self.nets["D_T"]), where)
        self.lvunet = lvunet.to(self.device)
        self.feature_loss = UnetFeatureLoss(self.lvunet)  # freezes the LV-Unet
        generator_params = [*self.nets["G_S"].parameters(), *self.nets["G_T"].parameters()]
        discriminator_params = [*self.nets["D_S"].parameters(), *self.nets["D_T"].parameters()]
        self.optimizers = {
            "G": torch.optim.Adam(generator_params, lr=config.lr, betas=config.betas),
            "D": torch.optim.Adam(discriminator_params, lr=config.lr, betas=config.betas),
        }
        self.pools = {"S": ImagePool(config.pool_size, config.seed + 1), "T": ImagePool(config.pool_size, config.seed + 2)}

        self.eval_target = self._to_device(torch.from_numpy(eval_target[:, None]))  # [0, 1]
        reference = source[np.linspace(0, len(source) - 1, min(len(source), 2 * config.n_eval_slices)).astype(int)]
        self.reference_area = foreground_area(self.lvunet, self._to_device(torch.from_numpy(reference[:, None])))

    def seed_samplers_for_rank(self, iteration: int) -> None:
        """Under torchrun: this rank's own crops from here on, seeded with (seed, iteration, rank); a checkpoint
        keeps rank 0's generator state only, so a resumed multi-process run reseeds from where it starts."""
        self.rng = np.random.default_rng([self.config.seed, iteration, self.where.rank])
        self.source.rng = self.target.rng = self.rng

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        if not self.config.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _cycle_loss(self, reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.cycle_loss == "l1":
            return c.lambda_l1 * F.l1_loss(reconstructed.float(), original.float())
        return c.lambda_ssim * ssim_loss(to_unit_range(reconstructed), to_unit_range(original),
                                         c.ssim_alpha, c.ssim_beta, c.ssim_gamma)

    def step(self, iteration: int) -> dict[str, float]:
        c, nets = self.config, self.nets
        D_S, D_T = nets["D_S"], nets["D_T"]
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(c, iteration)
        real_S = self._to_device(self.source.batch(c.batch_size))
        real_T = self._to_device(self.target.batch(c.batch_size))

        # --- generators (discriminators frozen: no gradients needed for them here)
        D_S.requires_grad_(False)
        D_T.requires_grad_(False)
        with self._autocast():
            fake_S, fake_T, rec_T, rec_S = self.generators(real_S, real_T)
            loss_gan = generator_adversarial_loss(D_S(fake_S)) + generator_adversarial_loss(D_T(fake_T))
            loss_cycle = self._cycle_loss(rec_T, real_T) + self._cycle_loss(rec_S, real_S)
            loss_unet = torch.zeros((), device=self.device)
            if c.use_feature_loss:
                loss_unet = c.lambda_unet * (self.feature_loss(real_T, fake_S) + self.feature_loss(real_S, fake_T))
            loss_translation = torch.zeros((), device=self.device)
            if c.lambda_ssim_translation:
                loss_translation = c.lambda_ssim_translation * (
                    ssim_loss(to_unit_range(fake_S), to_unit_range(real_T), c.ssim_alpha, c.ssim_beta, c.ssim_gamma)
                    + ssim_loss(to_unit_range(fake_T), to_unit_range(real_S), c.ssim_alpha, c.ssim_beta, c.ssim_gamma))
            loss_G = loss_gan + loss_cycle + loss_unet + loss_translation
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_G.backward()
        self.optimizers["G"].step()

        # --- discriminators, on real images and on the history of fakes
        D_S.requires_grad_(True)
        D_T.requires_grad_(True)
        pooled_S = self.pools["S"].query(fake_S.detach())
        pooled_T = self.pools["T"].query(fake_T.detach())
        with self._autocast():
            real_S_score, fake_S_score, real_T_score, fake_T_score = self.discriminators(real_S, pooled_S, real_T, pooled_T)
            loss_D_S = discriminator_loss(real_S_score, fake_S_score)
            loss_D_T = discriminator_loss(real_T_score, fake_T_score)
        self.optimizers["D"].zero_grad(set_to_none=True)
        (loss_D_S + loss_D_T).backward()
        self.optimizers["D"].step()

        losses = {"G": loss_G, "G_gan": loss_gan, "cycle": loss_cycle, "unet": loss_unet, "D_S": loss_D_S, "D_T": loss_D_T}
        if c.lambda_ssim_translation:
            losses["translation"] = loss_translation
        values = {name: float(value.detach()) for name, value in losses.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"non-finite loss at iteration {iteration}: {values}")
        return values

    @torch.no_grad()
    def translate_eval(self, batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """G_S and the cycle G_T(G_S) on the held-out target slices, in [0, 1]."""
        G_S, G_T = self.nets["G_S"].eval(), self.nets["G_T"].eval()
        translated, reconstructed = [], []
        with self._autocast():
            for start in range(0, len(self.eval_target), batch):
                x = self.eval_target[start:start + batch] * 2 - 1
                fake = G_S(x)
                translated.append(to_unit_range(fake).float())
                reconstructed.append(to_unit_range(G_T(fake)).float())
        G_S.train()
        G_T.train()
        return torch.cat(translated), torch.cat(reconstructed)

    def evaluate(self, iteration: int, sample_dir: Path | None) -> dict:
        translated, reconstructed = self.translate_eval()
        result = label_free_criterion(self.lvunet, translated, self.reference_area)
        result["iteration"] = iteration
        result["cycle_ssim"] = float(ssim(reconstructed, self.eval_target).mean())
        if sample_dir is not None:
            n = min(self.config.n_sample_slices, len(translated))
            # Spread the samples over the held-out set instead of its first slices.
            rows = torch.linspace(0, len(translated) - 1, n).long()
            labels = _segment(self.lvunet, translated[rows], flipped=False)[0].argmax(1)
            save_samples(Path(sample_dir) / f"iter_{iteration:06d}.png", self.eval_target[rows], translated[rows],
                         reconstructed[rows], labels, f"iteration {iteration}: criterion {result['score']:.3f}")
        return result


def train_adapter(
    source_slices: np.ndarray,
    target_slices: np.ndarray,
    lvunet: nn.Module,
    config: AdapterConfig | None = None,
    out_path: str | Path = "adapter.safetensors",
    progress: ProgressCallback | None = None,
    resume: str | Path | bool | None = None,
    sample_dir: str | Path | None = None,
    source_vendor: str = "source",
    target_vendor: str = "target",
    extra_metadata: dict | None = None,
) -> TrainResult:
    """Train a Unet-GAN adapter (G_S: target -> source) and save the best one to ``out_path``.

    source_slices, target_slices: preprocessed slices, (N, H, W) float32 in
    [0, 1] (H, W divisible by 4; 192 x 192 in the pipeline). Unlabelled.
    lvunet: the trained source LV-Unet (frozen here; put in eval mode).
    out_path: the adapter file (safetensors: G_S weights; metadata:
    architecture, vendors, criterion). The full training state (both
    generators, both discriminators, optimisers, image pools, RNG) is kept in
    ``<out_path stem>_checkpoint/`` next to it, refreshed at every evaluation.
    progress: called as progress(iteration, total, losses) after each
    iteration; a tqdm bar is shown when it is None. It may raise to abort.
    resume: True or a checkpoint directory to continue a run (the architecture
    must match; ``config.iterations`` may be raised to train longer).
    sample_dir: where to write target | translated | reconstruction PNGs at
    each evaluation (None: no images).

    Every ``eval_every`` iterations and at the end, ``label_free_criterion`` is
    computed on a fixed held-out set of target slices translated by G_S; the
    G_S with the best score so far is written to ``out_path``.
    """
    config = config or AdapterConfig.fast()
    where = join(config.device)  # under torchrun: only rank 0 evaluates, writes the adapter and checkpoints
    out_path = Path(out_path)
    checkpoint_dir = default_checkpoint_dir(out_path)
    source = _as_slices(source_slices, "source_slices")
    target = _as_slices(target_slices, "target_slices")
    run = _AdapterTraining(source, target, lvunet, config, where)

    history: list[dict] = []
    start_iteration, best_score, best_iteration, identity_score = 0, -math.inf, 0, math.nan
    seconds_before = 0.0
    if resume:
        resume_dir = checkpoint_dir if resume is True else Path(resume)
        _check_resumable(resume_dir, config)
        state = _load_checkpoint(resume_dir, run.nets, run.optimizers, run.pools, run.device)
        run.rng.bit_generator.state = state["numpy_rng"]
        start_iteration, history = state["iteration"], state["history"]
        best_score, best_iteration = state["best_score"], state["best_iteration"]
        identity_score, seconds_before = state["identity_score"], state["seconds"]
    else:
        # The bar to beat: the LV-Unet on the target images as they are.
        with torch.no_grad():
            identity = label_free_criterion(run.lvunet, run.eval_target, run.reference_area)
        identity_score = identity["score"]
        history.append({"iteration": 0, "identity": True, **identity})
        if config.residual_output:
            # The untrained residual generator is the identity (histogram matching alone, when the adapter
            # does that): a candidate like any checkpoint. A run whose checkpoints never beat it by the
            # label-free criterion ships it, rather than a translation the criterion rates worse.
            best_score, best_iteration = identity_score, 0
            save_generator(run.nets["G_S"], out_path, source_vendor=source_vendor, target_vendor=target_vendor,
                           direction="target_to_source", iteration=0, identity=True,
                           criterion={k: v for k, v in identity.items()}, identity_criterion=identity_score,
                           training=config.to_dict(), **(extra_metadata or {}))
    if where.distributed:
        run.seed_samplers_for_rank(start_iteration)

    def checkpoint(iteration: int, seconds: float) -> None:
        _save_checkpoint(checkpoint_dir, run.nets, run.optimizers, run.pools, {
            "config": config.to_dict(), "iteration": iteration, "history": history,
            "best_score": best_score, "best_iteration": best_iteration, "identity_score": identity_score,
            "numpy_rng": run.rng.bit_generator.state, "seconds": seconds,
            "source_vendor": source_vendor, "target_vendor": target_vendor,
        })

    bar = None
    if progress is None:
        from tqdm import tqdm

        bar = tqdm(total=config.iterations, initial=start_iteration, desc="adapter", unit="it", disable=not where.is_main)
    elif not where.is_main:
        progress = lambda *args: None  # noqa: E731 (one report, from rank 0)
    started = time.monotonic()
    iteration = start_iteration
    running: dict[str, float] = {}
    try:
        while iteration < config.iterations:
            losses = run.step(iteration)
            iteration += 1
            # Exponential moving averages: single-batch GAN losses are too noisy to read.
            running = {k: v if k not in running else 0.95 * running[k] + 0.05 * v for k, v in losses.items()}
            if progress is not None:
                progress(iteration, config.iterations, losses)
            else:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
            elapsed = time.monotonic() - started
            out_of_time = config.time_limit_s is not None and elapsed >= config.time_limit_s
            _, out_of_time = mean_and_any(0.0, out_of_time, where)  # all ranks stop at the same iteration
            evaluation_due = iteration % config.eval_every == 0 or iteration == config.iterations or out_of_time
            if evaluation_due and where.is_main:
                result = run.evaluate(iteration, None if sample_dir is None else Path(sample_dir))
                result["losses"] = dict(running)
                history.append(result)
                if result["score"] > best_score:
                    best_score, best_iteration = result["score"], iteration
                    save_generator(run.nets["G_S"], out_path, source_vendor=source_vendor, target_vendor=target_vendor,
                                   direction="target_to_source", iteration=iteration, identity=False,
                                   criterion={k: v for k, v in result.items() if k != "losses"},
                                   identity_criterion=identity_score, training=config.to_dict(),
                                   **(extra_metadata or {}))
                checkpoint(iteration, seconds_before + time.monotonic() - started)
            if out_of_time:
                break
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(out_path, checkpoint_dir, iteration, best_iteration, best_score, identity_score, history,
                       seconds_before + time.monotonic() - started)
