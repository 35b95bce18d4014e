"""One simulated short-axis cine study: anatomy -> bSSFP signal -> scanner -> stored image.

Per slice, the static anatomy, its field maps and the tissue signals are computed once;
per phase only the heart is repainted (inside a box around it), with the slice thickness
sampled at a few depths for through-plane partial volume. The frames are simulated on a
grid finer than the acquisition and then sampled in k-space (see acquisition.acquire).
Labels are painted from the same shapes at the reconstruction grid, at the same depths.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft

from . import acquisition, anatomy as anat
from .profiles import derived_geometry, load_profile, with_overrides
from .signal import draw_tissue_variation, signal_maps, tissue_signal

THROUGH_PLANE_SAMPLES = 3  # depths per slice thickness for partial volume along the axis
# Direction from base to apex in patient LPS coordinates (towards left, anterior, inferior).
LONG_AXIS_LPS = np.array([0.6, -0.55, -0.58])


@dataclass
class Study:
    image: np.ndarray  # (T, Z, Y, X) float32, scanner units (integers as stored), >= 0
    labels: np.ndarray  # (T, Z, Y, X) uint8: 0 background, 1 LV blood pool, 2 LV myocardium, 3 RV
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]  # LPS mm of the first voxel
    direction: tuple[float, ...]  # 3x3 row-major, columns are the x, y, z axis directions
    ed_frame: int
    es_frame: int
    trigger_times_ms: list[float]
    vendor: str
    meta: dict = field(default_factory=dict)


def _rotation(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


class _Grid:
    """Pixel centres of an image grid covering the field of view, in image-frame and heart-frame mm.

    The first pixel sits at -FOV/2, which is what the DFT implies, so that grids of
    different sizes over the same field of view are consistent through k-space.
    """

    def __init__(self, shape: tuple[int, int], fov_mm: tuple[float, float], anatomy: anat.Anatomy):
        self.shape = tuple(int(n) for n in shape)
        self.pixel = (fov_mm[0] / shape[0], fov_mm[1] / shape[1])
        self.v = (-fov_mm[0] / 2.0 + np.arange(shape[0]) * self.pixel[0]).astype(np.float32)
        self.u = (-fov_mm[1] / 2.0 + np.arange(shape[1]) * self.pixel[1]).astype(np.float32)
        self.rotation = _rotation(anatomy.rotation_deg)
        self.offset = np.asarray(anatomy.offset_mm, dtype=np.float64)
        self.x, self.y = self.to_heart(self.u[None, :], self.v[:, None])

    def to_heart(self, u, v):
        """Image-frame (u right, v down) to heart-frame coordinates."""
        du, dv = u - self.offset[0], v - self.offset[1]
        r = self.rotation  # image = offset + R @ heart, so heart = R.T @ (image - offset)
        return ((r[0, 0] * du + r[1, 0] * dv).astype(np.float32), (r[0, 1] * du + r[1, 1] * dv).astype(np.float32))

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Heart-frame point to fractional (row, col)."""
        u, v = self.offset + self.rotation @ np.array([x, y])
        return ((v - self.v[0]) / self.pixel[0], (u - self.u[0]) / self.pixel[1])

    def box(self, centres, radius_mm: float) -> tuple[slice, slice]:
        """Pixel box containing discs of a radius around heart-frame centres."""
        pixels = np.array([self.to_pixel(*c) for c in centres])
        pad = (radius_mm / self.pixel[0], radius_mm / self.pixel[1])
        lo = np.floor(pixels.min(axis=0) - pad).astype(int)
        hi = np.ceil(pixels.max(axis=0) + pad).astype(int) + 1
        return (slice(max(lo[0], 0), min(hi[0], self.shape[0])), slice(max(lo[1], 0), min(hi[1], self.shape[1])))


def _simulation_shape(profile: dict) -> tuple[int, int]:
    """At least twice the acquired matrix (and no smaller than the recon), FFT-friendly."""
    return tuple(scipy.fft.next_fast_len(max(r, 2 * a)) for a, r in zip(profile["matrix"], profile["recon_matrix"]))


def _slice_orientation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and normal (base -> apex) directions of a short-axis stack in LPS."""
    normal = LONG_AXIS_LPS + rng.normal(0.0, 0.1, 3)
    normal /= np.linalg.norm(normal)
    down = np.array([0.0, 1.0, 0.0]) - normal[1] * normal  # posterior, projected in the plane
    down /= np.linalg.norm(down)
    right = np.cross(down, normal)
    return right, down, normal


def _scan_seed(seed: int, profile: dict) -> np.random.SeedSequence:
    """Randomness of the scan (noise, coils, gain, fields): differs by protocol, fixed by seed."""
    digest = zlib.crc32(json.dumps(profile, sort_keys=True).encode())
    return np.random.SeedSequence([int(seed), digest])


def make_study(vendor: str | Path | dict = "Philips", seed: int = 0, n_phases: int | None = None,
               n_slices: int | None = None, matrix: int | tuple[int, int] | None = None) -> Study:
    """Simulate one subject's short-axis bSSFP cine on one scanner.

    `vendor` is a vendor name (see VENDORS), a profile JSON path or a profile dict. The
    subject (anatomy, motion, tissue properties) depends only on `seed`, so the same seed
    on two vendors is the same heart scanned twice. `n_phases`, `n_slices` and `matrix`
    (recon matrix, same field of view) override the profile, e.g. for quick tests.
    """
    profile = with_overrides(load_profile(vendor), n_phases, n_slices, matrix)
    subject_seed = np.random.SeedSequence(int(seed))
    anatomy_seed, tissue_seed = subject_seed.spawn(2)
    subject = anat.draw_anatomy(np.random.default_rng(anatomy_seed))
    tissue_variation = draw_tissue_variation(np.random.default_rng(tissue_seed))
    scan_seed = _scan_seed(seed, profile)
    coil_seed, b0_seed, b1_seed, noise_seed, store_seed, pose_seed = scan_seed.spawn(6)

    geometry = derived_geometry(profile)
    fov = geometry["fov_mm"]
    recon_shape = tuple(profile["recon_matrix"])
    acquired_shape = tuple(profile["matrix"])
    sim = _Grid(_simulation_shape(profile), fov, subject)
    recon = _Grid(recon_shape, fov, subject)
    sim_pixel, recon_pixel = min(sim.pixel), min(recon.pixel)

    n_t, n_z = profile["n_phases"], profile["n_slices"]
    heart = subject.heart
    rr_ms = 60000.0 / heart.heart_rate_bpm
    contraction = anat.contraction(heart, np.arange(n_t) / n_t)
    spacing_z = geometry["slice_spacing_mm"]
    depths = subject.first_slice_mm + spacing_z * np.arange(n_z)
    offsets = profile["slice_thickness_mm"] * ((np.arange(THROUGH_PLANE_SAMPLES) + 0.5) / THROUGH_PLANE_SAMPLES - 0.5)
    heart_radius = anat.heart_radius_mm(subject) + float(np.hypot(*heart.systolic_shift_mm))

    coils = acquisition.draw_coil_array(subject, np.random.default_rng(coil_seed))
    window = acquisition.kspace_window(acquired_shape, profile["kspace_filter"])
    blood_signal = abs(complex(tissue_signal("blood", profile, tissue_variation)))
    noise_sigma = blood_signal / profile["snr"]
    noise_rng = np.random.default_rng(noise_seed)

    magnitude = np.empty((n_t, n_z) + recon_shape, dtype=np.float32)
    labels = np.empty((n_t, n_z) + recon_shape, dtype=np.uint8)
    for z, w in enumerate(depths):
        static = anat.static_layers(subject, sim.x, sim.y, w)
        lung = anat.paint(static, sim_pixel, lambda tissue, label: float(tissue == "lung"), np.zeros(sim.shape, np.float32))
        centre_pixel = tuple(int(round(p)) for p in sim.to_pixel(*anat.lv_centre(heart, w, 0.0)))
        centre_pixel = tuple(int(np.clip(p, 0, n - 1)) for p, n in zip(centre_pixel, sim.shape))
        b0 = acquisition.off_resonance_hz(profile, b0_seed, sim.x, sim.y, w, lung, sim_pixel, centre_pixel)
        flip = acquisition.flip_angle_scale(profile, b1_seed, sim.x, sim.y, w)
        signals = signal_maps(profile, tissue_variation, b0, flip)
        background = anat.paint(static, sim_pixel, lambda tissue, label: signals[tissue], signals["air"])
        shading = acquisition.coil_shading(coils, sim.x, sim.y, w, profile["coil_shading_strength"],
                                           reference=(*anat.lv_centre(heart, w, 0.0), w))

        sub_depths = w + offsets
        centres = [anat.lv_centre(heart, d, c) for d in sub_depths for c in (0.0, 1.0)]
        sim_box, recon_box = sim.box(centres, heart_radius), recon.box(centres, heart_radius)
        sx, sy = sim.x[sim_box], sim.y[sim_box]
        rx, ry = recon.x[recon_box], recon.y[recon_box]
        box_signals = {name: value[sim_box] for name, value in signals.items()}
        frames = np.empty((n_t,) + sim.shape, dtype=np.complex64)
        for t, c in enumerate(contraction):
            c = float(c)
            region = np.zeros(sx.shape, np.complex64)
            sub_labels = []
            # The LV axis drifts by well under a pixel within a slice: one polar grid per slice.
            sim_samples = anat.PolarSamples(heart, sx, sy, w, c)
            recon_samples = anat.PolarSamples(heart, rx, ry, w, c)
            for d in sub_depths:
                region += anat.paint(anat.heart_layers(subject, sim_samples, d, c), sim_pixel,
                                     lambda tissue, label: box_signals[tissue], background[sim_box])
                sub_labels.append(anat.paint_labels(anat.heart_layers(subject, recon_samples, d, c), rx.shape))
            frame = background.copy()
            frame[sim_box] = region / len(sub_depths)
            frames[t] = frame * shading
            labels[t, z] = 0
            labels[t, z][recon_box] = anat.majority(sub_labels)
        magnitude[:, z] = acquisition.acquire(frames, acquired_shape, recon_shape, window, noise_sigma, noise_rng)

    if profile["fov_mask"] == "circle":
        magnitude *= acquisition.circular_fov_mask(recon_shape)
    image, gain = acquisition.store(magnitude, profile, np.random.default_rng(store_seed))

    pose_rng = np.random.default_rng(pose_seed)
    right, down, normal = _slice_orientation(pose_rng)
    fov_centre = pose_rng.uniform([-10.0, -40.0, -60.0], [40.0, 10.0, 0.0])  # LPS mm, near the heart
    origin = fov_centre - fov[1] / 2.0 * right - fov[0] / 2.0 * down
    direction = np.column_stack([right, down, normal])
    ed_frame, es_frame = 0, int(np.argmax(contraction))
    meta = {
        "profile": profile,
        "seed": int(seed),
        "heart_rate_bpm": heart.heart_rate_bpm,
        "rr_interval_ms": rr_ms,
        "ejection_fraction_model": heart.ejection_fraction,
        "stored_gain": gain,
        "noise_sigma_stored": noise_sigma * gain,
        "simulation_matrix": list(sim.shape),
        "through_plane_samples": THROUGH_PLANE_SAMPLES,
        "slice_depths_mm": [float(d) for d in depths],
        "field_of_view_mm": list(fov),
        "label_names": {"0": "background", "1": "LV blood pool", "2": "LV myocardium", "3": "RV blood pool"},
    }
    return Study(
        image=image,
        labels=labels,
        spacing=(float(profile["pixel_spacing_mm"][1]), float(profile["pixel_spacing_mm"][0]), float(spacing_z)),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in direction.ravel()),
        ed_frame=ed_frame,
        es_frame=es_frame,
        trigger_times_ms=[float(t * rr_ms / n_t) for t in range(n_t)],
        vendor=profile["vendor"],
        meta=meta,
    )
