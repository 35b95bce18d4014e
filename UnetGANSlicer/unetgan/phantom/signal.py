"""Balanced SSFP steady-state signal of each tissue, from its proton density, T1 and T2.

The contrast of a bSSFP cine is set by T2/T1, the flip angle and, through
off-resonance, by TR and the field: these are what differ between scanners, so the
phantom computes them from physics instead of picking grey values per vendor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GYROMAGNETIC_MHZ_PER_T = 42.577  # protons
FAT_SHIFT_PPM = -3.4  # main (methylene) fat peak relative to water


@dataclass(frozen=True)
class TissueProperties:
    """Relative proton density, and T1/T2 (ms) at 1.5 T and 3 T; `shift_ppm` is the chemical shift."""

    pd: float
    t1_ms: tuple[float, float]
    t2_ms: tuple[float, float]
    shift_ppm: float = 0.0


# In-vivo values where they exist. Blood and myocardium: typical native T1 (MOLLI) and
# T2-mapping values (Messroghli et al., JCMR 2017 consensus ranges; blood T2 after
# Stanisz et al., MRM 2005). Liver, skeletal muscle: Stanisz 2005 / de Bazelaire et al.,
# Radiology 2004. Fat: Gold et al., AJR 2004 (bSSFP refocuses J-coupling, so the long
# fast-spin-echo-like T2 is the relevant one; that is why fat is bright in bSSFP).
# Spleen: de Bazelaire 2004. Lung: T1 from Stadler et al. 2005; its low PD and T2* make it dark in any case.
TISSUES: dict[str, TissueProperties] = {
    "air": TissueProperties(pd=0.0, t1_ms=(1000.0, 1000.0), t2_ms=(1.0, 1.0)),
    "blood": TissueProperties(pd=0.95, t1_ms=(1550.0, 1900.0), t2_ms=(250.0, 230.0)),
    "myocardium": TissueProperties(pd=0.78, t1_ms=(1000.0, 1200.0), t2_ms=(50.0, 45.0)),
    "fat": TissueProperties(pd=0.90, t1_ms=(290.0, 370.0), t2_ms=(120.0, 110.0), shift_ppm=FAT_SHIFT_PPM),
    "liver": TissueProperties(pd=0.72, t1_ms=(576.0, 810.0), t2_ms=(46.0, 34.0)),
    "muscle": TissueProperties(pd=0.75, t1_ms=(1008.0, 1412.0), t2_ms=(44.0, 50.0)),
    "lung": TissueProperties(pd=0.10, t1_ms=(1200.0, 1300.0), t2_ms=(40.0, 35.0)),
    # Vertebral marrow: mixed fat and water; modelled as one short-T1 component.
    "marrow": TissueProperties(pd=0.80, t1_ms=(550.0, 650.0), t2_ms=(60.0, 55.0)),
    "spleen": TissueProperties(pd=0.80, t1_ms=(1057.0, 1328.0), t2_ms=(79.0, 61.0)),
    # Stomach contents: watery, long T2, moderately bright.
    "stomach": TissueProperties(pd=0.85, t1_ms=(1800.0, 2200.0), t2_ms=(180.0, 150.0)),
}


def tissue_at_field(name: str, field_T: float, variation: dict | None = None) -> dict:
    """PD, T1, T2 (ms) and chemical shift (Hz) of a tissue, interpolated linearly in B0
    between the 1.5 T and 3 T values; `variation` holds a subject's multiplicative factors."""
    props = TISSUES[name]
    weight = (field_T - 1.5) / 1.5
    t1 = props.t1_ms[0] + weight * (props.t1_ms[1] - props.t1_ms[0])
    t2 = props.t2_ms[0] + weight * (props.t2_ms[1] - props.t2_ms[0])
    factors = (variation or {}).get(name, (1.0, 1.0, 1.0))
    return {
        "pd": props.pd * factors[0],
        "t1_ms": t1 * factors[1],
        "t2_ms": t2 * factors[2],
        "shift_hz": props.shift_ppm * GYROMAGNETIC_MHZ_PER_T * field_T,
    }


INFLOW_ENHANCEMENT = (1.1, 1.5)


def draw_tissue_variation(rng: np.random.Generator, spread: float = 0.05) -> dict:
    """A subject's own tissue properties: PD, T1, T2 factors around the literature values.

    Blood also gets an inflow factor on its apparent PD: blood flowing through the slice
    has seen fewer RF pulses than the steady state assumes, which makes it brighter in
    cine bSSFP (the amount depends on the subject's flow; one value per subject here).
    """
    variation = {name: tuple(float(f) for f in np.exp(rng.normal(0.0, spread, 3))) for name in TISSUES}
    pd, t1, t2 = variation["blood"]
    variation["blood"] = (pd * float(rng.uniform(*INFLOW_ENHANCEMENT)), t1, t2)
    return variation


def bssfp_signal(pd, t1_ms, t2_ms, flip_deg, tr_ms, te_ms, off_resonance_hz=0.0):
    """Complex steady-state transverse magnetisation of balanced SSFP at the echo time.

    RF phase alternation (0-180) puts the passband centre on resonance; tissue at
    +-1/(2 TR) off resonance falls in the dark band. Closed form of the Bloch steady
    state (Freeman-Hill; as written by Xiang & Hoff, MRM 2014), including off-resonance,
    so fat (chemical shift) and B0 inhomogeneity change both magnitude and phase.
    The result is defined up to a global phase. All arguments broadcast.
    """
    flip = np.deg2rad(flip_deg)
    e1 = np.exp(-tr_ms / np.asarray(t1_ms, dtype=np.float64))
    e2 = np.exp(-tr_ms / np.asarray(t2_ms, dtype=np.float64))
    theta = 2.0 * np.pi * np.asarray(off_resonance_hz) * tr_ms * 1e-3 + np.pi
    c = e2 * (e1 - 1.0) * (1.0 + np.cos(flip))
    d = (1.0 - e1 * np.cos(flip)) - (e1 - np.cos(flip)) * e2 ** 2
    steady = (1.0 - e1) * np.sin(flip) * (1.0 - e2 * np.exp(-1j * theta)) / (c * np.cos(theta) + d)
    return pd * steady * np.exp(-te_ms / np.asarray(t2_ms)) * np.exp(1j * theta * te_ms / tr_ms)


def bssfp_on_resonance(pd, t1_ms, t2_ms, flip_deg, te_ms=0.0):
    """The textbook short-TR limit: S = PD sin(a) / (1 + cos(a) + (1 - cos(a)) T1/T2) exp(-TE/T2)."""
    flip = np.deg2rad(flip_deg)
    return pd * np.sin(flip) / (1.0 + np.cos(flip) + (1.0 - np.cos(flip)) * t1_ms / t2_ms) * np.exp(-te_ms / t2_ms)


def tissue_signal(name: str, profile: dict, variation: dict | None = None,
                  off_resonance_hz=0.0, flip_scale=1.0):
    """Complex bSSFP signal of one tissue for a protocol, at the given B0 offset (Hz, scalar
    or map) and flip-angle scale (B1+ inhomogeneity, scalar or map)."""
    return signal_maps(profile, variation, off_resonance_hz, flip_scale, names=(name,))[name]


def signal_maps(profile: dict, variation: dict | None, off_resonance_hz, flip_scale, names=None) -> dict:
    """Complex bSSFP signal of every tissue over B0 and B1 maps (the same closed form as
    `bssfp_signal`, with the trigonometry of the maps computed once per chemical shift)."""
    tr, te = profile["TR_ms"], profile["TE_ms"]
    flip = np.deg2rad(np.float32(profile["flip_angle_deg"]) * np.asarray(flip_scale, dtype=np.float32))
    cos_flip, sin_flip = np.cos(flip), np.sin(flip)
    off_resonance = np.asarray(off_resonance_hz, dtype=np.float32)
    shape = np.broadcast(off_resonance, flip).shape
    precession = {}  # chemical shift -> (cos theta, exp(-i theta), exp(i theta TE/TR))
    maps = {}
    for name in names or TISSUES:
        props = tissue_at_field(name, profile["field_strength_T"], variation)
        if props["pd"] == 0.0:
            maps[name] = np.zeros(shape, dtype=np.complex64)
            continue
        shift = props["shift_hz"]
        if shift not in precession:
            theta = np.float32(2.0 * np.pi * tr * 1e-3) * (off_resonance + np.float32(shift)) + np.float32(np.pi)
            precession[shift] = (np.cos(theta), np.exp(-1j * theta), np.exp(1j * theta * np.float32(te / tr)))
        cos_theta, back, echo = precession[shift]
        e1, e2 = np.exp(-tr / props["t1_ms"]), np.exp(-tr / props["t2_ms"])
        c = e2 * (e1 - 1.0) * (1.0 + cos_flip)
        d = (1.0 - e1 * cos_flip) - (e1 - cos_flip) * e2 ** 2
        scale = props["pd"] * (1.0 - e1) * np.exp(-te / props["t2_ms"])
        value = (np.float32(scale) * sin_flip / (c * cos_theta + d)) * (1.0 - np.float32(e2) * back) * echo
        maps[name] = np.broadcast_to(value, shape).astype(np.complex64)
    return maps
