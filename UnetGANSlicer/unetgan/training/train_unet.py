"""LV-Unet training on labelled source-vendor slices.

The fast config trains on 112 x 112 crops centred near the heart (two in three;
the rest anywhere), about 3x fewer pixels than the full 192 x 192 slice; the
network is fully convolutional, so validation and inference use the full slice.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from tqdm import tqdm

from ..evaluation import dice_per_structure
from ..inference import keep_largest_component
from ..io.manifest import LabelledVolume
from ..networks.lvunet import LVUnet, LVUnetConfig
from ..preprocess import prepare_volume
from ..registry import read_weights, load_state, write_weights
from .augment import augmentation
from .datasets import SliceSet, slices_of, split_subjects


@dataclass
class UnetTrainConfig:
    method: str = "clean"  # clean | noisy | augment
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

    @classmethod
    def fast(cls, **overrides) -> "UnetTrainConfig":
        return replace(cls(), **overrides)

    @classmethod
    def paper(cls, **overrides) -> "UnetTrainConfig":
        """The paper's scale: 192 x 192, batch 10, 35 epochs over all slices, Adam 1e-4; for GPUs."""
        return replace(cls(widths=(32, 64, 128, 256), crop=192, batch=10, epochs=35, steps_per_epoch=0,
                           lr=1e-4, bf16=False), **overrides)

    def network_config(self) -> LVUnetConfig:
        return LVUnetConfig(widths=tuple(self.widths), blocks=tuple(self.blocks), feature_taps=tuple(self.feature_taps))


def _crop_centres(labels: torch.Tensor) -> np.ndarray:
    """Centre (row, col) of the LV per slice, or (-1, -1) where the slice has none."""
    centres = np.full((labels.shape[0], 2), -1, dtype=np.int64)
    for i, slice_labels in enumerate(labels.numpy()):
        rows, cols = np.nonzero(slice_labels)
        if rows.size:
            centres[i] = int(rows.mean()), int(cols.mean())
    return centres


class CropSampler:
    """Random training crops: two in three near the heart (jittered), the others anywhere."""

    def __init__(self, data: SliceSet, config: UnetTrainConfig, rng: np.random.Generator):
        self.data, self.size, self.rng, self.batch = data, config.crop, rng, config.batch
        self.centres = _crop_centres(data.labels)
        self.augment = augmentation(config.method, seed=config.seed)

    def _crop(self, index: int):
        full = self.data.images.shape[-1]
        limit = full - self.size
        centre = self.centres[index]
        if centre[0] >= 0 and self.rng.random() < 2 / 3:
            top = centre - self.size // 2 + self.rng.integers(-self.size // 4, self.size // 4 + 1, size=2)
        else:
            top = self.rng.integers(0, limit + 1, size=2)
        r, c = np.clip(top, 0, limit)
        return (self.data.images[index, :, r : r + self.size, c : c + self.size],
                self.data.labels[index, r : r + self.size, c : c + self.size][None])

    def batch_tensors(self):
        images, labels = [], []
        for index in self.rng.integers(0, self.data.images.shape[0], size=self.batch):
            image, label = self._crop(int(index))
            sample = self.augment({"image": image.clone(), "label": label.clone()})
            images.append(torch.as_tensor(sample["image"]).float().clamp(0, 1.5))
            labels.append(torch.as_tensor(sample["label"]).long())
        return torch.stack(images), torch.stack(labels)


@torch.inference_mode()
def validate(model: LVUnet, volumes: list[LabelledVolume], bf16: bool) -> float:
    """Mean 3D Dice (blood pool and myocardium averaged) on the original grid."""
    from ..inference import segment

    scores = []
    for volume in volumes:
        result = segment(volume.image.array, volume.image.geometry.spacing, model, "cpu", bf16=bf16)
        scores.append(dice_per_structure(result.labels, volume.labels, volume.valid)["mean"])
    return float(np.nanmean(scores))


def train_unet(volumes: list[LabelledVolume], config: UnetTrainConfig, out_dir: Path, resume: bool = True,
               progress: bool = True, log=print, stop_after_epoch: int | None = None) -> dict:
    """Train on the volumes' subjects minus `val_subjects` held out; save best and last weights in out_dir.

    `stop_after_epoch` ends this run early (time-boxed sessions); a later call resumes from there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_ids, val_ids = split_subjects([v.subject for v in volumes], config.val_subjects, config.seed)
    train_set = slices_of([v for v in volumes if v.subject in train_ids])
    val_volumes = [v for v in volumes if v.subject in val_ids]
    log(f"{len(train_ids)} training subjects ({train_set.images.shape[0]} slices), {len(val_ids)} validation subjects: {', '.join(val_ids)}")

    model = LVUnet(config.network_config())
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = config.steps_per_epoch or max(1, train_set.images.shape[0] // config.batch)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.epochs * steps, pct_start=0.1)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    history, start_epoch, best = [], 0, -1.0
    state_file = out_dir / "training_state.pt"
    metadata = {"architecture": "LVUnet", "config": config.network_config().to_dict(), "train_config": _jsonable(config),
                "validation_subjects": val_ids}
    if resume and state_file.exists() and (out_dir / "last.safetensors").exists():
        tensors, _ = read_weights(out_dir / "last.safetensors")
        load_state(model, tensors, "last.safetensors").train()
        state = torch.load(state_file, weights_only=True)
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best = int(state["epoch"]), float(state["best"])
        history = json.loads((out_dir / "history.json").read_text())
        rng = np.random.default_rng([config.seed, start_epoch])
        torch.manual_seed(config.seed + start_epoch)
        log(f"resuming after epoch {start_epoch} (best validation Dice {best:.4f})")
    sampler = CropSampler(train_set, config, rng)

    for epoch in range(start_epoch, min(config.epochs, stop_after_epoch or config.epochs)):
        model.train()
        started, losses = time.time(), []
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
        for _ in bar:
            images, labels = sampler.batch_tensors()
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(images)
            loss = loss_fn(logits.float(), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        model.eval()
        dice = validate(model, val_volumes, config.bf16) if val_volumes else float("nan")
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_dice": dice, "seconds": time.time() - started})
        log(f"epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f}, validation Dice {dice:.4f}, {time.time() - started:.0f} s")
        write_weights(model, out_dir / "last.safetensors", {**metadata, "epoch": epoch + 1, "val_dice": dice})
        if dice > best:
            best = dice
            write_weights(model, out_dir / "best.safetensors", {**metadata, "epoch": epoch + 1, "val_dice": dice})
        torch.save({"optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(), "epoch": epoch + 1, "best": best}, state_file)
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
    return {"best_val_dice": best, "validation_subjects": val_ids, "history": history}


def _jsonable(config) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
