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

Checkpoint selection without target labels: ``criterion.label_free_criterion``. The configuration
(`adapter_config.py`), the batches (`slice_sampler.py`), the checkpoints (`adapter_checkpoints.py`) and
the sample pictures (`adapter_samples.py`) are modules of their own; this one holds the networks and the loop.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..criterion import foreground_area, label_free_criterion, segment_probabilities
from ..distributed import SINGLE, Ranks, join, mean_and_any, parallel
from ..errors import InputError
from ..inference import context_slices
from ..losses.adversarial import ImagePool, discriminator_loss, generator_adversarial_loss
from ..losses.ssim import ssim, ssim_loss
from ..losses.unet_features import UnetFeatureLoss, to_unit_range
from ..networks.discriminator import PatchDiscriminator
from ..networks.generator import build_generator, save_generator
from .adapter_checkpoints import check_resumable, default_checkpoint_dir, load_checkpoint, save_checkpoint
from .adapter_config import AdapterConfig, TrainResult
from .adapter_samples import save_samples
from .slice_sampler import SliceSampler, as_slices, split_eval

__all__ = ["AdapterConfig", "TrainResult", "train_adapter"]

ProgressCallback = Callable[[int, int, dict], None]


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
        train_target, eval_target = split_eval(target, config.n_eval_slices, rng)
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
            labels = segment_probabilities(self.lvunet, translated[rows], flipped=False)[0].argmax(1)
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
    source = as_slices(source_slices, "source_slices")
    target = as_slices(target_slices, "target_slices")
    run = _AdapterTraining(source, target, lvunet, config, where)

    history: list[dict] = []
    start_iteration, best_score, best_iteration, identity_score = 0, -math.inf, 0, math.nan
    seconds_before = 0.0
    if resume:
        resume_dir = checkpoint_dir if resume is True else Path(resume)
        check_resumable(resume_dir, config)
        state = load_checkpoint(resume_dir, run.nets, run.optimizers, run.pools, run.device)
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
        save_checkpoint(checkpoint_dir, run.nets, run.optimizers, run.pools, {
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
