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

from . import acquisition, anatomy as anat, subjects
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

    def __init__(self, shape: tuple[int, int], fov_mm: tuple[float, float], anatomy: subjects.Anatomy):
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


class _Simulation:
    """What is fixed for one study (subject, protocol, grids, coils, filter, noise level);
    `slice(w)` simulates one slice position over all phases."""

    def __init__(self, profile: dict, seed: int, heart: str = "normal"):
        self.profile = profile
        anatomy_seed, tissue_seed = np.random.SeedSequence(int(seed)).spawn(2)
        self.subject = subjects.draw_anatomy(np.random.default_rng(anatomy_seed), heart)
        self.heart = self.subject.heart
        self.tissue_variation = draw_tissue_variation(np.random.default_rng(tissue_seed))
        coil_seed, self.b0_seed, self.b1_seed, noise_seed, self.store_seed, self.pose_seed = _scan_seed(seed, profile).spawn(6)

        self.geometry = derived_geometry(profile)
        self.recon_shape = tuple(profile["recon_matrix"])
        self.acquired_shape = tuple(profile["matrix"])
        self.sim = _Grid(_simulation_shape(profile), self.geometry["fov_mm"], self.subject)
        self.recon = _Grid(self.recon_shape, self.geometry["fov_mm"], self.subject)
        self.sim_pixel = min(self.sim.pixel)

        self.n_phases = profile["n_phases"]
        self.contraction = anat.contraction(self.heart, np.arange(self.n_phases) / self.n_phases)
        self.depths = self.subject.first_slice_mm + self.geometry["slice_spacing_mm"] * np.arange(profile["n_slices"])
        fractions = (np.arange(THROUGH_PLANE_SAMPLES) + 0.5) / THROUGH_PLANE_SAMPLES - 0.5
        self.through_plane = profile["slice_thickness_mm"] * fractions
        self.heart_radius = anat.heart_radius_mm(self.subject) + float(np.hypot(*self.heart.systolic_shift_mm))

        self.coils = acquisition.draw_coil_array(self.subject, np.random.default_rng(coil_seed))
        self.window = acquisition.kspace_window(self.acquired_shape, profile["kspace_filter"])
        # The profile's SNR is that of on-resonance blood at the heart (where the shading is 1).
        self.noise_sigma = abs(complex(tissue_signal("blood", profile, self.tissue_variation))) / profile["snr"]
        self.noise_rng = np.random.default_rng(noise_seed)

    def _static(self, w: float):
        """Tissue signals over the field maps, the static anatomy painted with them, and the coil shading."""
        sim, heart = self.sim, self.heart
        static = anat.static_layers(self.subject, sim.x, sim.y, w)
        lung = anat.paint(static, self.sim_pixel, lambda tissue, label: float(tissue == "lung"), np.zeros(sim.shape, np.float32))
        centre = anat.lv_centre(heart, w, 0.0)
        centre_pixel = tuple(int(np.clip(round(p), 0, n - 1)) for p, n in zip(sim.to_pixel(*centre), sim.shape))
        b0 = acquisition.off_resonance_hz(self.profile, self.b0_seed, sim.x, sim.y, w, lung, self.sim_pixel, centre_pixel)
        flip = acquisition.flip_angle_scale(self.profile, self.b1_seed, sim.x, sim.y, w)
        signals = signal_maps(self.profile, self.tissue_variation, b0, flip)
        background = anat.paint(static, self.sim_pixel, lambda tissue, label: signals[tissue], signals["air"])
        shading = acquisition.coil_shading(self.coils, sim.x, sim.y, w, self.profile["coil_shading_strength"],
                                           reference=(*centre, w))
        return signals, background, shading

    def slice(self, w: float) -> tuple[np.ndarray, np.ndarray]:
        """Magnitude images and labels (T, Y, X) of the slice centred at depth w."""
        signals, background, shading = self._static(w)
        sub_depths = w + self.through_plane
        centres = [anat.lv_centre(self.heart, d, c) for d in sub_depths for c in (0.0, 1.0)]
        sim_box, recon_box = self.sim.box(centres, self.heart_radius), self.recon.box(centres, self.heart_radius)
        sx, sy = self.sim.x[sim_box], self.sim.y[sim_box]
        rx, ry = self.recon.x[recon_box], self.recon.y[recon_box]
        box_signals = {name: value[sim_box] for name, value in signals.items()}
        frames = np.empty((self.n_phases,) + self.sim.shape, dtype=np.complex64)
        labels = np.zeros((self.n_phases,) + self.recon_shape, dtype=np.uint8)
        for t, c in enumerate(self.contraction):
            c = float(c)
            region = np.zeros(sx.shape, np.complex64)
            sub_labels = []
            # The LV axis drifts by well under a pixel within a slice: one polar grid per slice.
            sim_samples = anat.PolarSamples(self.heart, sx, sy, w, c)
            recon_samples = anat.PolarSamples(self.heart, rx, ry, w, c)
            for d in sub_depths:
                region += anat.paint(anat.heart_layers(self.subject, sim_samples, d, c), self.sim_pixel,
                                     lambda tissue, label: box_signals[tissue], background[sim_box])
                sub_labels.append(anat.paint_labels(anat.heart_layers(self.subject, recon_samples, d, c), rx.shape))
            frame = background.copy()
            frame[sim_box] = region / len(sub_depths)
            frames[t] = frame * shading
            labels[t][recon_box] = anat.majority(sub_labels)
        magnitude = acquisition.acquire(frames, self.acquired_shape, self.recon_shape, self.window,
                                        self.noise_sigma, self.noise_rng)
        return magnitude, labels

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Origin (LPS mm of the first voxel) and direction (columns: x, y, z axes) of the stack."""
        rng = np.random.default_rng(self.pose_seed)
        right, down, normal = _slice_orientation(rng)
        fov_centre = rng.uniform([-10.0, -40.0, -60.0], [40.0, 10.0, 0.0])  # LPS mm, near the heart
        fov = self.geometry["fov_mm"]
        origin = fov_centre - fov[1] / 2.0 * right - fov[0] / 2.0 * down
        return origin, np.column_stack([right, down, normal])


def make_study(vendor: str | Path | dict = "Philips", seed: int = 0, n_phases: int | None = None,
               n_slices: int | None = None, matrix: int | tuple[int, int] | None = None,
               heart: str = "normal") -> Study:
    """Simulate one subject's short-axis bSSFP cine on one scanner.

    `vendor` is a vendor name (see VENDORS), a profile JSON path or a profile dict. The
    subject (anatomy, motion, tissue properties) depends only on `seed`, so the same seed
    on two vendors is the same heart scanned twice. `n_phases`, `n_slices` and `matrix`
    (recon matrix: [rows, cols] or the larger dimension; same field of view) override the
    profile, e.g. for quick tests. `heart` is the kind of heart (subjects.HEART_KINDS: normal, dilated,
    hypertrophic, infarct); the body around it is the same for every kind.
    """
    profile = with_overrides(load_profile(vendor), n_phases, n_slices, matrix)
    simulation = _Simulation(profile, seed, heart)
    n_t = profile["n_phases"]
    magnitude = np.empty((n_t, profile["n_slices"]) + simulation.recon_shape, dtype=np.float32)
    labels = np.empty(magnitude.shape, dtype=np.uint8)
    for z, w in enumerate(simulation.depths):
        magnitude[:, z], labels[:, z] = simulation.slice(w)
    if profile["fov_mask"] == "circle":
        magnitude *= acquisition.circular_fov_mask(simulation.recon_shape)
    image, gain = acquisition.store(magnitude, profile, np.random.default_rng(simulation.store_seed))

    origin, direction = simulation.pose()
    heart = simulation.heart
    rr_ms = 60000.0 / heart.heart_rate_bpm
    meta = {
        "profile": profile,
        "seed": int(seed),
        "heart_rate_bpm": heart.heart_rate_bpm,
        "rr_interval_ms": rr_ms,
        "ejection_fraction_model": heart.ejection_fraction,
        "heart_kind": heart.kind,
        "stored_gain": gain,
        "noise_sigma_stored": simulation.noise_sigma * gain,
        "simulation_matrix": list(simulation.sim.shape),
        "through_plane_samples": THROUGH_PLANE_SAMPLES,
        "slice_depths_mm": [float(d) for d in simulation.depths],
        "field_of_view_mm": list(simulation.geometry["fov_mm"]),
        "label_names": {"0": "background", "1": "LV blood pool", "2": "LV myocardium", "3": "RV blood pool"},
    }
    return Study(
        image=image,
        labels=labels,
        spacing=(float(profile["pixel_spacing_mm"][1]), float(profile["pixel_spacing_mm"][0]),
                 float(simulation.geometry["slice_spacing_mm"])),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in direction.ravel()),
        ed_frame=0,
        es_frame=int(np.argmax(simulation.contraction)),
        trigger_times_ms=[float(t * rr_ms / n_t) for t in range(n_t)],
        vendor=profile["vendor"],
        meta=meta,
    )
