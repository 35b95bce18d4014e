"""Least-squares GAN loss (Mao et al. 2017) and the CycleGAN image history pool.

LSGAN replaces the log loss by squared distances to the labels 1 (real) and
0 (fake); CycleGAN uses it because it trains more stably and gives useful
gradients to fakes that already fool the discriminator.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


def lsgan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean squared distance of the discriminator's score map to 1 (real) or 0 (fake)."""
    prediction = prediction.float()
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.mse_loss(prediction, target)


def generator_adversarial_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator wants its fakes scored as real."""
    return lsgan_loss(fake_scores, True)


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Halved, as in CycleGAN, so D learns more slowly than G."""
    return 0.5 * (lsgan_loss(real_scores, True) + lsgan_loss(fake_scores, False))


class ImagePool:
    """History of generated images (Shrivastava et al. 2017; CycleGAN's ImagePool).

    The discriminator sees, for each new fake, with probability 1/2 the fake
    itself and otherwise an older fake from the pool (which the new one then
    replaces), so it cannot chase only the generator's latest mode. While the
    pool is filling, every new fake is stored and returned. ``size == 0``
    disables the pool. Images are stored detached; the RNG is seeded, and its
    state and the stored images can be saved and restored to resume exactly.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif self.rng.random() < 0.5:
                index = self.rng.randrange(self.size)
                chosen.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)

    def __len__(self) -> int:
        return len(self.images)

    # --- checkpointing -----------------------------------------------------
    def state(self) -> tuple[dict, torch.Tensor | None]:
        """(JSON-able RNG state, stacked images or None) for a checkpoint."""
        version, internal, gauss = self.rng.getstate()
        stacked = torch.cat(self.images, 0) if self.images else None
        return {"size": self.size, "rng": [version, list(internal), gauss]}, stacked

    def load_state(self, state: dict, images: torch.Tensor | None) -> None:
        version, internal, gauss = state["rng"]
        self.size = state["size"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.images = [] if images is None else [image.unsqueeze(0).clone() for image in images]
