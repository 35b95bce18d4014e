"""A first-time user's data: the project's phantom cine, made on demand (no download, no patient data).

Slicer's Sample Data module lists it (the module registers :func:`load_and_show` as the
sample's custom loader, at startup); scripts and the web page can call it directly. The phantom is a
simulated short-axis bSSFP cine of one subject on one vendor's scanner, in an oblique
short-axis geometry, loaded as a volume sequence with a browser as Slicer loads a cine.
"""
from __future__ import annotations

from .layout import show_volume
from .loading import LoadedImage, add_image

SAMPLE_CATEGORY = "Unet-GAN Cardiac Segmentation"
SAMPLE_NAME = "UnetGAN phantom cine (GE)"
SAMPLE_VENDOR, SAMPLE_SEED, SAMPLE_PHASES, SAMPLE_SLICES = "GE", 0, 12, 8


def load_phantom_cine(scene=None, vendor: str = SAMPLE_VENDOR, seed: int = SAMPLE_SEED, n_phases: int = SAMPLE_PHASES,
                      n_slices: int = SAMPLE_SLICES, matrix: int | None = None) -> LoadedImage:
    """Simulate the phantom cine and add it to the scene as a volume sequence (proxy, sequence, browser)."""
    from unetgan.io.images import Geometry
    from unetgan.phantom import make_study

    study = make_study(vendor, seed=seed, n_phases=n_phases, n_slices=n_slices, matrix=matrix)
    geometry = Geometry(study.spacing, study.origin, study.direction)
    return add_image(study.image, geometry, f"{vendor} phantom cine", scene, study.trigger_times_ms)


def load_and_show(scene=None) -> LoadedImage:
    """What the Sample Data entry does: load the phantom cine and show it in the slice views (their
    background, fitted), as Slicer's own samples are shown once loaded."""
    loaded = load_phantom_cine(scene)
    show_volume(loaded.volume)
    return loaded
