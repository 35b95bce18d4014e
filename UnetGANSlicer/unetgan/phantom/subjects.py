"""A phantom subject: its heart and body (sizes, shapes, positions, motion parameters) and how one is drawn at
random, normal or diseased. `anatomy.py` turns a subject into tissues (signed distance fields) and motion.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

ANGLE_SAMPLES = 720  # resolution of the tabulated angular profiles (0.5 degree)
# Kinds of heart the phantom draws (`draw_anatomy(rng, kind)`): the ranges are those of the clinical groups
# the segmenter must measure (dilated cardiomyopathy, hypertrophic cardiomyopathy, old infarction).
HEART_KINDS = ("normal", "dilated", "hypertrophic", "infarct")


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
