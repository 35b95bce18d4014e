"""Weight averaging along a training run: stochastic weight averaging (Izmailov et al., 2018), dense as in
SWAD (Cha et al., 2021), which found that averaging many points of a constant-rate trajectory lands in a flatter
minimum that generalises better to unseen domains: here, unseen scanner vendors. And across runs: a "model
soup" (Wortsman et al., ICML 2022), the mean of networks fine-tuned from one start (`soup`, which made
lvunet-soup and the default segmenter, lvunet-soup2).

torch.optim.swa_utils does the averaging and re-estimates the BatchNorm statistics of the averaged weights
(those of the running model belong to other weights)."""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn


class WeightAverage:
    """Equal-weight running average of the model's weights, one sample every `every` steps."""

    def __init__(self, model: nn.Module, every: int):
        if every < 1:
            raise ValueError(f"average every {every} steps: must be at least 1")
        self.every = every
        self.averaged = AveragedModel(model)

    @property
    def samples(self) -> int:
        return int(self.averaged.n_averaged)

    def after_step(self, model: nn.Module, step: int) -> None:
        """`step`: the number of steps done so far in this run."""
        if step % self.every == 0:
            self.averaged.update_parameters(model)

    def model(self, batches: Callable[[], Iterable[torch.Tensor]], device="cpu") -> nn.Module:
        """A copy of the averaged network with BatchNorm statistics measured on `batches` (input tensors), in eval mode."""
        if not self.samples:
            raise RuntimeError("no weights averaged yet")
        module = copy.deepcopy(self.averaged.module)
        update_bn((b.to(device) for b in batches()), module)
        return module.eval()

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)


def soup(states: list[dict[str, torch.Tensor]], shares: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts of one architecture (shares normalised to sum to 1), BatchNorm
    statistics included; integer tensors (BatchNorm's batch counters) are the first network's. Sums in float64
    so that the order of the ingredients does not change the result beyond float32 rounding."""
    if len(states) != len(shares) or not states or min(shares) <= 0:
        raise ValueError("a soup needs one positive share per network")
    total = sum(shares)
    return {key: (sum(share / total * state[key].double() for share, state in zip(shares, states)).to(value.dtype)
                  if value.is_floating_point() else value) for key, value in states[0].items()}
