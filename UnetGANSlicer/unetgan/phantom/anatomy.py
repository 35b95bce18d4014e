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

from typing import NamedTuple

import numpy as np
from scipy.interpolate import PchipInterpolator

from .subjects import ANGLE_SAMPLES, Anatomy, Heart

BACKGROUND, BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE = 0, 1, 2, 3
LABELS = (BACKGROUND, BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE)


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
