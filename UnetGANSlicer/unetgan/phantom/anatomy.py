"""Anatomy of the phantom: tissues as signed distance fields (mm) and the heart's motion.

Coordinates (the *heart frame*): the origin is on the LV long axis in the basal plane at
end-diastole; x, y (mm) lie in the short-axis plane, x towards the image right, y down,
so that with no extra rotation the anterior chest wall is up, the RV on the left and the
liver bottom-left, as in the usual short-axis display; w (mm) runs along the long axis from
the base (w = 0) towards the apex.

Every structure is a `Layer` (tissue name, label, signed distance: negative inside). Layers
are painted in order, each covering what lies under it, so the same description yields
the image (tissue signals painted at the simulation resolution with a partial-volume
coverage computed from the distance) and the labels (the label of the last layer that
contains each pixel centre of the reconstruction grid).

Label convention (M&Ms): papillary muscles and trabeculae inside the LV cavity have
myocardial signal but are labelled LV blood pool (1); the RV label (3) is the RV cavity
only (its free wall is background); atria and great vessels are background.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy.interpolate import PchipInterpolator

BACKGROUND, BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE = 0, 1, 2, 3
LABELS = (BACKGROUND, BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE)

ANGLE_SAMPLES = 720  # resolution of the tabulated angular profiles (0.5 degree)
# Kinds of heart the phantom draws (`draw_anatomy(rng, kind)`): the ranges are those of the clinical groups
# the segmenter must measure (dilated cardiomyopathy, hypertrophic cardiomyopathy, old infarction).
HEART_KINDS = ("normal", "dilated", "hypertrophic", "infarct")


class Layer(NamedTuple):
    tissue: str
    label: int
    distance: np.ndarray  # signed distance (mm) at the samples, negative inside
    window: tuple[slice, slice] | None = None  # the samples it covers, if not all (distance has its shape)


def coverage(distance: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Partial-volume fraction of a pixel covered by a shape, from the signed distance of its centre."""
    fraction = distance * np.float32(-1.0 / pixel_mm)
    fraction += np.float32(0.5)
    return np.clip(fraction, 0.0, 1.0, out=fraction)


def ellipse_distance(x, y, centre, semi_axes, angle_rad=0.0):
    """Approximate signed distance (mm) to an ellipse: the level-set value over its gradient.

    Exact on the boundary's normal to first order, which is all partial-volume rasterisation needs.
    """
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    dx, dy = x - centre[0], y - centre[1]
    u = (dx * cos + dy * sin) / semi_axes[0]
    v = (-dx * sin + dy * cos) / semi_axes[1]
    q = np.sqrt(u * u + v * v) + 1e-9
    gradient = np.sqrt((u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2) / q + 1e-9
    return (q - 1.0) / gradient


def circle_distance(x, y, centre, radius):
    return np.hypot(x - centre[0], y - centre[1]) - radius


def grid_window(x: np.ndarray, y: np.ndarray, centre, radius: float) -> tuple[slice, slice]:
    """The index box of the points of a (rotated) regular grid within `radius` mm of a point.

    x, y are the grid's coordinates (2D); the box may be empty.
    """
    steps = np.array([[x[1, 0] - x[0, 0], x[0, 1] - x[0, 0]], [y[1, 0] - y[0, 0], y[0, 1] - y[0, 0]]], dtype=np.float64)
    inverse = np.linalg.inv(steps)
    index = inverse @ (np.asarray(centre, dtype=np.float64) - np.array([x[0, 0], y[0, 0]], dtype=np.float64))
    reach = radius * np.sqrt((inverse ** 2).sum(axis=1))
    lo = np.clip(np.floor(index - reach).astype(int), 0, x.shape)
    hi = np.clip(np.ceil(index + reach).astype(int) + 1, lo, x.shape)
    return slice(lo[0], hi[0]), slice(lo[1], hi[1])


def _periodic_bumps(rng, count, height_range, width_deg_range, baseline=0.0):
    """A table over angle [0, 2 pi) of `count` smooth random bumps (von Mises shapes)."""
    angles = np.linspace(0.0, 2.0 * np.pi, ANGLE_SAMPLES, endpoint=False)
    table = np.full(ANGLE_SAMPLES, baseline)
    for _ in range(count):
        centre = rng.uniform(0.0, 2.0 * np.pi)
        width = np.deg2rad(rng.uniform(*width_deg_range))
        table += rng.uniform(*height_range) * np.exp((np.cos(angles - centre) - 1.0) / width ** 2)
    return table


@dataclass(frozen=True)
class Heart:
    epi_radius_mm: float  # largest LV epicardial radius at ED
    wall_mm: float  # mean LV wall thickness at ED (mid-ventricle)
    length_mm: float  # base to epicardial apex at ED
    apex_wall_mm: float
    equator: float  # normalised long-axis position of the widest section
    ejection_fraction: float
    long_axis_shortening: float  # fraction of the length lost at ES (base descends)
    twist_deg: tuple[float, float]  # rotation at ES, base and apex
    systolic_shift_mm: tuple[float, float]  # in-plane translation of the LV at ES
    axis_tilt: tuple[float, float]  # in-plane drift of the LV centre per mm along the axis
    es_fraction: float  # time of end-systole as a fraction of the RR interval
    heart_rate_bpm: float
    shape_table: np.ndarray  # endocardial radius factor over angle (ellipticity, bumps)
    wall_table: np.ndarray  # wall thickness factor over angle
    trabeculae_table: np.ndarray  # depth (mm) of endocardial trabeculae over angle
    papillary: tuple[tuple[float, float, float, float], ...]  # (angle rad, radius mm, s from, s to)
    rv_angle: float  # direction of the RV from the LV centre (rad, image frame)
    rv_insertion_deg: float  # half-angle between the RV insertion points, seen from the LV centre
    rv_depth_mm: float  # RV cavity thickness beyond the LV epicardium (base-mid, ED)
    rv_radial: float  # RV radial semi-axis / (LV epicardial radius + RV depth)
    rv_apex: float  # normalised long-axis position where the RV ends
    rv_ejection_fraction: float
    rv_wall_mm: float
    fat_table: np.ndarray  # epicardial fat thickness (mm) over angle
    atrium_radius_mm: float
    aortic_root_radius_mm: float
    kind: str = "normal"  # one of HEART_KINDS
    # an infarct: a thinned, akinetic wall segment; over angle, 1 at its centre and 0 outside (None: no infarct)
    infarct_table: np.ndarray | None = None
    infarct_span: tuple[float, float] = (0.0, 0.0)  # normalised long-axis positions (0 base, 1 apex) it covers
    infarct_thinning: float = 1.0  # wall thickness in the segment as a share of the healthy wall's


@dataclass(frozen=True)
class Body:
    centre_mm: tuple[float, float]
    semi_axes_mm: tuple[float, float]
    angle_rad: float
    subcutaneous_fat_mm: float
    muscle_mm: float
    liver_dome: tuple[float, float, float]  # (direction rad, distance of its top from the LV centre, radius) mm
    stomach_dome: tuple[float, float, float]  # the same for the left hemidiaphragm
    diaphragm_slope: float  # the domes come closer by this many mm per mm towards the apex
    stomach: tuple | None  # (centre (x, y), semi-axes, angle) or None
    spine_centre_mm: tuple[float, float]
    spine_radius_mm: float
    aorta_centre_mm: tuple[float, float]
    aorta_radius_mm: float
    lung_vessels: np.ndarray  # (n, 5): x, y, drift x, drift y per mm of w, radius
    liver_vessels: np.ndarray  # the same, shown only inside the liver


@dataclass(frozen=True)
class Anatomy:
    heart: Heart
    body: Body
    rotation_deg: float  # in-plane rotation of the whole anatomy in the image
    offset_mm: tuple[float, float]  # LV centre (base, ED) from the field-of-view centre
    first_slice_mm: float  # position of the first slice centre below the ED base plane


def draw_anatomy(rng: np.random.Generator, kind: str = "normal") -> Anatomy:
    """A random subject: sizes, shapes and positions within adult ranges; `kind` (HEART_KINDS) changes the
    heart into a diseased one after everything else is drawn, so the same seed gives the same body."""
    if kind not in HEART_KINDS:
        raise ValueError(f"unknown kind of heart {kind!r}: choose from {', '.join(HEART_KINDS)}")
    epi = rng.uniform(30.0, 38.0)
    wall = rng.uniform(7.0, 12.0)
    angles = np.linspace(0.0, 2.0 * np.pi, ANGLE_SAMPLES, endpoint=False)
    shape = (1.0 + rng.uniform(0.0, 0.06) * np.cos(2 * (angles - rng.uniform(0, np.pi)))
             + rng.uniform(0.0, 0.03) * np.cos(3 * (angles - rng.uniform(0, 2 * np.pi))))
    wall_table = 1.0 + rng.uniform(0.0, 0.2) * np.cos(angles - rng.uniform(0, 2 * np.pi))
    rv_angle = np.deg2rad(rng.uniform(190.0, 215.0))
    insertion = rng.uniform(65.0, 85.0)
    free_wall = rv_angle + np.pi
    papillary = tuple(
        (free_wall + np.deg2rad(offset + rng.uniform(-10, 10)), rng.uniform(3.0, 5.5),
         rng.uniform(0.15, 0.3), rng.uniform(0.65, 0.8))
        for offset in (-45.0, 55.0)
    )
    # Epicardial fat: mostly in the interventricular grooves (at the RV insertions) and
    # along the RV free wall, a thin layer elsewhere.
    fat = _periodic_bumps(rng, int(rng.integers(1, 4)), (1.0, 4.0), (20.0, 50.0), baseline=rng.uniform(0.3, 1.5))
    for side in (-1.0, 1.0):
        groove = rv_angle + side * np.deg2rad(insertion)
        fat += rng.uniform(3.0, 8.0) * np.exp((np.cos(angles - groove) - 1.0) / 0.25 ** 2)
    fat += rng.uniform(0.5, 3.0) * np.exp((np.cos(angles - rv_angle) - 1.0) / 0.6 ** 2)
    heart = Heart(
        epi_radius_mm=epi,
        wall_mm=wall,
        length_mm=rng.uniform(75.0, 95.0),
        apex_wall_mm=rng.uniform(5.0, 9.0),
        equator=rng.uniform(0.1, 0.25),
        ejection_fraction=rng.uniform(0.5, 0.68),
        long_axis_shortening=rng.uniform(0.08, 0.15),
        twist_deg=(rng.uniform(-4.0, -1.0), rng.uniform(4.0, 10.0)),
        systolic_shift_mm=tuple(rng.normal(0.0, 2.0, 2)),
        axis_tilt=tuple(rng.uniform(-0.12, 0.12, 2)),
        es_fraction=rng.uniform(0.35, 0.40),
        heart_rate_bpm=rng.uniform(55.0, 85.0),
        shape_table=shape,
        wall_table=wall_table,
        trabeculae_table=_periodic_bumps(rng, int(rng.integers(6, 16)), (0.3, 1.5), (3.0, 8.0)),
        papillary=papillary,
        rv_angle=rv_angle,
        rv_insertion_deg=insertion,
        rv_depth_mm=rng.uniform(15.0, 28.0),
        rv_radial=rng.uniform(0.65, 0.8),
        rv_apex=rng.uniform(0.7, 0.9),
        rv_ejection_fraction=rng.uniform(0.45, 0.6),
        rv_wall_mm=rng.uniform(2.5, 4.0),
        fat_table=np.minimum(fat, 10.0),
        atrium_radius_mm=rng.uniform(0.75, 0.95) * epi,
        aortic_root_radius_mm=rng.uniform(11.0, 14.0),
    )

    semi = (rng.uniform(180.0, 240.0), rng.uniform(125.0, 165.0))
    fat_mm, muscle_mm = rng.uniform(5.0, 25.0), rng.uniform(8.0, 16.0)
    # The anterior chest wall sits a little above the heart (RV and fat included).
    centre_y = semi[1] - fat_mm - muscle_mm - rng.uniform(1.5, 2.0) * epi
    centre = (rng.uniform(-45.0, -5.0), centre_y)
    posterior = centre_y + semi[1]
    spine = (rng.uniform(-10.0, 25.0), max(posterior - rng.uniform(55.0, 75.0), epi + 50.0))
    aorta = (spine[0] + rng.uniform(18.0, 32.0), spine[1] - rng.uniform(22.0, 32.0))
    liver_dome = (np.deg2rad(rng.uniform(125.0, 160.0)), epi + rng.uniform(20.0, 45.0), rng.uniform(110.0, 180.0))
    stomach_dome = (np.deg2rad(rng.uniform(50.0, 80.0)), epi + rng.uniform(35.0, 60.0), rng.uniform(90.0, 140.0))
    stomach = None
    if rng.uniform() < 0.6:
        reach = stomach_dome[1] + rng.uniform(25.0, 50.0)
        stomach = ((reach * np.cos(stomach_dome[0]), reach * np.sin(stomach_dome[0])),
                   (rng.uniform(25.0, 45.0), rng.uniform(20.0, 35.0)), stomach_dome[0] + rng.uniform(-0.5, 0.5))
    n_vessels = int(rng.integers(15, 35))
    vessels = np.column_stack([
        rng.uniform(-180.0, 180.0, n_vessels), rng.uniform(-160.0, 160.0, n_vessels),
        rng.normal(0.0, 0.3, n_vessels), rng.normal(0.0, 0.3, n_vessels), rng.uniform(1.5, 4.0, n_vessels),
    ])
    n_hepatic = int(rng.integers(4, 12))
    liver_reach = liver_dome[1] + rng.uniform(20.0, 90.0, n_hepatic)
    liver_angle = liver_dome[0] + rng.uniform(-0.5, 0.5, n_hepatic)
    hepatic = np.column_stack([
        liver_reach * np.cos(liver_angle), liver_reach * np.sin(liver_angle),
        rng.normal(0.0, 0.3, n_hepatic), rng.normal(0.0, 0.3, n_hepatic), rng.uniform(2.0, 6.0, n_hepatic),
    ])
    body = Body(
        centre_mm=centre, semi_axes_mm=semi, angle_rad=np.deg2rad(rng.uniform(-15.0, 15.0)),
        subcutaneous_fat_mm=fat_mm, muscle_mm=muscle_mm,
        liver_dome=liver_dome, stomach_dome=stomach_dome,
        diaphragm_slope=rng.uniform(0.25, 0.5),
        stomach=stomach,
        spine_centre_mm=spine, spine_radius_mm=rng.uniform(15.0, 20.0),
        aorta_centre_mm=aorta, aorta_radius_mm=rng.uniform(10.0, 13.0),
        lung_vessels=vessels,
        liver_vessels=hepatic,
    )
    anatomy = Anatomy(
        heart=heart, body=body,
        rotation_deg=rng.uniform(-30.0, 30.0),
        offset_mm=tuple(rng.uniform(-25.0, 25.0, 2)),
        first_slice_mm=rng.uniform(1.0, 6.0),
    )
    return anatomy if kind == "normal" else replace(anatomy, heart=diseased_heart(heart, kind, rng))


def diseased_heart(heart: Heart, kind: str, rng: np.random.Generator) -> Heart:
    """The heart of one of the clinical groups, drawn from `rng`.

    - dilated: a large, thin-walled, poorly contracting LV (end-diastolic volume about 250-400 mL, EF 15-35 %)
    - hypertrophic: thick walls (15-30 mm at end-diastole, thickest at the septum), a small cavity that
      empties almost completely (EF 72-82 %, end-systolic cavity 10-30 mL)
    - infarct: an old infarction, a thinned (35-55 % of the wall) akinetic segment over 70-110 degrees from
      mid-ventricle to the apex, with a lower EF (35-50 %)
    The ranges were checked on the phantom's own labels (Testing/test_phantom.py)."""
    angles = np.linspace(0.0, 2.0 * np.pi, ANGLE_SAMPLES, endpoint=False)
    if kind == "dilated":
        wall = rng.uniform(5.5, 7.0)
        return replace(heart, kind=kind, epi_radius_mm=rng.uniform(42.5, 47.0), wall_mm=wall,
                       length_mm=rng.uniform(90.0, 98.0), apex_wall_mm=rng.uniform(4.0, 5.0),
                       ejection_fraction=rng.uniform(0.14, 0.29), long_axis_shortening=rng.uniform(0.03, 0.07),
                       twist_deg=(heart.twist_deg[0] / 3.0, heart.twist_deg[1] / 3.0))
    if kind == "hypertrophic":
        wall = rng.uniform(17.5, 24.0)
        septal = rng.uniform(0.1, 0.3)  # asymmetric hypertrophy: the septum (towards the RV) is thickest
        return replace(heart, kind=kind, wall_mm=wall, epi_radius_mm=rng.uniform(20.0, 23.5) + wall,
                       length_mm=rng.uniform(78.0, 90.0), apex_wall_mm=rng.uniform(10.0, 14.0),
                       ejection_fraction=rng.uniform(0.74, 0.82),
                       wall_table=1.0 + septal * np.cos(angles - heart.rv_angle))
    if kind == "infarct":
        centre, half_width = rng.uniform(0.0, 2.0 * np.pi), np.deg2rad(rng.uniform(35.0, 55.0))
        # 1 over the segment, falling to 0 over 15 degrees at its borders
        distance = np.abs(np.angle(np.exp(1j * (angles - centre))))
        table = np.clip((half_width + np.deg2rad(15.0) - distance) / np.deg2rad(15.0), 0.0, 1.0)
        return replace(heart, kind=kind, ejection_fraction=rng.uniform(0.35, 0.5), infarct_table=table,
                       infarct_span=(rng.uniform(0.3, 0.5), 1.0), infarct_thinning=rng.uniform(0.35, 0.55))
    raise ValueError(f"unknown kind of heart {kind!r}: choose from {', '.join(HEART_KINDS)}")


# ---------------------------------------------------------------- motion

def contraction(heart: Heart, phase_fraction) -> np.ndarray:
    """0 at end-diastole, 1 at end-systole, over the cardiac cycle (phase in [0, 1)).

    Systolic ejection, rapid early filling, diastasis, then the atrial kick: a monotone
    cubic through those points, so the extremes are exactly ED (0) and ES (1).
    """
    es = heart.es_fraction
    knots = [0.0, es, es + 0.18, 0.85, 1.0]
    values = [0.0, 1.0, 0.3, 0.18, 0.0]
    return PchipInterpolator(knots, values)(np.mod(phase_fraction, 1.0))


def lv_centre(heart: Heart, w, c) -> tuple[float, float]:
    """In-plane position of the LV axis at depth w and contraction c."""
    return (heart.axis_tilt[0] * w + c * heart.systolic_shift_mm[0],
            heart.axis_tilt[1] * w + c * heart.systolic_shift_mm[1])


def _long_axis(heart: Heart, w: float, c: float):
    """Normalised position s (0 base, 1 epicardial apex) of depth w at contraction c."""
    base = heart.long_axis_shortening * heart.length_mm * c  # the base descends, the apex stays
    return (w - base) / (heart.length_mm - base)


def _ellipsoid(s, equator, end):
    """Radius factor of a prolate section at s: 1 at the equator, 0 at `end`."""
    return np.sqrt(np.clip(1.0 - ((s - equator) / (end - equator)) ** 2, 0.0, None))


def _lv_radii_ed(heart: Heart, s: float) -> tuple[float, float]:
    """Mean endocardial and epicardial radii (mm) at ED at long-axis position s."""
    endo_end = 1.0 - heart.apex_wall_mm / heart.length_mm
    epi = heart.epi_radius_mm * float(_ellipsoid(s, heart.equator, 1.0))
    endo = (heart.epi_radius_mm - heart.wall_mm) * float(_ellipsoid(s, heart.equator, endo_end))
    return endo, epi


def _cavity_factor(heart: Heart, c: float) -> float:
    """Endocardial radius scale so that the cavity volume falls by the EF at ES (given the
    cavity also shortens with the long axis)."""
    area_at_es = (1.0 - heart.ejection_fraction) / (1.0 - heart.long_axis_shortening)
    return float(np.sqrt(1.0 - c * (1.0 - area_at_es)))


def _rv_ellipse(heart: Heart, s: float, c: float, lv_radius: float):
    """RV cavity ellipse (centre distance from the LV axis, radial and tangential semi-axes),
    or None where there is no RV. It passes through the insertion points on the LV
    epicardium, so that beyond the LV it is a crescent."""
    if s >= heart.rv_apex or s < -0.08:
        return None
    profile = float(_ellipsoid(max(s, 0.0), -0.5, heart.rv_apex) / _ellipsoid(0.0, -0.5, heart.rv_apex))
    # The free wall moves towards the septum: the RV ejects its EF (with the axis shortening).
    squeeze = 1.0 - c * (1.0 - (1.0 - heart.rv_ejection_fraction) / (1.0 - heart.long_axis_shortening))
    depth = heart.rv_depth_mm * profile * squeeze
    if depth < 1.0:
        return None
    radial = heart.rv_radial * (lv_radius + depth)
    distance = lv_radius + depth - radial
    insertion = np.deg2rad(heart.rv_insertion_deg)
    along = (lv_radius * np.cos(insertion) - distance) / radial
    tangential = lv_radius * np.sin(insertion) / np.sqrt(max(1.0 - along ** 2, 0.05))
    return distance, radial, tangential


def heart_radius_mm(anatomy: Anatomy) -> float:
    """A radius around the LV axis that contains every heart layer at all times."""
    h = anatomy.heart
    rv = _rv_ellipse(h, 0.0, 0.0, h.epi_radius_mm)
    rv_reach = rv[0] + max(rv[1], rv[2]) if rv else h.epi_radius_mm
    atria = max(1.5 * h.epi_radius_mm, 0.75 * h.epi_radius_mm + h.aortic_root_radius_mm) + 2.0
    return float(max(rv_reach, atria, h.epi_radius_mm * 1.1) + h.rv_wall_mm + 1.6 * h.fat_table.max() + 4.0)


def _infarct_share(heart: Heart, s: float, samples: "PolarSamples", twist: float) -> np.ndarray | None:
    """How much of the infarct each sample's wall sector holds (0-1) at long-axis position s, or None."""
    if heart.infarct_table is None:
        return None
    start, end = heart.infarct_span
    along = float(np.clip(min(s - start, end - s) / 0.1 + 0.5, 0.0, 1.0))  # ramps over 0.1 at its ends
    return None if along <= 0.0 else samples.table(heart.infarct_table, twist) * np.float32(along)


def _angle_index(angle_rad: float) -> int:
    return int(np.mod(angle_rad, 2.0 * np.pi) * ANGLE_SAMPLES / (2.0 * np.pi)) % ANGLE_SAMPLES


class PolarSamples:
    """Sample points around the LV axis at one depth and contraction: positions, radius
    and tabulated-angle index, computed once and shared by the depths within a slice."""

    def __init__(self, heart: Heart, x: np.ndarray, y: np.ndarray, w: float, c: float):
        self.x, self.y = x, y
        self.centre = lv_centre(heart, w, c)
        dx, dy = x - self.centre[0], y - self.centre[1]
        self.rho = np.hypot(dx, dy)
        angle = np.arctan2(dy, dx) * np.float32(ANGLE_SAMPLES / (2.0 * np.pi))
        self.angle_index = np.mod(angle.astype(np.int32), ANGLE_SAMPLES)
        self.window = lambda centre, radius: grid_window(x, y, centre, radius)

    def table(self, table: np.ndarray, rotation_rad: float = 0.0) -> np.ndarray:
        """Values of an angular table at the samples, the table turned by `rotation_rad`."""
        start = -int(round(rotation_rad * ANGLE_SAMPLES / (2.0 * np.pi))) % ANGLE_SAMPLES
        # Two copies end to end: turning the table is then a slice (no modulo per sample).
        doubled = np.concatenate([table, table]).astype(np.float32)
        return doubled[start:start + ANGLE_SAMPLES][self.angle_index]


# ---------------------------------------------------------------- layers

def heart_layers(anatomy: Anatomy, samples: PolarSamples, w: float, c: float) -> list[Layer]:
    """The heart at depth w (mm below the ED base) and contraction c, in painting order."""
    h = anatomy.heart
    s = _long_axis(h, w, c)
    x, y, rho = samples.x, samples.y, samples.rho
    cx, cy = samples.centre
    layers: list[Layer] = []

    endo_ed, epi_ed = _lv_radii_ed(h, float(np.clip(s, 0.0, 1.0)))
    # Mean LV epicardial radius now: the RV and the atria follow the LV's size.
    lv_now = epi_ed if s >= 0.0 else _lv_radii_ed(h, 0.0)[1]
    lv_now = np.sqrt((endo_ed * _cavity_factor(h, c)) ** 2 + (lv_now ** 2 - endo_ed ** 2) / (1.0 - h.long_axis_shortening * c))

    rv_layers: list[Layer] = []
    outer = None  # distance to the outer surface of the heart (for the fat around it)
    rv = _rv_ellipse(h, s, c, lv_now)
    if rv is not None:
        distance, radial, tangential = rv
        centre = (cx + distance * np.cos(h.rv_angle), cy + distance * np.sin(h.rv_angle))
        cavity = ellipse_distance(x, y, centre, (radial, tangential), h.rv_angle)
        outer = cavity - h.rv_wall_mm
        rv_layers = [Layer("myocardium", BACKGROUND, outer), Layer("blood", RIGHT_VENTRICLE, cavity)]
    fat = samples.table(h.fat_table) * np.float32(1.0 + 0.6 * max(0.0, 0.2 - s) / 0.2)  # more in the AV groove

    if 0.0 <= s <= 1.0:
        twist = np.deg2rad(c * (h.twist_deg[0] + (h.twist_deg[1] - h.twist_deg[0]) * s))
        endo_ed_theta = endo_ed * samples.table(h.shape_table, twist)
        wall_ed = (epi_ed - endo_ed) * samples.table(h.wall_table, twist)
        endo = endo_ed_theta * _cavity_factor(h, c)
        scar = _infarct_share(h, s, samples, twist)
        if scar is not None:  # thinned and akinetic: the segment's endocardium stays where it was at ED
            wall_ed = wall_ed * (1.0 - np.float32(1.0 - h.infarct_thinning) * scar)
            endo = endo + (endo_ed_theta - endo) * scar
        # Myocardial area is conserved per angular sector, growing as the axis shortens.
        myo_area = ((endo_ed_theta + wall_ed) ** 2 - endo_ed_theta ** 2) * np.float32(1.0 / (1.0 - h.long_axis_shortening * c))
        epi_distance = rho - np.sqrt(endo ** 2 + myo_area)
        outer = epi_distance if outer is None else np.minimum(outer, epi_distance)
        layers.append(Layer("fat", BACKGROUND, outer - fat))
        layers.extend(rv_layers)
        layers.append(Layer("myocardium", MYOCARDIUM, epi_distance))
        if endo_ed > 0.0:
            cavity = rho - endo
            layers.append(Layer("blood", BLOOD_POOL, cavity))
            # Trabeculae: myocardial-signal fingers along the endocardium, labelled blood pool.
            depth = samples.table(h.trabeculae_table, twist) * np.float32((0.5 + s) * (1.0 + 0.5 * c))
            layers.append(Layer("myocardium", BLOOD_POOL, np.maximum(cavity, -cavity - depth)))
            for angle, radius, start, end in h.papillary:
                if start < s < end:
                    size = radius * np.sqrt(np.sin(np.pi * (s - start) / (end - start))) * (1.0 + 0.35 * c)
                    at = angle + twist
                    wall_radius = endo_ed * float(h.shape_table[_angle_index(angle)]) * _cavity_factor(h, c)
                    reach = wall_radius - 0.6 * size  # attached to the wall, bulging into the cavity
                    centre = (cx + reach * np.cos(at), cy + reach * np.sin(at))
                    window = samples.window(centre, size + 2.0)
                    layers.append(Layer("myocardium", BLOOD_POOL, circle_distance(x[window], y[window], centre, size), window))
    elif s < 0.0:
        # Above the base: left atrium and aortic root (not labelled), beside the RV outflow.
        la = ellipse_distance(x, y, (cx + 0.1 * lv_now, cy + 0.45 * lv_now),
                              (h.atrium_radius_mm, 0.8 * h.atrium_radius_mm), 0.3)
        root = circle_distance(x, y, (cx - 0.45 * lv_now, cy - 0.55 * lv_now), h.aortic_root_radius_mm)
        walls = np.minimum(la, root) - 2.0
        outer = walls if outer is None else np.minimum(outer, walls)
        layers.append(Layer("fat", BACKGROUND, outer - fat))
        layers.extend(rv_layers)
        layers += [Layer("myocardium", BACKGROUND, la - 2.0), Layer("blood", BACKGROUND, la),
                   Layer("myocardium", BACKGROUND, root - 2.0), Layer("blood", BACKGROUND, root)]
    elif rv_layers:
        layers.append(Layer("fat", BACKGROUND, outer - fat))
        layers.extend(rv_layers)
    return layers


def static_layers(anatomy: Anatomy, x: np.ndarray, y: np.ndarray, w: float) -> list[Layer]:
    """Everything but the heart at depth w, in painting order (breath-held: no motion)."""
    b = anatomy.body
    skin = ellipse_distance(x, y, b.centre_mm, b.semi_axes_mm, b.angle_rad)
    muscle = skin + b.subcutaneous_fat_mm
    cavity = muscle + b.muscle_mm

    def dome(direction, top, radius):
        """Inside of a diaphragm dome whose top is `top` mm from the LV axis (closer apically)."""
        reach = top - b.diaphragm_slope * w + radius
        return circle_distance(x, y, (reach * np.cos(direction), reach * np.sin(direction)), radius)

    liver = dome(*b.liver_dome)
    left_abdomen = dome(*b.stomach_dome)
    layers: list[Layer] = [
        Layer("fat", BACKGROUND, skin),
        Layer("muscle", BACKGROUND, muscle),
        Layer("lung", BACKGROUND, cavity),
        Layer("liver", BACKGROUND, np.maximum(cavity, liver)),
        Layer("spleen", BACKGROUND, np.maximum.reduce([cavity, left_abdomen, -liver])),  # left upper quadrant
    ]
    if b.stomach is not None:
        centre, semi, angle = b.stomach
        layers.append(Layer("stomach", BACKGROUND, np.maximum.reduce(
            [cavity, left_abdomen, ellipse_distance(x, y, centre, semi, angle)])))
    lung = np.maximum.reduce([cavity, -liver, -left_abdomen])
    # Vessels: bright dots that exist only in the lungs or only in the liver.
    for vessels, organ in ((b.lung_vessels, lung), (b.liver_vessels, np.maximum(cavity, liver))):
        dots = np.full_like(x, 1e3)
        for vx, vy, ddx, ddy, radius in vessels:
            centre = (vx + ddx * w, vy + ddy * w)
            window = grid_window(x, y, centre, radius + 2.0)
            np.minimum(dots[window], circle_distance(x[window], y[window], centre, radius), out=dots[window])
        layers.append(Layer("blood", BACKGROUND, np.maximum(dots, organ)))
    sx, sy = b.spine_centre_mm
    for side in (-1.0, 1.0):  # paraspinal muscles
        layers.append(Layer("muscle", BACKGROUND, np.maximum(skin, ellipse_distance(
            x, y, (sx + side * 38.0, sy + 18.0), (32.0, 22.0), side * 0.3))))
    layers.append(Layer("marrow", BACKGROUND, np.maximum(skin, circle_distance(x, y, (sx, sy), b.spine_radius_mm))))
    layers.append(Layer("muscle", BACKGROUND, np.maximum(skin, circle_distance(x, y, b.aorta_centre_mm, b.aorta_radius_mm + 1.5))))
    layers.append(Layer("blood", BACKGROUND, np.maximum(skin, circle_distance(x, y, b.aorta_centre_mm, b.aorta_radius_mm))))
    return layers


def paint(layers: list[Layer], pixel_mm: float, values, base: np.ndarray) -> np.ndarray:
    """Paint layers over a copy of `base` (..., H, W): each layer's value covers what is
    under it by its partial-volume coverage. `values(tissue, label)` gives what a layer
    paints: a scalar or an array broadcastable with the grid (indexable by a window).
    """
    image = np.array(base, copy=True)
    for layer in layers:
        fraction = coverage(layer.distance, pixel_mm)
        value = values(layer.tissue, layer.label)
        if layer.window is None:
            image += fraction * (value - image)
        else:
            if np.ndim(value) >= 2:
                value = value[layer.window]
            target = image[(Ellipsis,) + layer.window]
            target += fraction * (value - target)
    return image


def paint_labels(layers: list[Layer], shape: tuple[int, int]) -> np.ndarray:
    """The label of the last layer containing each sample point (no partial volume)."""
    labels = np.zeros(shape, dtype=np.uint8)
    for layer in layers:
        target = labels if layer.window is None else labels[layer.window]
        np.copyto(target, np.uint8(layer.label), where=layer.distance < 0.0)
    return labels


def majority(labels: list[np.ndarray]) -> np.ndarray:
    """Per-pixel majority of three label maps; the middle one where all three differ."""
    if len(labels) == 1:
        return labels[0]
    if len(labels) != 3:
        raise ValueError("majority() takes one or three label maps")
    first, middle, last = labels
    return np.where(first == last, first, middle)
