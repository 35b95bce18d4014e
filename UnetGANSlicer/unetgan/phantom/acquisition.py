"""What the scanner does to the ideal signal: fields, coils, k-space sampling, noise, storage.

Each step is one vendor/protocol difference seen in real cines: receive-coil shading
(how much of it the vendor's intensity normalisation leaves), B0 and B1 inhomogeneity
(bSSFP banding and contrast drift), the acquired k-space extent and its apodisation
filter (resolution, ringing, noise texture), thermal noise (Rician after the magnitude),
and the scaling, rounding and bit depth of the stored integers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage, signal as scipy_signal

from .subjects import Anatomy

LUNG_SUSCEPTIBILITY_PPM = 0.6  # field offset near lung-tissue interfaces after shimming, order of magnitude
COIL_LOOP_RADIUS_MM = 70.0


# ---------------------------------------------------------------- fields

@dataclass(frozen=True)
class CoilArray:
    """Receive elements (heart frame, mm): rows of x, y, w."""

    elements: np.ndarray


def draw_coil_array(anatomy: Anatomy, rng: np.random.Generator) -> CoilArray:
    """An anterior and a posterior row of four elements on the body surface, placed as a
    technologist would: roughly over the heart, with a few centimetres of play."""
    body = anatomy.body
    anterior = body.centre_mm[1] - body.semi_axes_mm[1] - 10.0
    posterior = body.centre_mm[1] + body.semi_axes_mm[1] + 10.0
    w_centre = anatomy.heart.length_mm / 2.0 + rng.uniform(-20.0, 20.0)
    shift = rng.uniform(-30.0, 30.0)
    xs = np.array([-1.5, -0.5, 0.5, 1.5]) * 80.0
    elements = [(shift + x + rng.normal(0, 8.0), y + rng.normal(0, 5.0), w_centre + rng.normal(0, 10.0))
                for y in (anterior, posterior) for x in xs]
    return CoilArray(np.array(elements))


def coil_shading(coils: CoilArray, x: np.ndarray, y: np.ndarray, w: float, strength: float,
                 reference: tuple[float, float, float]) -> np.ndarray:
    """Multiplicative receive field: root-sum-of-squares of loop sensitivities (on-axis
    Biot-Savart fall-off), raised to `strength` (0: perfectly normalised, 1: raw array),
    and equal to 1 at `reference` (the heart), so that the profile's SNR holds there."""

    def sum_of_squares(px, py, pw):
        total = 0.0
        for ex, ey, ew in coils.elements:
            distance2 = (px - ex) ** 2 + (py - ey) ** 2 + (pw - ew) ** 2
            total = total + (COIL_LOOP_RADIUS_MM ** 2 / (COIL_LOOP_RADIUS_MM ** 2 + distance2)) ** 3
        return np.sqrt(total)

    field = sum_of_squares(x, y, w) / sum_of_squares(*reference)
    return (field ** strength).astype(np.float32)


def _smooth_polynomial(rng: np.random.Generator, x, y, w, scale_mm: float = 150.0):
    """A random low-order (shim residual-like) field with |value| <= 1 within +-scale_mm."""
    coefficients = rng.normal(0.0, 1.0, 6)
    coefficients /= np.abs(coefficients).sum()
    u, v, t = x / scale_mm, y / scale_mm, w / scale_mm
    return (coefficients[0] * u + coefficients[1] * v + coefficients[2] * u * u
            + coefficients[3] * v * v + coefficients[4] * u * v + coefficients[5] * t)


def off_resonance_hz(profile: dict, seed_sequence: np.random.SeedSequence, x, y, w,
                     lung_fraction: np.ndarray, pixel_mm: float, reference_index: tuple[int, int]) -> np.ndarray:
    """B0 offset map (Hz): shim residual of the profile's size plus the susceptibility
    field around the lungs (scales with the field strength, as susceptibility does)."""
    rng = np.random.default_rng(seed_sequence)  # the same shim for every slice of a scan
    residual = profile["b0_inhomogeneity_hz"] * _smooth_polynomial(rng, x, y, w)
    larmor_hz = 42.577e6 * profile["field_strength_T"]
    near_lung = ndimage.gaussian_filter(lung_fraction.astype(np.float32), sigma=12.0 / pixel_mm, mode="nearest")
    near_lung -= near_lung[reference_index]  # the scanner's frequency adjustment is centred on the heart
    return (residual + LUNG_SUSCEPTIBILITY_PPM * 1e-6 * larmor_hz * near_lung).astype(np.float32)


def flip_angle_scale(profile: dict, seed_sequence: np.random.SeedSequence, x, y, w) -> np.ndarray:
    """Transmit (B1+) field as a flip-angle factor: 1 +- the profile's inhomogeneity."""
    rng = np.random.default_rng(seed_sequence)
    return (1.0 + profile["b1_inhomogeneity"] * _smooth_polynomial(rng, x, y, w, scale_mm=180.0)).astype(np.float32)


# ---------------------------------------------------------------- k-space

def kspace_window(shape: tuple[int, int], spec: dict) -> np.ndarray:
    """Apodisation over the acquired (centred) k-space, shape (rows, cols)."""
    kind = spec["type"]
    if kind == "none":
        return np.ones(shape, dtype=np.float32)
    if kind in ("hamming", "tukey"):
        if kind == "hamming":
            rows, cols = (scipy_signal.windows.hamming(n, sym=False) for n in shape)
            strength = spec["strength"]
            rows, cols = (1.0 - strength) + strength * rows, (1.0 - strength) + strength * cols
        else:
            rows, cols = (scipy_signal.windows.tukey(n, alpha=spec["alpha"], sym=False) for n in shape)
        return np.outer(rows, cols).astype(np.float32)
    if kind == "fermi":  # radially symmetric, as vendors apply it
        ky = (np.arange(shape[0]) - shape[0] // 2) / (shape[0] / 2.0)
        kx = (np.arange(shape[1]) - shape[1] // 2) / (shape[1] / 2.0)
        radius = np.hypot(ky[:, None], kx[None, :])
        return (1.0 / (1.0 + np.exp((radius - spec["radius"]) / spec["width"]))).astype(np.float32)
    raise ValueError(f"unknown k-space filter {kind!r}")


def _centred_indices(size: int, inner: int) -> np.ndarray:
    """Where the `inner` lowest frequencies, in centred order (-inner//2 ...), sit in an
    unshifted FFT array of `size` (so no fftshift of whole arrays is needed)."""
    return (np.arange(inner) - inner // 2) % size


def acquire(frames: np.ndarray, acquired_shape: tuple[int, int], recon_shape: tuple[int, int],
            window: np.ndarray, noise_sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sample the central k-space of high-resolution complex frames (..., H, W), add white
    complex noise, apodise, zero-fill to the recon matrix and return the magnitude.

    `noise_sigma` is the standard deviation of each real channel in the reconstructed image;
    the k-space noise is set from it and the window, so the window shapes the noise texture
    but not its level.
    """
    spectrum = scipy.fft.fft2(frames, norm="forward", workers=1)
    rows = _centred_indices(spectrum.shape[-2], acquired_shape[0])[:, None]
    cols = _centred_indices(spectrum.shape[-1], acquired_shape[1])[None, :]
    sampled = spectrum[..., rows, cols]
    k_sigma = noise_sigma / np.sqrt(np.sum(window.astype(np.float64) ** 2))
    noise = rng.standard_normal((2,) + sampled.shape, dtype=np.float32) * np.float32(k_sigma)
    sampled = (sampled + (noise[0] + 1j * noise[1])) * window
    padded = np.zeros(frames.shape[:-2] + tuple(recon_shape), dtype=np.complex64)
    padded[..., _centred_indices(recon_shape[0], acquired_shape[0])[:, None],
           _centred_indices(recon_shape[1], acquired_shape[1])[None, :]] = sampled
    image = scipy.fft.ifft2(padded, norm="forward", workers=1)
    return np.abs(image).astype(np.float32)


# ---------------------------------------------------------------- storage

def circular_fov_mask(shape: tuple[int, int]) -> np.ndarray:
    """True inside the circle inscribed in the image (some consoles blank the corners)."""
    rows = (np.arange(shape[0]) - (shape[0] - 1) / 2.0) / (shape[0] / 2.0)
    cols = (np.arange(shape[1]) - (shape[1] - 1) / 2.0) / (shape[1] / 2.0)
    return np.hypot(rows[:, None], cols[None, :]) <= 1.0


def store(magnitude: np.ndarray, profile: dict, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Scale to the stored integer range, round and clip; returns (image, gain used).

    The gain is the profile's intensity scale times a per-scan random factor (scanners
    rescale every series), lowered if needed so the brightest 0.1% stays below 80% of the
    bit range, as automatic scaling does.
    """
    gain = profile["intensity_scale"] * float(np.exp(rng.normal(0.0, profile["intensity_scale_jitter"])))
    top = (2 ** profile["bits_stored"]) - 1
    bright = float(np.percentile(magnitude, 99.9)) * gain
    if bright > 0.8 * top:
        gain *= 0.8 * top / bright
    stored = np.clip(np.rint(magnitude * gain), 0, top).astype(np.float32)
    return stored, gain
