"""Property-based tests (hypothesis) of the readers and of the preprocessing round trips.

Each reader, whatever it is given, either returns what it read or raises the one error type
the command line turns into an `ERROR:` line (InputError; ValueError for phantom profiles),
with a message that names the problem: never a KeyError, TypeError or other traceback.
Examples are few (a few seconds per test); every test writes only to its own temporary folder.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from unetgan.errors import InputError
from unetgan.evaluation import dice
from unetgan.io.images import Geometry, read_image, write_image
from unetgan.io.manifest import REQUIRED_COLUMNS, ManifestItem, read_manifest
from unetgan.io.sunnybrook import read_contour
from unetgan.phantom import make_study, write_study
from unetgan.phantom.profiles import SCHEMA, load_profile, validate_profile
from unetgan.preprocess import SliceGrid, normalise_intensity, prepare_labels

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)  # any text a file can hold


# ---------------------------------------------------------------- manifests

CELLS = st.one_of(
    st.sampled_from(["img.nii.gz", "lab.nii.gz", "missing.nii.gz", "", "Philips", "GE", "ED", "train", "sub dir/x",
                     "a,b", 'q"uote', "line\nbreak", "\x00nul", "x" * 300]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
)


def _manifest_folder() -> tempfile.TemporaryDirectory:
    folder = tempfile.TemporaryDirectory()
    (Path(folder.name) / "img.nii.gz").write_bytes(b"")  # the reader checks existence only
    (Path(folder.name) / "lab.nii.gz").write_bytes(b"")
    return folder


def _check_manifest(path: Path, **options):
    """The property: a list of items whose files exist, or an InputError that says where and what."""
    try:
        items = read_manifest(path, **options)
    except InputError as err:
        message = str(err)
        assert message.startswith(("manifest.csv", "manifest not found")), message
        assert re.search(r"line \d+|missing column|no rows match|not UTF-8", message), message
        return None
    assert items and all(isinstance(i, ManifestItem) and i.image.exists() for i in items)
    assert all(i.label is None or i.label.exists() for i in items)
    return items


@FAST
@given(text=TEXT)
def test_manifest_of_any_text(text):
    with _manifest_folder() as folder:
        path = Path(folder) / "manifest.csv"
        path.write_text(text, encoding="utf-8")
        _check_manifest(path)
        _check_manifest(path, vendors=["GE"], splits=["train"], require_labels=True)


@FAST
@given(data=st.binary(max_size=200))
def test_manifest_of_any_bytes(data):
    with _manifest_folder() as folder:
        path = Path(folder) / "manifest.csv"
        path.write_bytes(b"subject,vendor,phase,image,label,split\n" + data)
        _check_manifest(path)


@FAST
@given(header=st.permutations(REQUIRED_COLUMNS + ("extra",)), drop=st.sets(st.sampled_from(REQUIRED_COLUMNS), max_size=1),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=9), max_size=6), bom=st.booleans())
def test_manifest_rows(header, drop, rows, bom):
    columns = [c for c in header if c not in drop]
    with _manifest_folder() as folder:
        path = Path(folder) / "manifest.csv"
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
        items = _check_manifest(path)
        _check_manifest(path, vendors=["GE", "philips"], subjects={"s1", ""})  # filters read every row too
        if drop:
            with pytest.raises(InputError, match=f"missing column.*{next(iter(drop))}"):
                read_manifest(path)
        elif items is not None:  # a well-formed manifest: one item per row, in order
            by_name = [dict(zip(columns, row)) for row in rows if row]  # csv skips only empty lines
            assert [i.subject for i in items] == [r["subject"] for r in by_name]
            assert [i.image.name for i in items] == [r["image"] for r in by_name]


def test_manifest_line_numbers_and_messages(tmp_path):
    (tmp_path / "img.nii.gz").write_bytes(b"")
    path = tmp_path / "manifest.csv"
    cases = {
        "s1,GE,ED,img.nii.gz\n": r"line 3: 4 of 6 values, missing label, split",
        "s1,GE,ED,img.nii.gz,,train,surplus\n": r"line 3: 7 values for 6 columns",
        "s1,GE,ED,img.nii.gz,nolabel.nii.gz,train\n": r"line 3: label not found: nolabel.nii.gz",
        "s1,GE,ED,,,train\n": r"line 3: empty image path",
        "s1,GE,ED,im\x00g.nii.gz,,train\n": r"line 3: unusable path",
        "s1,GE,ED," + "x" * 5000 + ",,train\n": r"line 3: (unusable path|image not found)",
    }
    for row, message in cases.items():
        path.write_text("subject,vendor,phase,image,label,split\ns1,GE,ES,img.nii.gz,,train\n" + row, encoding="utf-8")
        with pytest.raises(InputError, match=message):
            read_manifest(path)
    path.write_bytes(b"subject,vendor,phase,image,label,split\ns1,GE,ED,\xff.nii.gz,,train\n")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_manifest(path)
    path.write_text("\ufeffsubject,vendor,phase,image,label,split\ns1,GE,ED,img.nii.gz,,train\n", encoding="utf-8")
    assert read_manifest(path)[0].subject == "s1"  # a spreadsheet's byte-order mark is accepted
    path.write_text("subject,vendor,phase,image,label,split\ns1,GE,ED,img.nii.gz,,train\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2: s1 ED has no label"):
        read_manifest(path, require_labels=True)


# ---------------------------------------------------------------- contour files

NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6)).map(str)
GOOD_LINE = st.tuples(st.floats(-500, 500), st.floats(-500, 500)).map(lambda p: f"{p[0]} {p[1]}")
ANY_LINE = st.one_of(GOOD_LINE, GOOD_LINE, st.lists(NUMBER, max_size=3).map(" ".join), st.just(""), st.just("   "),
                     st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=10))


def _good(line: str):
    """The documented rule: exactly two finite numbers (blank lines are skipped)."""
    parts = line.split()
    try:
        x, y = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        return None
    return (x, y) if x is not None and np.isfinite(x) and np.isfinite(y) else None


@FAST
@given(lines=st.lists(ANY_LINE, max_size=12), ending=st.sampled_from(["\n", "\r\n"]))
def test_contour_lines(lines, ending):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "IM-0001-0048-icontour-manual.txt"
        path.write_bytes(ending.join(lines).encode("utf-8"))
        bad = [n for n, line in enumerate(lines, start=1) if line.strip() and _good(line) is None]
        points = [_good(line) for line in lines if line.strip()]
        if bad:
            with pytest.raises(InputError, match=rf"{path.name} line {bad[0]}: expected 'x y' numbers"):
                read_contour(path)
        elif len(points) < 3:
            with pytest.raises(InputError, match=f"needs at least 3 points, found {len(points)}"):
                read_contour(path)
        else:
            np.testing.assert_array_equal(read_contour(path), np.array(points))


@FAST
@given(data=st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=100)))
def test_contour_of_anything(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "IM-0001-0048-ocontour-manual.txt"
        path.write_bytes(data)
        try:
            points = read_contour(path)
        except InputError as err:
            assert str(err).startswith(path.name) and re.search(r"line \d+|at least 3 points|not a text file", str(err))
        else:
            assert points.ndim == 2 and points.shape[1] == 2 and points.shape[0] >= 3 and np.isfinite(points).all()


# ---------------------------------------------------------------- scanner profiles

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([10**400, -(10**400), 2**1100])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
BASE_PROFILE = load_profile("GE")


def _near(value):
    """Plausible-looking changes of a valid value: scaled numbers, edited lists, other filter types."""
    if isinstance(value, bool) or value is None:
        return st.just(value)
    if isinstance(value, (int, float)):
        return (st.sampled_from([0, -1, 0.5, 2, 10, 1000]).map(lambda f: type(value)(value * f))
                | st.sampled_from([10**400, -(10**400), float("nan"), float("inf"), str(value)]))
    if isinstance(value, list):
        return st.lists(st.integers(-5, 3000), min_size=0, max_size=3)
    if isinstance(value, dict):
        return st.fixed_dictionaries({"type": st.sampled_from(["none", "hamming", "fermi", "tukey", "box"])},
                                     optional={"strength": st.floats(-1, 2), "radius": st.floats(0, 3),
                                               "width": st.floats(0, 1), "alpha": st.floats(-1, 2)})
    return st.sampled_from(["", " ", "Acme", "circle", "square"])


@st.composite
def mutated_profiles(draw):
    """A valid profile with 1-2 keys deleted, replaced (by anything, or by a near-miss) or added."""
    profile, touched = copy.deepcopy(BASE_PROFILE), []
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(SCHEMA)))
        operation = draw(st.sampled_from(["delete", "anything", "near", "unknown"]))
        if operation == "delete":
            profile.pop(key, None)
        elif operation == "anything":
            profile[key] = draw(JSON_VALUES)
        elif operation == "near":
            profile[key] = draw(_near(BASE_PROFILE[key]))
        else:
            key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in SCHEMA))
            profile[key] = draw(JSON_VALUES)
        touched.append(key)
    return profile, touched


def _check_profile_outcome(call, touched):
    try:
        profile = call()
    except ValueError as err:  # the phantom CLI prints it as one ERROR line
        message = str(err)
        assert any(repr(key) in message or f"'{key}." in message or f"'{key}[" in message for key in touched), message
        return None
    assert set(profile) == set(SCHEMA)
    json.dumps(profile, allow_nan=False)  # complete, plain and finite
    return profile


@FAST
@given(case=mutated_profiles())
def test_profile_mutations_are_validated_or_named(case):
    profile, touched = case
    _check_profile_outcome(lambda: validate_profile(profile), touched)


@FAST
@given(case=mutated_profiles())
def test_profile_files_give_the_same_outcome(case):
    profile, touched = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scanner.json"
        path.write_text(json.dumps(profile), encoding="utf-8")  # NaN and Infinity as JSON writes them
        from_dict = _check_profile_outcome(lambda: validate_profile(copy.deepcopy(profile)), touched)
        from_file = _check_profile_outcome(lambda: load_profile(path), touched)
        assert (from_dict is None) == (from_file is None)


@FAST
@given(data=st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=60)))
def test_profile_files_of_anything(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scanner.json"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=r"scanner\.json: (not valid JSON|a profile must be|profile key|unknown)"):
            load_profile(path)


def test_huge_numbers_are_refused_by_name():
    """Found by the fuzzing above: a huge integer made math.isfinite overflow (OverflowError, a traceback)."""
    with pytest.raises(ValueError, match="'TR_ms' must be a number"):
        validate_profile({**BASE_PROFILE, "TR_ms": 10**400})
    with pytest.raises(ValueError, match=r"'matrix\[0\]' must be an integer"):
        validate_profile({**BASE_PROFILE, "matrix": [2**80, 192]})


# ---------------------------------------------------------------- DICOM sorting

@pytest.fixture(scope="module")
def dicom_cine(tmp_path_factory):
    """A small GE cine as DICOM (3 slices x 3 phases), and how the reader sees it."""
    folder = write_study(make_study("GE", seed=4, n_phases=3, n_slices=3, matrix=48), tmp_path_factory.mktemp("dicom"),
                         fmt="dicom", name="ge")["dicom_dir"]
    files = sorted(folder.glob("*.dcm"))
    return files, read_image(folder)


NAME = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_dicom_order_comes_from_the_tags_only(dicom_cine, data):
    """Any file names, any sub-folders, any InstanceNumbers: the same cine, geometry and trigger times."""
    files, reference = dicom_cine
    names = data.draw(st.lists(NAME, min_size=len(files), max_size=len(files), unique_by=str.lower))
    suffixes = data.draw(st.lists(st.sampled_from([".dcm", ".DCM", ".ima", ""]), min_size=len(files), max_size=len(files)))
    nested = data.draw(st.lists(st.booleans(), min_size=len(files), max_size=len(files)))
    instances = data.draw(st.none() | st.permutations(range(1, len(files) + 1)))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "cine"
        for k, source in enumerate(files):
            target = (root / "sub" if nested[k] else root) / f"{names[k]}{suffixes[k]}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if instances is None:
                shutil.copyfile(source, target)
            else:
                ds = pydicom.dcmread(source)
                ds.InstanceNumber = instances[k]
                ds.save_as(target)
        image = read_image(root)
        np.testing.assert_array_equal(image.array, reference.array)
        assert image.geometry == reference.geometry
        assert image.trigger_times_ms == reference.trigger_times_ms
        # the [slice][phase] grid points at the files that hold those images
        for z, row in enumerate(image.meta["files"]):
            for t, name in enumerate(row):
                np.testing.assert_array_equal(pydicom.dcmread(name).pixel_array.astype(np.float32), reference.array[t, z])


# ---------------------------------------------------------------- preprocessing and geometry round trips

@st.composite
def rotations(draw):
    """A random rotation (unit quaternion), possibly with one axis flipped (det -1, as LPS/RAS flips give)."""
    q = np.array(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    assume(np.linalg.norm(q) > 0.1)
    w, x, y, z = q / np.linalg.norm(q)
    matrix = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                       [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                       [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    if draw(st.booleans()):
        matrix[:, 2] *= -1
    return tuple(matrix.ravel())


@settings(max_examples=30, deadline=None)
@given(direction=rotations(), spacing=st.tuples(st.floats(0.3, 5), st.floats(0.3, 5), st.floats(0.5, 40)),
       origin=st.tuples(*[st.floats(-500, 500)] * 3), suffix=st.sampled_from([".nrrd", ".nii.gz", ".mha"]),
       cine=st.booleans())
def test_any_oblique_geometry_survives_writing_and_reading(direction, spacing, origin, suffix, cine):
    geometry = Geometry(spacing, origin, direction)
    shape = (2, 3, 6, 5) if cine else (3, 6, 5)
    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    with tempfile.TemporaryDirectory() as folder:
        back = read_image(write_image(array, geometry, Path(folder) / f"x{suffix}"))
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.geometry.spacing, spacing, rtol=1e-6)
    np.testing.assert_allclose(back.geometry.origin, origin, atol=1e-3)  # NIfTI stores float32
    np.testing.assert_allclose(back.geometry.direction, direction, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 100), offset=st.floats(-1000, 1000))
def test_normalisation_ignores_the_vendors_intensity_units(seed, scale, offset):
    volume = np.random.default_rng(seed).gamma(2.0, 50.0, (2, 40, 40)).astype(np.float32)
    reference = normalise_intensity(volume)
    assert reference.min() == 0.0 and reference.max() == 1.0
    np.testing.assert_allclose(normalise_intensity(volume * scale + offset), reference, atol=2e-3)


@st.composite
def ring_slices(draw):
    """A blood pool inside an 8 mm myocardial ring, off centre, wholly inside the slice and the network's crop."""
    spacing = draw(st.floats(0.7, 2.5))
    radius = draw(st.floats(12, 35))
    smallest = int(np.ceil((radius + 10) / (0.35 * spacing)))  # the ring stays inside with a 15 % shift
    largest = max(smallest, min(300, int(2 * (140 - radius - 10) / spacing / 1.3)))  # ... and inside the crop
    rows, cols = draw(st.integers(smallest, largest)), draw(st.integers(smallest, largest))
    dy, dx = draw(st.floats(-0.15, 0.15)), draw(st.floats(-0.15, 0.15))
    return rows, cols, spacing, radius, dy, dx


@settings(max_examples=30, deadline=None)
@given(case=ring_slices())
def test_label_round_trip_onto_the_network_grid_and_back(case):
    rows, cols, spacing, radius_mm, dy, dx = case
    grid = SliceGrid.for_spacing((rows, cols), (spacing, spacing))
    yy, xx = np.mgrid[0:rows, 0:cols]
    r = np.hypot((yy - rows * (0.5 + dy)) * spacing, (xx - cols * (0.5 + dx)) * spacing)
    labels = np.where(r < radius_mm, 1, np.where(r < radius_mm + 8, 2, 0)).astype(np.uint8)[None]
    network = prepare_labels(labels, grid)
    onehot = torch.nn.functional.one_hot(network, 3).permute(0, 3, 1, 2).float()
    back = grid.restore(onehot, fill=torch.tensor([1.0, 0, 0])).argmax(1).numpy()
    for value in (1, 2):
        assert dice(back[0] == value, labels[0] == value) > 0.9
