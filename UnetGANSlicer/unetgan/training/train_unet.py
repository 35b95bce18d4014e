"""LV-Unet training on labelled source-vendor slices.

The fast config trains on 112 x 112 crops centred near the heart (two in three;
the rest anywhere), about 3x fewer pixels than the full 192 x 192 slice; the
network is fully convolutional, so validation and inference use the full slice.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from tqdm import tqdm

from ..errors import InputError
from ..evaluation import dice_per_structure
from ..distributed import draw_share, join, mean_and_any, parallel
from ..io.manifest import LabelledVolume
from ..networks.lvunet import LVUnet, LVUnetConfig, widen_to_context
from ..weights import load_state, read_weights, write_weights
from .appearance import (TargetHistograms, match_histogram_of, quantile_function_of, random_intensity_network,
                         source_translator)
from .augment import augmentation
from .datasets import SliceSet, slices_of, split_subjects
from . import portable_state
from .protocol import low_resolution, off_centre_top, partial_volume, zoom
from .sick_hearts import training_emphasis
from .weight_average import WeightAverage


@dataclass
class UnetTrainConfig:
    method: str = "clean"  # clean | noisy | augment | robust
    widths: tuple[int, ...] = (16, 32, 64, 128)
    blocks: tuple[int, ...] = (1, 2, 3, 3)
    feature_taps: tuple[int, ...] = (7, 9)
    crop: int = 112
    batch: int = 8
    epochs: int = 20
    steps_per_epoch: int = 50
    lr: float = 2e-3
    weight_decay: float = 1e-5
    val_subjects: int = 10
    # bf16 autocast is off: this machine's CPU (AMD EPYC without avx512_bf16) emulates it,
    # measured 7x slower than fp32 per step; turn it on where the CPU has native bf16.
    bf16: bool = False
    channels_last: bool = False
    seed: int = 0
    # appearance augmentation on top of `method` (training/appearance.py): probability per sample
    gin: float = 0.0
    target_histograms: float = 0.0  # needs target quantile functions (unlabelled target volumes)
    # after all appearance changes, map the sample back onto its own crop's histogram, as inference maps
    # every other vendor's volume onto the source histogram (appearance.match_histogram_of)
    rematch: float = 0.0
    checkpoint_minutes: float = 3.0  # mid-epoch checkpoints; resume is exact from any of them
    # seeded sub-batches per process and step: N torchrun processes with batch B see exactly what one process
    # with batch N*B and shards N sees (distributed.shares)
    shards: int = 1
    device: str = "auto"  # this process's GPU where there is one, else the CPU
    # self-training: share of each batch drawn from pseudo-labelled target volumes (when given)
    pseudo_fraction: float = 0.5
    init_from: str | None = None  # start from these weights (fine-tuning) instead of a random init
    # through-plane context: the network also sees this many neighbour slices on either side as input channels
    # (a basal slice past the valve is told by its neighbours); from a one-slice network, widened at zero
    context_slices: int = 0
    schedule: str = "onecycle"  # onecycle (warm-up then cosine decay to ~0) | constant (lr throughout: for averaging)
    # weight averaging (training/weight_average.py): every N steps the weights join a running average, written
    # each epoch as average.safetensors with its own validation Dice; 0: off
    average_every: int = 0
    average_bn_batches: int = 40  # training batches that re-estimate the averaged network's BatchNorm statistics
    # distillation of test-time augmentation: the student learns, in one pass, the class probabilities a
    # teacher LV-Unet gives averaged over the four flips (tta.py), besides the labels; None: off
    distill_from: str | None = None
    distill_weight: float = 1.0  # of the KL divergence to the teacher's flip-averaged probabilities
    # hearts unlike the average (training/sick_hearts.py): share of each batch drawn from labelled phantom
    # dilated, hypertrophic and infarcted hearts (Philips profile, varied protocols), matched to the grey levels
    # of a random real training slice; and how much more often the unusual real training slices are drawn
    phantom_fraction: float = 0.0
    phantom_subjects: int = 36
    sick_emphasis: float = 0.0  # 0: every slice equally often; 2: unusual ones three times as often
    # protocol augmentation (training/protocol.py), probability per sample
    partial_volume: float = 0.0  # blend with a neighbour slice (thicker slices, the apex)
    zoom: float = 0.0  # the heart at another size on the grid (pixel spacing, wrong headers)
    zoom_range: tuple[float, float] = (0.75, 1.6)
    low_resolution: float = 0.0  # acquired pixels of 0.7-2.0 mm (x1-1.5 acquired over reconstructed)
    off_centre: float = 0.0  # the heart far from the crop's centre
    # image-level adaptation (CyCADA-style): share of the source samples shown in the target vendor's look, as the
    # cycle's other generator (source -> target, `source_translator`: a generator file) renders them; their labels
    # are unchanged, since the feature and SSIM losses keep that generator from moving anatomy
    translated_source: float = 0.0
    source_translator: str | None = None
    # a copy of every checkpoint in portable form (safetensors + JSON, training/portable_state.py) at most
    # every `export_minutes`, e.g. in a folder that is kept when the run folder is not; resumed from when the
    # run folder has no checkpoint
    export_dir: str | None = None
    export_minutes: float = 15.0

    @classmethod
    def fast(cls, **overrides) -> "UnetTrainConfig":
        return replace(cls(), **overrides)

    @classmethod
    def paper(cls, **overrides) -> "UnetTrainConfig":
        """The paper's scale: 192 x 192, batch 10, 35 epochs over all slices, Adam 1e-4; for GPUs."""
        return replace(cls(widths=(32, 64, 128, 256), crop=192, batch=10, epochs=35, steps_per_epoch=0,
                           lr=1e-4, bf16=False), **overrides)

    def network_config(self) -> LVUnetConfig:
        return LVUnetConfig(in_channels=1 + 2 * self.context_slices, widths=tuple(self.widths), blocks=tuple(self.blocks),
                            feature_taps=tuple(self.feature_taps))


def _crop_centres(labels: torch.Tensor) -> np.ndarray:
    """Centre (row, col) of the LV per slice, or (-1, -1) where the slice has none."""
    centres = np.full((labels.shape[0], 2), -1, dtype=np.int64)
    for i, slice_labels in enumerate(labels.numpy()):
        rows, cols = np.nonzero(slice_labels)
        if rows.size:
            centres[i] = int(rows.mean()), int(cols.mean())
    return centres


class CropSampler:
    """Random training crops: two in three near the heart (jittered), the others anywhere.

    Every draw of step k comes from generators seeded with (seed, k), so any step can be
    replayed exactly: resuming from a checkpoint needs no saved random state."""

    def __init__(self, data: SliceSet, config: UnetTrainConfig, target_histograms: TargetHistograms | None = None,
                 pseudo: SliceSet | None = None, phantom: SliceSet | None = None,
                 weights: np.ndarray | None = None, neighbours: list[np.ndarray] | None = None):
        self.size, self.batch, self.seed = config.crop, config.batch, config.seed
        self.config, self.target_histograms = config, target_histograms
        self.sets = [(data, _crop_centres(data.labels))]
        self.pseudo_set = self.phantom_set = None
        if pseudo is not None:
            self.pseudo_set = len(self.sets)
            self.sets.append((pseudo, _crop_centres(pseudo.labels)))
        if phantom is not None and config.phantom_fraction > 0:
            self.phantom_set = len(self.sets)
            self.sets.append((phantom, _crop_centres(phantom.labels)))
            # phantom grey levels mapped onto those of a random real training slice: a Philips look
            self.source_looks = TargetHistograms(np.stack([quantile_function_of(s) for s in data.images.numpy()]))
            self.phantom_quantiles = np.stack([quantile_function_of(s) for s in phantom.images.numpy()])
        self.weights = weights  # sampling probability per source slice, or None: uniform
        self.neighbours = neighbours  # per set: (N, 2) slice before / after (protocol.neighbour_indices)
        self.augment = augmentation(config.method, seed=config.seed)
        if config.target_histograms > 0 and target_histograms is None:
            raise ValueError("target_histograms > 0 needs the target volumes' quantile functions")
        self.source_quantiles = (np.stack([quantile_function_of(s) for s in data.images.numpy()])
                                 if target_histograms is not None else None)
        if config.translated_source > 0 and not config.source_translator:
            raise InputError("--translated-source needs --source-translator (a source -> target generator file)")
        self.translator = source_translator(config.source_translator) if config.translated_source > 0 else None

    def _crop(self, which: int, index: int, rng: np.random.Generator):
        data, centres = self.sets[which]
        full = data.images.shape[-1]
        limit = full - self.size
        centre = centres[index]
        if centre[0] >= 0 and rng.random() < 2 / 3:
            # drawn only when asked for, so the recipes without it keep their exact random stream
            if self.config.off_centre > 0 and rng.random() < self.config.off_centre:
                top = off_centre_top(centre, self.size, rng)
            else:
                top = centre - self.size // 2 + rng.integers(-self.size // 4, self.size // 4 + 1, size=2)
        else:
            top = rng.integers(0, limit + 1, size=2)
        r, c = np.clip(top, 0, limit)
        image = data.images[index, :, r : r + self.size, c : c + self.size]
        if self.config.partial_volume > 0 and self.neighbours is not None and rng.random() < self.config.partial_volume:
            neighbour = int(self.neighbours[which][index, int(rng.integers(0, 2))])
            image = partial_volume(image, data.images[neighbour, :, r : r + self.size, c : c + self.size], rng)
        return image, data.labels[index, r : r + self.size, c : c + self.size][None]

    def _draw(self, rng: np.random.Generator) -> tuple[int, int]:
        """Which set (source, pseudo-labels, phantom) and which slice of it."""
        # source labels in every batch: pseudo-labels alone would let the network drift on its own mistakes
        which = 0
        if self.pseudo_set is not None and rng.random() < self.config.pseudo_fraction:
            which = self.pseudo_set
        if self.phantom_set is not None and rng.random() < self.config.phantom_fraction:
            which = self.phantom_set
        if which == 0 and self.weights is not None:
            return which, int(rng.choice(self.weights.size, p=self.weights))
        return which, int(rng.integers(0, self.sets[which][0].images.shape[0]))

    def _protocol(self, image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator):
        """Zoom and acquired resolution (protocol.py), each drawn only when asked for."""
        if self.config.zoom > 0 and rng.random() < self.config.zoom:
            image, label = zoom(image, label, rng, tuple(self.config.zoom_range))
        if self.config.low_resolution > 0 and rng.random() < self.config.low_resolution:
            image = low_resolution(image, rng)
        return image, label

    def batch_tensors(self, step: int):
        rng = np.random.default_rng([self.seed, step])
        self.augment.set_random_state(seed=int(rng.integers(0, 2**31 - 1)))
        torch_rng = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        images, labels = [], []
        for _ in range(self.batch):
            which, index = self._draw(rng)
            image, label = self._crop(which, index, rng)
            if which == self.phantom_set:
                image = torch.from_numpy(self.source_looks.match(image.numpy(), self.phantom_quantiles[index], rng))
            image, label = self._protocol(image, label, rng)
            # drawn only when asked for, so the recipes without it keep their exact random stream
            translated = (which == 0 and self.translator is not None and rng.random() < self.config.translated_source)
            if translated:
                image = self.translator(image)
            original = image
            if which == 0 and not translated and rng.random() < self.config.target_histograms:
                image = torch.from_numpy(self.target_histograms.match(image.numpy(), self.source_quantiles[index], rng))
            sample = self.augment({"image": image.clone(), "label": label.clone()})
            image = torch.as_tensor(sample["image"]).float()
            if rng.random() < self.config.gin:
                image = random_intensity_network(image, torch_rng)
            # drawn only when asked for, so the recipes without it keep their exact random stream
            if self.config.rematch > 0 and rng.random() < self.config.rematch:
                image = match_histogram_of(image, original)
            images.append(image.clamp(0, 1.5))
            labels.append(torch.as_tensor(sample["label"]).long())
        return torch.stack(images), torch.stack(labels)


@torch.inference_mode()
def validate(model: LVUnet, volumes: list[LabelledVolume], bf16: bool, device="cpu") -> float:
    """Mean 3D Dice (blood pool and myocardium averaged) on the original grid."""
    from ..inference import segment

    scores = []
    for volume in volumes:
        result = segment(volume.image.array, volume.image.geometry.spacing, model, device, bf16=bf16)
        scores.append(dice_per_structure(result.labels, volume.labels, volume.valid)["mean"])
    return float(np.nanmean(scores))


def _check_no_leak(init_metadata: dict, val_ids: list[str], init_from: str) -> None:
    """Fine-tuning must not validate on subjects the starting weights were trained on: its validation
    subjects must be among those the starting weights held out (their `validation_subjects`). The split is
    drawn from the seed, so another seed than the first run's silently breaks this."""
    held_out = init_metadata.get("validation_subjects")
    if held_out is None:
        return  # weights from elsewhere: nothing recorded to check against
    seen = sorted(set(val_ids) - set(held_out))
    if seen:
        raise InputError(f"{Path(init_from).name} was trained on {len(seen)} of this run's validation subjects "
                         f"({', '.join(seen)}): its validation would be contaminated; use the seed and --val-subjects "
                         f"of the run that made it (it held out {', '.join(held_out)})")


def train_unet(volumes: list[LabelledVolume], config: UnetTrainConfig, out_dir: Path, resume: bool = True,
               progress: bool = True, log=print, stop_after_epoch: int | None = None,
               stop_after_step: int | None = None, time_limit_s: float | None = None,
               target_histograms: TargetHistograms | None = None,
               pseudo_volumes: list[LabelledVolume] | None = None) -> dict:
    """Train on the volumes' subjects minus `val_subjects` held out; save best and last weights in out_dir.

    Checkpoints (`training_state.pt`: weights, optimiser, schedule, step) are written at every epoch end
    and every `config.checkpoint_minutes`; a later call resumes exactly where the last one stopped
    (`stop_after_epoch`, `stop_after_step` and `time_limit_s` end a call early, for time-boxed sessions).
    `run_log.jsonl` records each checkpoint with the cumulative CPU and wall hours over all calls.
    `pseudo_volumes` (self-training) join the training set only, never the validation."""
    where = join(config.device)  # under torchrun: this process's rank; only rank 0 logs, validates and writes
    device = where.device(config.device)
    if not where.is_main:
        log, progress = (lambda *args, **kwargs: None), False
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    train_ids, val_ids = split_subjects([v.subject for v in volumes], config.val_subjects, config.seed)
    train_set = slices_of([v for v in volumes if v.subject in train_ids], context=config.context_slices)
    val_volumes = [v for v in volumes if v.subject in val_ids]
    log(f"{len(train_ids)} training subjects ({train_set.images.shape[0]} slices), {len(val_ids)} validation subjects: {', '.join(val_ids)}")

    model = LVUnet(config.network_config())
    if config.init_from:
        tensors, init_metadata = read_weights(Path(config.init_from))
        _check_no_leak(init_metadata, val_ids, config.init_from)
        tensors = widen_to_context(tensors, model.config.in_channels)
        load_state(model, tensors, Path(config.init_from).name).train()
        log(f"starting from the weights of {config.init_from}")
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = model.to(device)
    steps = config.steps_per_epoch or max(1, train_set.images.shape[0] // config.batch)
    total_steps = config.epochs * steps
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = _schedule(optimiser, config, total_steps)
    average = WeightAverage(model, config.average_every) if config.average_every else None
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    teacher = (_flip_averaged_teacher(config.distill_from, device, model.config.in_channels) if config.distill_from
               else None)
    run = TrainingRun(out_dir, log, writes=where.is_main)
    metadata = {"architecture": "LVUnet", "config": config.network_config().to_dict(), "train_config": _jsonable(config),
                "validation_subjects": val_ids}
    if resume and not run.state_file.exists() and config.export_dir and where.is_main \
            and (Path(config.export_dir) / portable_state.STATE_FILE).exists():
        step = portable_state.import_state(Path(config.export_dir), out_dir)
        log(f"checkpoint of step {step} taken from {config.export_dir}")
    if resume and run.state_file.exists():
        run.restore(model, optimiser, schedule, average)
        log(f"resuming after epoch {run.step // steps}, step {run.step} of {total_steps} "
            f"(best validation Dice {run.best:.4f}, {run.cpu_hours:.2f} CPU hours so far)")
    pseudo_set = slices_of(pseudo_volumes, context=config.context_slices) if pseudo_volumes else None
    if pseudo_set is not None:
        log(f"self-training: {len(pseudo_volumes)} pseudo-labelled volumes ({pseudo_set.images.shape[0]} slices), "
            f"{config.pseudo_fraction:.0%} of each batch")
    if config.batch % config.shards:
        raise ValueError(f"batch {config.batch} cannot be split into {config.shards} sub-batches")
    train_volumes = [v for v in volumes if v.subject in train_ids]
    phantom_set, weights, neighbours = training_emphasis(train_volumes, train_set, pseudo_volumes, config, log)
    sampler = CropSampler(train_set, replace(config, batch=config.batch // config.shards), target_histograms, pseudo_set,
                          phantom_set, weights, neighbours)

    exported = [time.time()]

    def checkpoint(final: bool = False) -> None:
        run.checkpoint(model, optimiser, schedule, average)
        if config.export_dir and where.is_main and (final or time.time() - exported[0] >= config.export_minutes * 60):
            portable_state.export_state(out_dir, Path(config.export_dir))
            exported[0] = time.time()
            log(f"checkpoint of step {run.step} copied to {config.export_dir}")

    def bn_batches():  # fixed draws, far from any training step's: the same statistics whenever they are measured
        return (sampler.batch_tensors(10**9 + i)[0] for i in range(config.average_bn_batches))

    last_step = total_steps
    if stop_after_epoch is not None:
        last_step = min(last_step, stop_after_epoch * steps)
    if stop_after_step is not None:
        last_step = min(last_step, stop_after_step)
    started_call = time.time()
    bar = tqdm(range(run.step, max(run.step, last_step)), desc="training", disable=not progress, leave=False)
    trained = parallel(model, where)  # DistributedDataParallel under torchrun: gradients averaged over the ranks
    model.train()
    for step in bar:
        images, labels = (t.to(device) for t in draw_share(sampler.batch_tensors, step, config.shards * where.world, where))
        if config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            logits = trained(images)
        loss = loss_fn(logits.float(), labels)
        if teacher is not None:
            with torch.no_grad():
                target = torch.softmax(teacher(images).float(), 1)
            loss = loss + config.distill_weight * F.kl_div(F.log_softmax(logits.float(), 1), target,
                                                           reduction="batchmean") / (images.shape[-1] * images.shape[-2])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        out_of_time = time_limit_s is not None and time.time() - started_call >= time_limit_s
        step_loss, out_of_time = mean_and_any(loss.item(), out_of_time, where)  # all ranks stop at the same step
        run.step, run.epoch_losses = step + 1, run.epoch_losses + [step_loss]
        if average is not None:
            average.after_step(model, run.step)
        bar.set_postfix(loss=f"{np.mean(run.epoch_losses[-20:]):.3f}", epoch=f"{step // steps + 1}/{config.epochs}")
        if run.step % steps == 0 and where.is_main:
            model.eval()
            epoch = run.step // steps
            dice = validate(model, val_volumes, config.bf16, device) if val_volumes else float("nan")
            run.end_epoch(epoch, dice)
            if average is not None and average.samples:
                averaged = average.model(bn_batches, device)
                average_dice = validate(averaged, val_volumes, config.bf16, device) if val_volumes else float("nan")
                run.history[-1].update(average_val_dice=average_dice, averaged_weights=average.samples)
                write_weights(averaged, out_dir / "average.safetensors",
                              {**metadata, "epoch": epoch, "step": run.step, "val_dice": average_dice,
                               "averaged_weights": average.samples, "average_every": config.average_every})
                log(f"  average of {average.samples} weights: validation Dice {average_dice:.4f}")
            log(f"epoch {epoch}/{config.epochs}: loss {run.history[-1]['loss']:.4f}, validation Dice {dice:.4f}, "
                f"{run.history[-1]['seconds']:.0f} s")
            write_weights(model, out_dir / "last.safetensors", {**metadata, "epoch": epoch, "step": run.step, "val_dice": dice})
            if dice > run.best:
                run.best = dice
                write_weights(model, out_dir / "best.safetensors", {**metadata, "epoch": epoch, "step": run.step, "val_dice": dice})
            checkpoint(final=run.step == last_step)
            model.train()
        elif out_of_time or run.due(config.checkpoint_minutes) or run.step == last_step:
            checkpoint(final=out_of_time or run.step == last_step)
        if out_of_time:
            log(f"time limit reached at step {run.step}; the next call resumes from here")
            break
    model.eval()
    return {"best_val_dice": run.best, "validation_subjects": val_ids, "history": run.history, "step": run.step}


class TrainingRun:
    """The resumable state of one training run in its folder, and its run log.

    One file (`training_state.pt`, written atomically) holds weights, optimiser, schedule and step,
    so a checkpoint is never half written; it is read back with `weights_only=True` (no pickle).
    `writes=False` (the ranks after the first under torchrun): the state is read, never written."""

    def __init__(self, out_dir: Path, log=print, writes: bool = True):
        self.out_dir, self.log, self.writes = Path(out_dir), log, writes
        self.state_file = self.out_dir / "training_state.pt"
        self.step, self.best, self.epoch_losses, self.history = 0, -1.0, [], []
        self.cpu_seconds, self.wall_seconds = 0.0, 0.0
        self._cpu_mark, self._wall_mark, self._last_save = time.process_time(), time.time(), time.time()
        self._epoch_started = time.time()

    @property
    def cpu_hours(self) -> float:
        return (self.cpu_seconds + time.process_time() - self._cpu_mark) / 3600

    def restore(self, model, optimiser, schedule, average: WeightAverage | None = None) -> None:
        state = torch.load(self.state_file, weights_only=True, map_location="cpu")  # written on any device
        model.load_state_dict(state["model"])
        if average is not None:
            if "average" not in state:
                raise InputError(f"{self.state_file} was written by a run without weight averaging: "
                                 "resume it without --average-every, or start again with --restart")
            average.load_state_dict(state["average"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        self.step, self.best = int(state["step"]), float(state["best"])
        self.epoch_losses = [float(v) for v in state["epoch_losses"]]
        self.cpu_seconds, self.wall_seconds = float(state["cpu_seconds"]), float(state["wall_seconds"])
        history_file = self.out_dir / "history.json"
        self.history = json.loads(history_file.read_text()) if history_file.exists() else []
        self._append_log("resume")

    def due(self, minutes: float) -> bool:
        return time.time() - self._last_save >= minutes * 60

    def end_epoch(self, epoch: int, dice: float) -> None:
        self.history.append({"epoch": epoch, "step": self.step, "loss": float(np.mean(self.epoch_losses)),
                             "val_dice": dice, "seconds": time.time() - self._epoch_started})
        self.epoch_losses, self._epoch_started = [], time.time()

    def _tick(self) -> None:
        now_cpu, now_wall = time.process_time(), time.time()
        self.cpu_seconds += now_cpu - self._cpu_mark
        self.wall_seconds += now_wall - self._wall_mark
        self._cpu_mark, self._wall_mark = now_cpu, now_wall

    def checkpoint(self, model, optimiser, schedule, average: WeightAverage | None = None) -> None:
        from ..outputs import atomic_path

        if not self.writes:
            return
        self._tick()
        state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                 "step": self.step, "best": self.best, "epoch_losses": self.epoch_losses,
                 "cpu_seconds": self.cpu_seconds, "wall_seconds": self.wall_seconds}
        if average is not None:
            state["average"] = average.state_dict()
        with atomic_path(self.state_file) as tmp:
            torch.save(state, tmp)
        with atomic_path(self.out_dir / "history.json") as tmp:
            tmp.write_text(json.dumps(self.history, indent=1))
        self._last_save = time.time()
        self._append_log("checkpoint")
        self.log(f"checkpoint at step {self.step}: {self.cpu_seconds / 3600:.3f} CPU hours, "
                 f"{self.wall_seconds / 3600:.3f} wall hours over all sessions")

    def _append_log(self, event: str) -> None:
        import datetime

        if not self.writes:
            return
        entry = {"time": datetime.datetime.now().isoformat(timespec="seconds"), "event": event, "step": self.step,
                 "recent_loss": float(np.mean(self.epoch_losses[-50:])) if self.epoch_losses else None,
                 "last_val_dice": self.history[-1]["val_dice"] if self.history else None,
                 "cpu_seconds": round(self.cpu_seconds, 2),
                 "cpu_hours": round(self.cpu_seconds / 3600, 4), "wall_hours": round(self.wall_seconds / 3600, 4)}
        with open(self.out_dir / "run_log.jsonl", "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def _flip_averaged_teacher(path: str, device, in_channels: int = 1) -> torch.nn.Module:
    """The teacher of TTA distillation: an LV-Unet from `path` with its logits averaged over the four flips,
    frozen, with its own BatchNorm statistics (eval mode). A one-slice teacher of a student that sees
    neighbour slices is widened at zero: it answers from the centre slice, as it always did."""
    from ..networks.lvunet import load_lvunet_file, widen_network, with_tta

    teacher = with_tta(widen_network(load_lvunet_file(path), in_channels), "flip4").to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _schedule(optimiser, config: UnetTrainConfig, total_steps: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=total_steps, pct_start=0.1)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimiser, factor=1.0, total_iters=0)
    raise InputError(f"unknown learning-rate schedule {config.schedule!r}: onecycle or constant")


def _jsonable(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
