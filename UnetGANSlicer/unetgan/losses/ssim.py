"""SSIM with separate luminance / contrast / structure exponents.

Hand-written on purpose: no PyTorch library exposes the three exponents
(MONAI, pytorch-msssim, piq, kornia and torchmetrics all fix
alpha = beta = gamma = 1), and Unet-GAN needs alpha = beta = 0.1, gamma = 1
so that a vendor's brightness/contrast change costs little while a change of
anatomy (structure) costs a lot.

    SSIM = l^alpha * c^beta * s^gamma
    l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    c = (2 sigma_x sigma_y + C2) / (sigma_x^2 + sigma_y^2 + C2)
    s = (sigma_xy + C3) / (sigma_x sigma_y + C3)
    C1 = (0.01 L)^2, C2 = (0.03 L)^2, C3 = C2 / 2

Local statistics use an 11x11 Gaussian window (sigma 1.5) without padding
("valid"), the convention of Wang et al. 2004 and of MONAI's SSIMMetric; with
all exponents 1 the result equals MONAI's to float precision.

Numerical safety (the loss is trained through, so no NaN/inf gradients):
- variances are clamped at 0 (E[x^2] - E[x]^2 can round below 0) and
  sigma_x sigma_y = sqrt(var_x var_y + eps), whose gradient stays finite at
  flat patches, where sqrt itself has an infinite slope;
- a base is raised to a power only when its exponent is not 1, and is then
  clamped to >= eps first: l and c are positive for images in [0, 1], but s
  is negative for anti-correlated patches, and a fractional power of a
  negative number is NaN. (Anti-correlated patches then get the floor
  value eps^gamma and no gradient through s; with gamma = 1, the paper's
  value, s is used as is.)
- computed in float32 with autocast off, since C1 ~ 1e-4 is lost in bf16.

Inputs are (N, C, H, W) with intensities in [0, data_range]; H, W >= 11.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-8


def gaussian_window(size: int = 11, sigma: float = 1.5, channels: int = 1) -> torch.Tensor:
    """Normalised 2D Gaussian as a depthwise conv kernel (channels, 1, size, size)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_components(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maps of luminance l, contrast c and structure s, each (N, C, H-10, W-10)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two (N, C, H, W) tensors of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"images must be at least {window_size} pixels on each side, got {tuple(x.shape[-2:])}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        channels = x.shape[1]
        window = gaussian_window(window_size, sigma, channels).to(x.device)

        def local_mean(t: torch.Tensor) -> torch.Tensor:
            return F.conv2d(t, window, groups=channels)

        c1 = (k1 * data_range) ** 2
        c2 = (k2 * data_range) ** 2
        c3 = c2 / 2

        mu_x, mu_y = local_mean(x), local_mean(y)
        var_x = (local_mean(x * x) - mu_x * mu_x).clamp_min(0)
        var_y = (local_mean(y * y) - mu_y * mu_y).clamp_min(0)
        cov_xy = local_mean(x * y) - mu_x * mu_y
        sigma_x_sigma_y = torch.sqrt(var_x * var_y + _EPS**2)

        luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
        # var_x + var_y (not the square of the eps-protected sigmas) so that
        # c * s reduces exactly to the usual (2 cov + C2) / (var_x + var_y + C2).
        contrast = (2 * sigma_x_sigma_y + c2) / (var_x + var_y + c2)
        structure = (cov_xy + c3) / (sigma_x_sigma_y + c3)
    return luminance, contrast, structure


def _power(base: torch.Tensor, exponent: float) -> torch.Tensor:
    if exponent == 1:
        return base
    if exponent == 0:
        return torch.ones_like(base)
    return base.clamp_min(_EPS) ** exponent


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 1.0,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Per-pixel SSIM l^alpha c^beta s^gamma, (N, C, H-10, W-10)."""
    luminance, contrast, structure = ssim_components(x, y, data_range)
    return _power(luminance, alpha) * _power(contrast, beta) * _power(structure, gamma)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
    gamma: float = 1.0,
    data_range: float = 1.0,
) -> torch.Tensor:
    """SSIM of each image (mean of the map over channels and pixels), shape (N,)."""
    return ssim_map(x, y, alpha, beta, gamma, data_range).flatten(1).mean(1)


def ssim_loss(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 0.1,
    beta: float = 0.1,
    gamma: float = 1.0,
    data_range: float = 1.0,
) -> torch.Tensor:
    """L_SSIM = E[(1 - SSIM(x, y))^2], the expectation over images (METHOD.md).

    SSIM is taken per image (mean of the map), then squared per image: the
    square makes a badly reconstructed image weigh more than several slightly
    imperfect ones.
    """
    return ((1 - ssim(x, y, alpha, beta, gamma, data_range)) ** 2).mean()


class SSIMLoss(nn.Module):
    """``ssim_loss`` with fixed exponents; defaults are the paper's (0.1, 0.1, 1)."""

    def __init__(self, alpha: float = 0.1, beta: float = 0.1, gamma: float = 1.0, data_range: float = 1.0):
        super().__init__()
        self.alpha, self.beta, self.gamma, self.data_range = alpha, beta, gamma, data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim_loss(x, y, self.alpha, self.beta, self.gamma, self.data_range)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, data_range={self.data_range}"
