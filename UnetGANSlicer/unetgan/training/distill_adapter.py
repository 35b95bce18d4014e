"""A smaller adapter that gives the trained one's translations (knowledge distillation).

The shipped generators (16 filters, 6 residual blocks) spend most of a click's translation time; a
student with fewer filters and blocks is trained to reproduce the teacher's output image for image, on
the images the teacher was trained on (both vendors, through the teacher's own histogram matching), with
an L1 loss. No GAN, no labels: the teacher is the target, so the student inherits the teacher's
translation and what it was checked for (the label-free criterion, the vendor classifier, the Dice on dev
data are measured again on the student before it is shipped; docs/models.md).

Resumable: a checkpoint (student, optimiser, step) is written every few minutes and at the end; each
step's batch comes from a generator seeded with (seed, step), so a resumed run is the uninterrupted one.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..networks.generator import ResnetGenerator, save_generator

# teacher metadata that describes the teacher's own training, not what the student does
_TEACHER_ONLY = ("training", "criterion", "iteration", "identity", "identity_criterion", "config")


@dataclass(frozen=True)
class DistillConfig:
    filters: int = 8
    n_blocks: int = 4
    edge_kernel: int = 3  # the first and last convolutions' kernel (the teacher's 7 took 40% of the time)
    steps: int = 3000
    batch: int = 8
    lr: float = 2e-3
    warmup: int = 100
    held_out_fraction: float = 0.05  # slices kept out of training to measure how closely the student follows
    checkpoint_minutes: float = 3.0
    seed: int = 0


@torch.no_grad()
def generator_outputs(generator: ResnetGenerator, slices: torch.Tensor, batch: int = 16) -> torch.Tensor:
    generator.eval()
    return torch.cat([generator(slices[i : i + batch]) for i in range(0, len(slices), batch)])


def _batch_indices(n: int, config: DistillConfig, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    return torch.randint(0, n, (config.batch,), generator=generator)


def _learning_rate(config: DistillConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return float(config.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, progress))))  # a float: the checkpoint loads with weights_only


def fidelity(student: ResnetGenerator, slices: torch.Tensor, wanted: torch.Tensor) -> dict:
    """How closely the student follows the teacher on slices: mean |student - teacher| against the teacher's
    own mean change |teacher - input| (both in the networks' [-1, 1] units), and the change reproduced."""
    got = generator_outputs(student, slices)
    error, change = float((got - wanted).abs().mean()), float((wanted - slices).abs().mean())
    return {"l1_to_teacher": error, "teacher_change_l1": change,
            "change_reproduced": 1.0 - error / change if change > 0 else float("nan")}


def distill_adapter(teacher: ResnetGenerator, slices: torch.Tensor, config: DistillConfig, out_path: Path,
                    teacher_name: str, teacher_sha256: str, log: Callable[[str], None] = print,
                    stop_after_step: int | None = None) -> dict:
    """Train a student on `slices` ((N, 1, H, W) in [-1, 1], as the teacher sees them) and save it to
    out_path with the teacher's inference metadata (histogram matching, segmenter, vendors). Returns the
    student's fidelity on the held-out slices."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state_path = out_path.with_name(out_path.stem + "_distill_state.pt")
    order = np.random.default_rng(config.seed).permutation(len(slices))
    n_held = max(1, int(round(config.held_out_fraction * len(slices))))
    held, train = torch.from_numpy(np.sort(order[:n_held])), torch.from_numpy(np.sort(order[n_held:]))
    log(f"teacher outputs for {len(slices)} slices ({n_held} held out)")
    wanted = generator_outputs(teacher, slices)

    torch.manual_seed(config.seed)
    student = ResnetGenerator(teacher.config.in_channels, teacher.config.out_channels, config.filters,
                              config.n_blocks, teacher.config.upsample_mode, residual_output=True,
                              edge_kernel=config.edge_kernel)
    optimiser = torch.optim.Adam(student.parameters(), lr=config.lr)
    step, cpu_seconds = 0, 0.0
    if state_path.is_file():
        saved = torch.load(state_path, weights_only=True)
        if saved["config"] != asdict(config):
            raise ValueError(f"cannot resume {state_path.name}: it was made with {saved['config']}, not {asdict(config)}")
        student.load_state_dict(saved["student"])
        optimiser.load_state_dict(saved["optimiser"])
        step, cpu_seconds = int(saved["step"]), float(saved["cpu_seconds"])
        log(f"resuming at step {step} of {config.steps}")

    def checkpoint():
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({"student": student.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                    "cpu_seconds": cpu_seconds, "config": asdict(config)}, tmp)
        tmp.replace(state_path)

    last_checkpoint, cpu_start = time.monotonic(), time.process_time()
    student.train()
    while step < config.steps and (stop_after_step is None or step < stop_after_step):
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(config, step)
        pick = train[_batch_indices(len(train), config, step)]
        loss = F.l1_loss(student(slices[pick]), wanted[pick])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        if step % 100 == 0:
            log(f"step {step}/{config.steps} loss {loss.item():.4f}")
        if time.monotonic() - last_checkpoint > config.checkpoint_minutes * 60:
            cpu_seconds += time.process_time() - cpu_start
            cpu_start, last_checkpoint = time.process_time(), time.monotonic()
            checkpoint()
    cpu_seconds += time.process_time() - cpu_start
    checkpoint()
    if step < config.steps:
        return {"step": step, "finished": False}
    result = fidelity(student, slices[held], wanted[held])
    metadata = {k: v for k, v in (teacher.metadata or {}).items() if k not in _TEACHER_ONLY}
    metadata.update(identity=False, distilled_from={"name": teacher_name, "sha256": teacher_sha256,
                                                    "config": asdict(teacher.config)},
                    training={"distillation": asdict(config), "cpu_hours": round(cpu_seconds / 3600, 3)},
                    fidelity=result)
    sha = save_generator(student.eval(), out_path, **metadata)
    log(f"student written to {out_path} (sha256 {sha}); held-out fidelity {result}")
    return {"step": step, "finished": True, "sha256": sha, **result}
