"""Scanner protocol profiles: JSON files that say how a vendor's cine is acquired.

A profile is a flat JSON object (see docs/phantom.md for the meaning of each key).
The shipped ones live in `profiles/<vendor>.json`; a user adds a scanner by
writing another file and passing its path wherever a vendor name is accepted.
"""
from __future__ import annotations

import copy
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Callable

VENDORS = ("Philips", "Siemens", "GE")

FORMAT_VERSION = 1
KSPACE_FILTERS = ("none", "hamming", "fermi", "tukey")
FOV_MASKS = ("none", "circle")


def _number(low: float, high: float, integer: bool = False) -> Callable[[str, Any], Any]:
    """A checker for a number in [low, high] (an int when `integer`)."""

    def check(key: str, value: Any):
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        # ints are compared exactly (math.isfinite would overflow on a huge one), floats must be finite
        if (isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value))
                or not low <= value <= high):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"profile key {key!r} must be {kind} in [{low:g}, {high:g}], got {value!r}")
        return int(value) if integer else float(value)

    return check


def _pair(low: float, high: float, integer: bool) -> Callable[[str, Any], Any]:
    element = _number(low, high, integer)

    def check(key: str, value: Any):
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"profile key {key!r} must be a list of two values [rows, cols], got {value!r}")
        return [element(f"{key}[{i}]", v) for i, v in enumerate(value)]

    return check


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"profile key {key!r} must be a non-empty string, got {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ValueError(f"profile key {key!r} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _kspace_filter(key: str, value: Any) -> dict:
    """{"type": "none"} | {"type": "hamming", "strength": s} | {"type": "fermi", "radius": r, "width": w}
    | {"type": "tukey", "alpha": a}; fractions are of the acquired k-space half-width."""
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"profile key {key!r} must be an object with a 'type' ({', '.join(KSPACE_FILTERS)}), got {value!r}")
    kind = _choice(KSPACE_FILTERS)(f"{key}.type", value["type"])
    params = {
        "none": {},
        "hamming": {"strength": _number(0.0, 1.0)},
        "fermi": {"radius": _number(0.1, 2.0), "width": _number(0.001, 0.5)},
        "tukey": {"alpha": _number(0.0, 1.0)},
    }[kind]
    unknown = sorted(set(value) - set(params) - {"type"}, key=str)
    if unknown:
        raise ValueError(f"profile key '{key}.{unknown[0]}' is not a parameter of a {kind} filter (expected {sorted(params) or 'none'})")
    out = {"type": kind}
    for name, check in params.items():
        if name not in value:
            raise ValueError(f"profile key '{key}.{name}' is missing (needed by a {kind} filter)")
        out[name] = check(f"{key}.{name}", value[name])
    return out


# key -> (checker, default); default None means required.
SCHEMA: dict[str, tuple[Callable[[str, Any], Any], Any]] = {
    "format_version": (_number(1, FORMAT_VERSION, integer=True), FORMAT_VERSION),
    "vendor": (_text, None),
    "model": (_text, "unknown"),
    "description": (lambda key, value: str(value), ""),
    "field_strength_T": (_number(1.5, 3.0), None),
    "flip_angle_deg": (_number(1.0, 120.0), None),
    "TR_ms": (_number(1.5, 10.0), None),
    "TE_ms": (_number(0.3, 5.0), None),
    "matrix": (_pair(16, 1024, integer=True), None),
    "recon_matrix": (_pair(16, 1024, integer=True), None),
    "pixel_spacing_mm": (_pair(0.2, 10.0, integer=False), None),
    "slice_thickness_mm": (_number(1.0, 20.0), None),
    "slice_gap_mm": (_number(0.0, 20.0), None),
    "n_slices": (_number(1, 40, integer=True), None),
    "n_phases": (_number(2, 100, integer=True), None),
    "snr": (_number(1.0, 1000.0), None),
    "kspace_filter": (_kspace_filter, {"type": "none"}),
    "coil_shading_strength": (_number(0.0, 2.0), None),
    "b0_inhomogeneity_hz": (_number(0.0, 500.0), 0.0),
    "b1_inhomogeneity": (_number(0.0, 0.5), 0.0),
    "intensity_scale": (_number(1e-3, 1e6), None),
    "intensity_scale_jitter": (_number(0.0, 2.0), 0.0),
    "bits_stored": (_number(8, 16, integer=True), None),
    "fov_mask": (_choice(FOV_MASKS), "none"),
}


def validate_profile(raw: dict, source: str = "profile") -> dict:
    """A checked, complete copy of a profile dict; ValueError naming the first bad key."""
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: a profile must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(SCHEMA), key=str)
    if unknown:
        raise ValueError(f"{source}: unknown profile key {unknown[0]!r} (known keys: {', '.join(SCHEMA)})")
    profile = {}
    for key, (check, default) in SCHEMA.items():
        if key not in raw:
            if default is None:
                raise ValueError(f"{source}: profile key {key!r} is missing")
            profile[key] = copy.deepcopy(default)
            continue
        try:
            profile[key] = check(key, raw[key])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
    # Relations between keys.
    for axis, (acquired, recon) in enumerate(zip(profile["matrix"], profile["recon_matrix"])):
        if acquired > recon:
            raise ValueError(f"{source}: profile key 'matrix' ({profile['matrix']}) must not exceed 'recon_matrix' "
                             f"({profile['recon_matrix']}) on axis {axis}: the acquired k-space is zero-filled to the recon matrix")
    if profile["TE_ms"] >= profile["TR_ms"]:
        raise ValueError(f"{source}: profile key 'TE_ms' ({profile['TE_ms']}) must be shorter than 'TR_ms' ({profile['TR_ms']})")
    return profile


def profile_path(vendor: str) -> Path:
    """The shipped profile file of a vendor name (case-insensitive)."""
    name = vendor.strip().lower()
    for known in VENDORS:
        if known.lower() == name:
            return Path(str(resources.files(__package__).joinpath("profiles", f"{name}.json")))
    raise ValueError(f"unknown vendor {vendor!r}: choose one of {', '.join(VENDORS)} or give a profile JSON file")


def load_profile(source: str | Path | dict) -> dict:
    """A validated profile from a vendor name, a JSON file path or a dict."""
    if isinstance(source, dict):
        return validate_profile(source)
    text = str(source)
    path = Path(text)
    if not (text.lower().endswith(".json") or path.is_file()):
        path = profile_path(text)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"profile file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path.name}: not valid JSON ({err})") from None
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path.name}: not valid JSON ({type(err).__name__}: {str(err)[:80]})") from None
    return validate_profile(raw, source=path.name)


def derived_geometry(profile: dict) -> dict:
    """Sizes implied by a profile: field of view, acquired resolution, slice spacing (all mm)."""
    rows, cols = profile["recon_matrix"]
    row_spacing, col_spacing = profile["pixel_spacing_mm"]
    fov = (rows * row_spacing, cols * col_spacing)
    return {
        "fov_mm": fov,
        "acquired_resolution_mm": (fov[0] / profile["matrix"][0], fov[1] / profile["matrix"][1]),
        "slice_spacing_mm": profile["slice_thickness_mm"] + profile["slice_gap_mm"],
    }


def with_overrides(profile: dict, n_phases: int | None = None, n_slices: int | None = None,
                   matrix: int | tuple[int, int] | None = None) -> dict:
    """A copy of a profile with other numbers of phases or slices, or another recon matrix.

    `matrix` is [rows, cols], or one number for the larger dimension (the other keeps the
    profile's aspect ratio). The field of view stays (the anatomy keeps its size in mm):
    the pixel spacing changes and the acquired matrix is scaled by the same factor.
    """
    out = copy.deepcopy(profile)
    if n_phases is not None:
        out["n_phases"] = int(n_phases)
    if n_slices is not None:
        out["n_slices"] = int(n_slices)
    if matrix is not None:
        recon = profile["recon_matrix"]
        if isinstance(matrix, (int, float)):
            new_recon = [max(16, int(round(n * matrix / max(recon)))) for n in recon]
        else:
            new_recon = [int(m) for m in matrix]
        fov = derived_geometry(profile)["fov_mm"]
        out["matrix"] = [max(8, min(n, int(round(a * n / r))))
                         for a, r, n in zip(profile["matrix"], recon, new_recon)]
        out["recon_matrix"] = new_recon
        out["pixel_spacing_mm"] = [f / n for f, n in zip(fov, new_recon)]
    return validate_profile(out, source=f"{profile['vendor']} profile with overrides")
