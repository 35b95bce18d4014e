"""Training on several processes started by torchrun: the process group, what each rank does, DDP.

`torchrun --nproc_per_node=N -m unetgan train-unet ...` (or train-adapter) starts N processes with
RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in their environment; `join()` connects them
(nccl on GPUs, gloo on CPUs). Every rank trains on its own share of each step's samples and
DistributedDataParallel averages the gradients, so all ranks hold the same weights; only rank 0
validates, writes checkpoints, logs and the final file. Started without torchrun, a run is one
process and nothing here changes it.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """The rank that writes (checkpoints, logs, weights) and validates."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, preference: str = "auto") -> torch.device:
        """This rank's GPU where there are GPUs (one per process on a node), else the CPU."""
        if preference in ("auto", "cuda", "gpu") and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


SINGLE = Ranks()


def join(preference: str = "auto") -> Ranks:
    """Join the process group torchrun describes in the environment (once; left at exit); one process
    without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_gpus = preference in ("auto", "cuda", "gpu") and torch.cuda.is_available()
        if use_gpus:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if use_gpus else "gloo")
        atexit.register(finish)
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def finish() -> None:
    """Leave the process group (at the end of a torchrun process; harmless otherwise).

    The ranks leave together: rank 0 still validates and writes after the last step while the others are
    done, and a gloo process group torn down in one rank while its peer is still connected has aborted
    that rank at exit ("terminate called without an active exception", about 1 run in 8 of the resume
    test, not reproduced in 15 runs of a stress loop); a barrier first is the usual remedy."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        dist.barrier()
    except RuntimeError:
        pass  # a peer already failed: torchrun reports it, there is nobody left to wait for
    finally:
        dist.destroy_process_group()


def parallel(module: torch.nn.Module, where: Ranks) -> torch.nn.Module:
    """The module wrapped in DistributedDataParallel under torchrun (gradients averaged over the ranks
    in backward), the module itself in a single process. Save and validate the unwrapped module.

    On GPUs its BatchNorm layers become SyncBatchNorm (in place: same parameters, same saved names), so
    the batch statistics are those of the whole step's batch, as in one process with batch N*B. On CPUs
    (gloo) torch has no SyncBatchNorm: each process normalises with its own batch's statistics."""
    if not where.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    on_gpu = next(module.parameters()).is_cuda
    if on_gpu:
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return DistributedDataParallel(module, device_ids=[where.local_rank] if on_gpu else None)


def shares(step: int, shards: int, where: Ranks) -> list[int]:
    """The sub-batches this rank draws at `step`: a step's batch is `shards` sub-batches, sub-batch s drawn
    from a generator seeded with (seed, step * shards + s); rank r takes s = r, r + world, ...

    So the samples of a step do not depend on how many processes share them: N ranks together see
    exactly what one process sees with the same batch and shards (with one shard, step k is drawn
    from (seed, k), as a single process always has)."""
    if shards % where.world:
        raise ValueError(f"{shards} sub-batches per step cannot be shared evenly by {where.world} processes")
    return [step * shards + s for s in range(where.rank, shards, where.world)]


def draw_share(draw, step: int, shards: int, where: Ranks) -> tuple[torch.Tensor, ...]:
    """This rank's share of step `step`: `draw(i)` (tensors of one sub-batch seeded with i) over its sub-batches,
    concatenated."""
    parts = [draw(index) for index in shares(step, shards, where)]
    return tuple(torch.cat(tensors) for tensors in zip(*parts))


def mean_and_any(value: float, flag: bool, where: Ranks) -> tuple[float, bool]:
    """The mean of `value` over the ranks, and whether any rank raised `flag` (so that all ranks stop at
    the same step: one rank leaving alone would leave the others waiting in the next all-reduce)."""
    if not where.distributed:
        return value, flag
    packed = torch.tensor([value, float(flag)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        packed = packed.cuda()
    dist.all_reduce(packed)
    return float(packed[0]) / where.world, bool(packed[1] > 0)
