"""Training emphasis on hearts unlike the average: labelled phantom sick hearts, and the real training
volumes that look like them drawn more often.

- `phantom_sick_volumes`: dilated, hypertrophic and infarcted phantom hearts (phantom/subjects.HEART_KINDS),
  scanned by the Philips profile under varied protocols (slice thickness 5-10 mm, in-plane pixels about
  1.1-1.7 mm, 8-20 slices, the heart anywhere within 25 mm of the field's centre), ED and ES with exact labels.
  Half state a 1 mm pixel, as the M&Ms files do (their true spacing is lost), so the network sees these hearts
  at both of the scales the real data come at.
- `emphasis_weights`: a sampling weight per training slice that favours volumes whose own labels say they are
  unusual: the thickest walls, the largest end-diastolic cavities, the smallest end-systolic cavity shares,
  and slices whose cavity is tiny next to their myocardium (where end-systolic cavities are overestimated).
  Ranks, not millilitres: the M&Ms headers do not give true volumes.
"""
from __future__ import annotations

import functools
import time

import numpy as np

from ..io.geometry import Geometry, ImageData
from ..io.labelled import LabelledVolume
from ..phantom.anatomy import BLOOD_POOL, MYOCARDIUM, RIGHT_VENTRICLE

SICK_KINDS = ("dilated", "hypertrophic", "infarct")
PHANTOM_PHASES = 20  # enough for the end-systolic frame to be within 2 % of the cycle of true end-systole
UNUSUAL_SHARE = 0.2  # the top (or bottom) fifth of the training volumes by each trait counts as unusual
TINY_CAVITY_SHARE = 0.25  # a slice whose blood pool is under this share of blood pool + myocardium


def phantom_protocol(rng: np.random.Generator) -> dict:
    """The Philips phantom profile under a random clinical protocol."""
    from ..phantom.profiles import derived_geometry, load_profile, validate_profile, with_overrides

    profile = with_overrides(load_profile("Philips"), matrix=int(rng.integers(200, 321)))
    profile["slice_thickness_mm"] = float(rng.uniform(5.0, 10.0))
    profile["slice_gap_mm"] = float(rng.uniform(0.0, 0.4) * profile["slice_thickness_mm"])
    spacing = profile["slice_thickness_mm"] + profile["slice_gap_mm"]
    profile["n_slices"] = int(np.clip(np.ceil(110.0 / spacing), 8, 20))  # base to apex of the largest hearts
    profile = validate_profile(profile, source="Philips phantom profile, varied protocol")
    derived_geometry(profile)  # raises on an impossible geometry
    return profile


@functools.lru_cache(maxsize=2)  # a resumed call in the same process simulates them once (callers never modify them)
def phantom_sick_volumes(subjects: int, seed: int) -> tuple[LabelledVolume, ...]:
    """ED and ES volumes of `subjects` phantom hearts, the kinds in turn (SICK_KINDS); the same for a seed."""
    from ..phantom import make_study

    volumes = []
    for index in range(subjects):
        kind = SICK_KINDS[index % len(SICK_KINDS)]
        rng = np.random.default_rng([int(seed), 7919, index])
        profile = phantom_protocol(rng)
        study = make_study(profile, seed=int(rng.integers(0, 2**31 - 1)), n_phases=PHANTOM_PHASES, heart=kind)
        spacing = study.spacing if rng.random() < 0.5 else (1.0, 1.0, study.spacing[2])
        for phase, frame in (("ED", study.ed_frame), ("ES", study.es_frame)):
            labels = study.labels[frame].copy()
            labels[labels == RIGHT_VENTRICLE] = 0  # the project segments the LV only
            volumes.append(LabelledVolume(f"phantom-{kind}-{index:03d}", "Philips", phase,
                                          ImageData(study.image[frame], Geometry(spacing)), labels))
    return tuple(volumes)


def wall_thickness_mm(labels: np.ndarray, spacing_xy) -> float:
    """Median LV wall thickness (mm) over the slices holding both blood pool and myocardium: per slice the
    width of the ring between two circles of the blood pool's and the blood pool + myocardium's areas.
    NaN where no slice has both. (No library measures this from a labelmap; written here.)"""
    pixel = float(spacing_xy[0]) * float(spacing_xy[1])
    widths = []
    for labelled in np.asarray(labels):
        pool, myo = float((labelled == BLOOD_POOL).sum()) * pixel, float((labelled == MYOCARDIUM).sum()) * pixel
        if pool > 0 and myo > 0:
            widths.append(np.sqrt((pool + myo) / np.pi) - np.sqrt(pool / np.pi))
    return float(np.median(widths)) if widths else float("nan")


def volume_traits(volumes: list[LabelledVolume]) -> dict[str, dict[str, float]]:
    """Per subject: its larger (ED) and smaller (ES) blood-pool voxel counts, their ratio, and the ED wall
    thickness in pixels of the stated spacing (spacing-free where headers are wrong, as in the M&Ms files)."""
    by_subject: dict[str, list[LabelledVolume]] = {}
    for volume in volumes:
        by_subject.setdefault(volume.subject, []).append(volume)
    traits = {}
    for subject, phases in by_subject.items():
        pools = [float((v.labels == BLOOD_POOL).sum()) for v in phases]
        ed = phases[int(np.argmax(pools))]
        traits[subject] = {"ed_pool": max(pools), "es_share": min(pools) / max(max(pools), 1.0),
                           "wall": wall_thickness_mm(ed.labels, (1.0, 1.0))}
    return traits


def unusual_subjects(volumes: list[LabelledVolume]) -> dict[str, list[str]]:
    """The subjects in the top fifth by wall thickness and by ED cavity, and the bottom fifth by ES share."""
    traits = volume_traits(volumes)
    subjects = sorted(traits)
    count = max(1, int(round(UNUSUAL_SHARE * len(subjects))))

    def extreme(key: str, largest: bool) -> list[str]:
        order = sorted(subjects, key=lambda s: (np.nan_to_num(traits[s][key], nan=-np.inf), s), reverse=largest)
        return sorted(order[:count])

    return {"thick_wall": extreme("wall", True), "large_ed_cavity": extreme("ed_pool", True),
            "small_es_share": extreme("es_share", False)}


def emphasis_weights(volumes: list[LabelledVolume], emphasis: float) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Sampling probability per slice (in slices_of(volumes) order): 1 + emphasis for the slices of unusual
    subjects and for slices whose cavity is tiny next to their myocardium, 1 otherwise; and the unusual
    subjects by trait."""
    unusual = unusual_subjects(volumes)
    flagged = set().union(*unusual.values())
    weights = []
    for volume in volumes:
        pool = (volume.labels == BLOOD_POOL).sum(axis=(1, 2)).astype(float)
        myo = (volume.labels == MYOCARDIUM).sum(axis=(1, 2)).astype(float)
        tiny = (pool > 0) & (pool < TINY_CAVITY_SHARE * (pool + myo))
        weights.append(np.where(tiny | (volume.subject in flagged), 1.0 + emphasis, 1.0))
    weights = np.concatenate(weights)
    return weights / weights.sum(), unusual


def check_emphasis(config) -> None:
    """Clear errors for emphasis and protocol settings that mean nothing."""
    from ..errors import InputError

    for name in ("phantom_fraction", "partial_volume", "zoom", "low_resolution", "off_centre"):
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise InputError(f"--{name.replace('_', '-')} is a probability between 0 and 1, got {getattr(config, name)}")
    if config.sick_emphasis < 0:
        raise InputError(f"--sick-emphasis must be 0 or more (0: no emphasis), got {config.sick_emphasis}")
    if config.phantom_fraction > 0 and config.phantom_subjects < 1:
        raise InputError(f"--phantom-subjects must be at least 1 with --phantom-fraction, got {config.phantom_subjects}")
    low, high = tuple(config.zoom_range) if len(config.zoom_range) == 2 else (0.0, 0.0)
    if not 0.0 < low <= high:
        raise InputError(f"--zoom-range is two factors, smallest first, e.g. 0.75,1.6; got {config.zoom_range}")


def training_emphasis(train_volumes, train_set, pseudo_volumes, config, log):
    """What the sick-heart emphasis and the through-plane blend need: the phantom sick hearts' slices, the
    sampling weight of each source slice, and each set's neighbour slices (None where not asked for)."""
    from .datasets import slices_of
    from .protocol import neighbour_indices

    check_emphasis(config)
    phantom_volumes = phantom_set = weights = None
    if config.phantom_fraction > 0:
        started = time.process_time()
        phantom_volumes = phantom_sick_volumes(config.phantom_subjects, config.seed)
        phantom_set = slices_of(phantom_volumes, context=config.context_slices)
        log(f"phantom sick hearts: {config.phantom_subjects} subjects ({phantom_set.images.shape[0]} slices), "
            f"{config.phantom_fraction:.0%} of each batch ({time.process_time() - started:.0f} CPU s to simulate)")
    if config.sick_emphasis > 0:
        weights, unusual = emphasis_weights(train_volumes, config.sick_emphasis)
        if weights.size != train_set.images.shape[0]:
            raise ValueError(f"{weights.size} weights for {train_set.images.shape[0]} training slices")
        log("drawn " + f"{1 + config.sick_emphasis:g}x as often: "
            + "; ".join(f"{trait.replace('_', ' ')}: {', '.join(subjects)}" for trait, subjects in unusual.items())
            + ", and slices whose cavity is under a quarter of cavity + myocardium")
    neighbours = None
    if config.partial_volume > 0:
        neighbours = [neighbour_indices([v.image.array.shape[0] for v in group])
                      for group in (train_volumes, pseudo_volumes, phantom_volumes) if group]  # as CropSampler.sets
    return phantom_set, weights, neighbours
