"""The multi-vendor cine phantom: anatomy, motion, physics, vendors, files, CLI.

Studies are small (few phases/slices, reduced matrix) so the file runs in well under a
minute; each check compares real measured values, not just shapes.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from scipy import ndimage

from unetgan.phantom import VENDORS, load_profile, make_study, write_dataset, write_study
from unetgan.phantom import cli as phantom_cli
from unetgan.phantom.acquisition import acquire, kspace_window
from unetgan.phantom.profiles import profile_path
from unetgan.phantom.signal import bssfp_on_resonance, bssfp_signal

SMALL = dict(n_phases=6, n_slices=5, matrix=128)


@pytest.fixture(scope="module")
def studies():
    """The same subject (seed 4) on each vendor, plus a rescan on Philips (new noise, same heart)."""
    out = {vendor: make_study(vendor, seed=4, **SMALL) for vendor in VENDORS}
    rescan = load_profile("Philips")
    rescan["description"] = "the same protocol run again"  # another scan seed, same anatomy seed
    out["Philips rescan"] = make_study(rescan, seed=4, **SMALL)
    return out


def _normalised_histogram(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [1, 99])
    counts, _ = np.histogram(np.clip((image - low) / (high - low), 0, 1), bins=50, range=(0, 1))
    return counts / counts.sum()


def _mid_slices(study) -> range:
    z = study.labels.shape[1]
    return range(1, z - 1)


# ---------------------------------------------------------------- study contents

@pytest.mark.parametrize("vendor", VENDORS)
def test_study_arrays_geometry_and_labels(studies, vendor):
    study = studies[vendor]
    profile = study.meta["profile"]
    t, z = SMALL["n_phases"], SMALL["n_slices"]
    assert study.image.dtype == np.float32 and study.labels.dtype == np.uint8
    assert study.image.shape == study.labels.shape == (t, z, *profile["recon_matrix"])
    assert max(profile["recon_matrix"]) == SMALL["matrix"]
    # Stored scanner integers: non-negative, whole, within the bit depth, not normalised.
    assert study.image.min() >= 0 and np.all(study.image == np.round(study.image))
    assert study.image.max() <= 2 ** profile["bits_stored"] - 1
    assert study.image.max() > 50
    assert set(np.unique(study.labels)) == {0, 1, 2, 3}
    for frame in range(t):
        for s in _mid_slices(study):
            present = set(np.unique(study.labels[frame, s]))
            assert {1, 2} <= present, f"frame {frame} slice {s} lacks LV labels: {present}"
    # Geometry: FOV kept by the matrix override, slice spacing = thickness + gap, orthonormal right-handed axes.
    fov = np.array(profile["recon_matrix"]) * np.array(profile["pixel_spacing_mm"])
    full = load_profile(vendor)
    assert np.allclose(fov, np.array(full["recon_matrix"]) * np.array(full["pixel_spacing_mm"]))
    assert study.spacing[0] == pytest.approx(profile["pixel_spacing_mm"][1])
    assert study.spacing[2] == pytest.approx(full["slice_thickness_mm"] + full["slice_gap_mm"])
    direction = np.array(study.direction).reshape(3, 3)
    assert np.allclose(direction.T @ direction, np.eye(3), atol=1e-9)
    assert np.linalg.det(direction) == pytest.approx(1.0)
    assert len(study.origin) == 3
    # Timing: ED first, ES at 35-40% of the cycle (nearest frame), trigger times increasing.
    assert study.ed_frame == 0
    assert 0.25 * t <= study.es_frame <= 0.5 * t
    assert len(study.trigger_times_ms) == t and np.all(np.diff(study.trigger_times_ms) > 0)
    assert study.vendor == vendor


@pytest.mark.parametrize("vendor", ["Philips", "GE"])
def test_myocardium_is_a_ring_around_the_blood_pool(studies, vendor):
    study = studies[vendor]
    for frame in (study.ed_frame, study.es_frame):
        for s in _mid_slices(study):
            labels = study.labels[frame, s]
            pool, myo = labels == 1, labels == 2
            # The pool is enclosed: filling the myocardium's hole covers it, and the pool's
            # 4-neighbours are only pool or myocardium (never background or RV).
            assert np.all(ndimage.binary_fill_holes(myo)[pool])
            neighbours = ndimage.binary_dilation(pool) & ~pool
            assert set(np.unique(labels[neighbours])) <= {1, 2}
            # A ring, not a disc: it has a hole as large as the pool.
            assert ndimage.binary_fill_holes(myo).sum() >= myo.sum() + pool.sum() * 0.99
            # And the pool is bright, the myocardium dark, in the image itself.
            image = study.image[frame, s]
            assert np.median(image[pool]) > 1.8 * np.median(image[myo])


def test_cardiac_motion(studies):
    for vendor in VENDORS:
        study = studies[vendor]
        volumes = (study.labels == 1).sum(axis=(1, 2, 3))
        myo = (study.labels == 2).sum(axis=(1, 2, 3))
        assert volumes[study.ed_frame] == volumes.max()
        assert volumes[study.es_frame] == volumes.min()
        assert volumes[study.es_frame] < 0.7 * volumes[study.ed_frame]  # ejection
        # Myocardium roughly conserved (it thickens as the cavity shrinks; the base leaves the stack).
        assert 0.8 < myo[study.es_frame] / myo[study.ed_frame] < 1.2
        # The wall thickens: in a mid slice the myocardium at ES is thicker (area / perimeter).
        s = study.labels.shape[1] // 2
        thickness = []
        for frame in (study.ed_frame, study.es_frame):
            ring = study.labels[frame, s] == 2
            outline = ring & ~ndimage.binary_erosion(ring)
            thickness.append(ring.sum() / outline.sum())
        assert thickness[1] > 1.1 * thickness[0]


def test_apex_is_smaller_than_base():
    study = make_study("Philips", seed=1, n_phases=2, n_slices=9, matrix=96)
    pool = (study.labels[study.ed_frame] == 1).sum(axis=(1, 2))
    epicardium = np.isin(study.labels[study.ed_frame], (1, 2)).sum(axis=(1, 2))
    with_lv = np.flatnonzero(epicardium)
    assert len(with_lv) >= 6
    assert epicardium[with_lv[-1]] < 0.5 * epicardium[with_lv[:3]].max()
    assert pool[with_lv[-1]] < pool[with_lv[1]]


def test_same_seed_same_study_other_seed_other_subject():
    a = make_study("Siemens", seed=7, n_phases=3, n_slices=3, matrix=80)
    b = make_study("Siemens", seed=7, n_phases=3, n_slices=3, matrix=80)
    c = make_study("Siemens", seed=8, n_phases=3, n_slices=3, matrix=80)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.origin == b.origin and a.trigger_times_ms == b.trigger_times_ms
    assert not np.array_equal(a.labels, c.labels)
    assert (a.labels == 1).sum() != (c.labels == 1).sum()
    assert np.abs(a.image - c.image).mean() > 5.0
    assert a.trigger_times_ms != c.trigger_times_ms  # another heart rate


def test_variety_across_subjects():
    """Sizes, positions and orientations of the heart vary across seeds."""
    pools, centres = [], []
    for seed in range(5):
        study = make_study("Philips", seed=seed, n_phases=2, n_slices=3, matrix=64)
        pool = study.labels[0] == 1
        pools.append(pool.sum())
        centres.append(np.argwhere(pool[1]).mean(axis=0))
    assert np.std(pools) / np.mean(pools) > 0.05
    assert np.ptp(np.array(centres), axis=0).max() > 3  # pixels


# ---------------------------------------------------------------- vendors

def test_vendors_differ_beyond_intensity_normalisation(studies):
    """Same heart, different scanners: the normalised histograms differ far more than a rescan's."""
    histograms = {name: _normalised_histogram(s.image[s.ed_frame]) for name, s in studies.items()}

    def distance(a, b):
        return 0.5 * np.abs(histograms[a] - histograms[b]).sum()

    rescan = distance("Philips", "Philips rescan")
    assert rescan < 0.08
    for a, b in (("Philips", "Siemens"), ("Philips", "GE"), ("Siemens", "GE")):
        assert distance(a, b) > 2.5 * rescan, (a, b, distance(a, b), rescan)
    # The same heart: identical labels on a rescan, the same LV volume (mL) on another scanner's grid.
    assert np.array_equal(studies["Philips"].labels, studies["Philips rescan"].labels)
    volumes = {v: (s.labels[s.ed_frame] == 1).sum() * np.prod(s.spacing) / 1000 for v, s in studies.items()}
    assert volumes["GE"] == pytest.approx(volumes["Philips"], rel=0.15)
    assert volumes["Siemens"] == pytest.approx(volumes["Philips"], rel=0.15)


def test_vendor_contrast_follows_the_protocol(studies):
    """bSSFP blood/myocardium contrast grows with the flip angle: GE (45 deg) < Philips (60 deg)."""

    def contrast(study):
        image, labels = study.image[study.ed_frame], study.labels[study.ed_frame]
        return np.median(image[labels == 1]) / np.median(image[labels == 2])

    assert contrast(studies["GE"]) < 0.95 * contrast(studies["Philips"])
    # Scanner units differ too (no common scale): median blood pool by vendor.
    blood = [np.median(studies[v].image[studies[v].labels == 1]) for v in VENDORS]
    assert max(blood) / min(blood) > 1.3


def test_circular_field_of_view_and_shading(studies):
    ge = studies["GE"].image
    assert np.all(ge[:, :, 0, 0] == 0) and np.all(ge[:, :, -1, -1] == 0)  # blanked corners
    assert studies["Siemens"].image[:, :, 0, 0].mean() > 0  # noise floor, no mask


# ---------------------------------------------------------------- physics

def _bloch_steady_state(t1, t2, flip_deg, tr, te, off_resonance_hz):
    """Steady state by solving the Bloch matrix recursion (RF about x, alternating phase as +pi precession)."""
    a = np.deg2rad(flip_deg)
    e1, e2 = np.exp(-tr / t1), np.exp(-tr / t2)
    rf = np.array([[1, 0, 0], [0, np.cos(a), np.sin(a)], [0, -np.sin(a), np.cos(a)]])

    def precession(phi):
        return np.array([[np.cos(phi), -np.sin(phi), 0], [np.sin(phi), np.cos(phi), 0], [0, 0, 1]])

    theta = 2 * np.pi * off_resonance_hz * tr * 1e-3 + np.pi
    relax = np.diag([e2, e2, e1]) @ precession(theta)
    after_rf = np.linalg.solve(np.eye(3) - rf @ relax, rf @ np.array([0, 0, 1 - e1]))
    at_te = precession(theta * te / tr) @ (after_rf * np.array([np.exp(-te / t2), np.exp(-te / t2), 1]))
    return at_te[0] + 1j * at_te[1]


def test_bssfp_signal_matches_bloch_simulation():
    cases = [(1550, 250, 60, 2.9, 1.45), (1000, 50, 70, 3.2, 1.4), (290, 120, 45, 3.35, 1.53)]
    offsets = [0.0, 40.0, -217.0, 150.0]
    for t1, t2, flip, tr, te in cases:
        ours = np.array([bssfp_signal(1.0, t1, t2, flip, tr, te, f) for f in offsets])
        bloch = np.array([_bloch_steady_state(t1, t2, flip, tr, te, f) for f in offsets])
        assert np.allclose(np.abs(ours), np.abs(bloch), rtol=1e-6)
        # Defined up to one global phase: relative phases must agree.
        assert np.allclose(ours * np.conj(ours[0]) / np.abs(ours[0]), bloch * np.conj(bloch[0]) / np.abs(bloch[0]), atol=1e-6)
    # Banding: the signal collapses half a cycle (1/(2 TR)) off resonance.
    tr = 3.0
    assert abs(bssfp_signal(1.0, 1550, 250, 60, tr, 1.5, 500.0 / tr)) < 0.1 * abs(bssfp_signal(1.0, 1550, 250, 60, tr, 1.5, 0.0))
    # The textbook short-TR formula is its limit.
    assert abs(bssfp_signal(1.0, 1550, 250, 60, 0.5, 0.0)) == pytest.approx(bssfp_on_resonance(1.0, 1550, 250, 60), rel=0.01)


def test_kspace_sampling_noise_level_and_resolution():
    rng = np.random.default_rng(0)
    window = kspace_window((48, 64), {"type": "hamming", "strength": 0.6})
    # Noise only: the magnitude is Rayleigh with the requested sigma, whatever the filter.
    noise = acquire(np.zeros((4, 128, 160), np.complex64), (48, 64), (96, 128), window, 3.0, rng)
    assert noise.mean() == pytest.approx(3.0 * np.sqrt(np.pi / 2), rel=0.05)
    # A constant object stays constant (DC preserved); an edge gets blurred over several pixels.
    flat = acquire(np.full((1, 128, 160), 10, np.complex64), (48, 64), (96, 128), window, 0.0, rng)
    assert np.allclose(flat, 10.0, atol=1e-3)
    step = np.zeros((1, 128, 160), np.complex64)
    step[:, :, 40:120] = 10
    profile = acquire(step, (48, 64), (96, 128), window, 0.0, rng)[0, 48]
    rising = np.flatnonzero((profile > 1) & (profile < 9))
    assert 2 <= len(rising) <= 16
    with pytest.raises(ValueError):
        kspace_window((8, 8), {"type": "gaussian"})


# ---------------------------------------------------------------- files

def test_nifti_round_trip(tmp_path, studies):
    study = studies["Siemens"]
    paths = write_study(study, tmp_path, fmt="nifti", name="case001")
    assert {"ED", "ES", "ED_gt", "ES_gt", "cine", "meta"} <= set(paths)
    cine = sitk.ReadImage(str(paths["cine"]))
    assert cine.GetDimension() == 4
    assert cine.GetSize() == tuple(reversed(study.image.shape))
    assert np.allclose(cine.GetSpacing()[:3], study.spacing, atol=1e-5)
    assert np.allclose(cine.GetOrigin()[:3], study.origin, atol=1e-4)
    assert np.allclose(np.array(cine.GetDirection()).reshape(4, 4)[:3, :3].ravel(), study.direction, atol=1e-6)
    assert cine.GetSpacing()[3] == pytest.approx((study.trigger_times_ms[1] - study.trigger_times_ms[0]) / 1000, rel=1e-5)
    assert np.array_equal(sitk.GetArrayFromImage(cine), study.image)
    for phase, frame in (("ED", study.ed_frame), ("ES", study.es_frame)):
        volume = sitk.ReadImage(str(paths[phase]))
        labels = sitk.ReadImage(str(paths[f"{phase}_gt"]))
        assert volume.GetDimension() == 3 and labels.GetPixelID() == sitk.sitkUInt8
        assert np.allclose(volume.GetSpacing(), study.spacing, atol=1e-5)
        assert np.allclose(labels.GetOrigin(), study.origin, atol=1e-4)
        assert np.array_equal(sitk.GetArrayFromImage(volume), study.image[frame])
        assert np.array_equal(sitk.GetArrayFromImage(labels), study.labels[frame])
    meta = json.loads(paths["meta"].read_text())
    assert meta["es_frame"] == study.es_frame and meta["profile"]["vendor"] == "Siemens"


def test_dicom_series_sorted_by_tags_recovers_the_cine(tmp_path):
    study = make_study("GE", seed=2, n_phases=4, n_slices=3, matrix=64)
    paths = write_study(study, tmp_path, fmt="dicom", name="ge001")
    files = sorted(paths["dicom_dir"].glob("*.dcm"))
    assert len(files) == 4 * 3
    datasets = [pydicom.dcmread(f) for f in files]
    required = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                "SpacingBetweenSlices", "TriggerTime", "InstanceNumber", "SliceLocation", "SeriesInstanceUID",
                "StudyInstanceUID", "FrameOfReferenceUID", "MagneticFieldStrength", "RepetitionTime", "EchoTime",
                "FlipAngle", "Rows", "Columns", "BitsStored")
    for ds in datasets:
        missing = [k for k in required if k not in ds]
        assert not missing, missing
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage and ds.Modality == "MR"
        assert ds.Manufacturer == "GE" and int(ds.BitsStored) == 16 and ds.pixel_array.dtype == np.uint16
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 1
    # Order by position along the slice normal, then trigger time.
    orientation = np.array(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])

    def key(ds):
        return (round(float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), normal)), 3), float(ds.TriggerTime))

    by_tags = sorted(datasets, key=key)
    rebuilt = np.stack([ds.pixel_array for ds in by_tags]).reshape(3, 4, 64, 64).transpose(1, 0, 2, 3)
    assert np.array_equal(rebuilt, study.image.astype(np.uint16))
    assert np.array_equal(rebuilt.astype(np.float32), study.image)
    # File names carry no order: sorting by name does not give the cine.
    by_name = np.stack([ds.pixel_array for ds in datasets]).reshape(3, 4, 64, 64).transpose(1, 0, 2, 3)
    assert not np.array_equal(by_name, rebuilt)
    # Geometry tags agree with the study, and the labels beside it match the grid.
    first = by_tags[0]
    assert np.allclose([float(v) for v in first.ImagePositionPatient], study.origin, atol=1e-3)
    assert [float(v) for v in first.PixelSpacing] == pytest.approx([study.spacing[1], study.spacing[0]])
    assert float(first.SpacingBetweenSlices) == pytest.approx(study.spacing[2])
    labels = sitk.ReadImage(str(paths["labels"]))
    assert labels.GetDimension() == 4 and np.array_equal(sitk.GetArrayFromImage(labels), study.labels)


def test_write_dataset_manifest(tmp_path):
    manifest = write_dataset(tmp_path, vendors=("Philips", "GE"), subjects=2, seed=3, n_phases=3,
                             n_slices=2, matrix=48, dev_subjects=1, cine=False)
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["subject", "vendor", "phase", "image", "label", "split"]
        rows = list(reader)
    assert len(rows) == 2 * 2 * 2
    splits = {(r["vendor"], r["subject"]): r["split"] for r in rows}
    assert splits == {("Philips", "philips000"): "train_labelled", ("Philips", "philips001"): "train_labelled",
                      ("GE", "ge000"): "train_unlabelled", ("GE", "ge001"): "dev_labelled"}
    for row in rows:
        assert (manifest.parent / row["image"]).is_file()
        assert row["phase"] in ("ED", "ES")
        if row["split"] == "train_unlabelled":
            assert row["label"] == ""
        else:
            label = sitk.ReadImage(str(manifest.parent / row["label"]))
            assert set(np.unique(sitk.GetArrayFromImage(label))) <= {0, 1, 2, 3}
    # Different subjects per vendor and index.
    volumes = [sitk.GetArrayFromImage(sitk.ReadImage(str(manifest.parent / r["image"]))) for r in rows if r["phase"] == "ED"]
    assert not np.array_equal(volumes[0], volumes[1])


# ---------------------------------------------------------------- profiles

def _write_profile(tmp_path: Path, **changes) -> Path:
    profile = json.loads(profile_path("GE").read_text())
    for key, value in changes.items():
        if value is None:
            profile.pop(key)
        else:
            profile[key] = value
    path = tmp_path / "scanner.json"
    path.write_text(json.dumps(profile))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"TR_ms": None}, "'TR_ms' is missing"),
    ({"TR_ms": "fast"}, "'TR_ms' must be a number"),
    ({"flip_angle_deg": 400}, "'flip_angle_deg' must be a number in"),
    ({"n_slices": 2.5}, "'n_slices' must be an integer"),
    ({"matrix": [512, 224]}, "'matrix'"),
    ({"TE_ms": 5.0}, "'TE_ms'"),
    ({"kspace_filter": {"type": "fermi", "radius": 0.9}}, "'kspace_filter.width' is missing"),
    ({"kspace_filter": {"type": "gaussian"}}, "'kspace_filter.type' must be one of"),
    ({"fov_mask": "square"}, "'fov_mask' must be one of"),
    ({"coil_strength": 1.0}, "unknown profile key 'coil_strength'"),
    ({"pixel_spacing_mm": [1.3]}, "'pixel_spacing_mm' must be a list of two"),
])
def test_profile_errors_name_the_key(tmp_path, changes, message):
    path = _write_profile(tmp_path, **changes)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_profile(path)


def test_profile_sources(tmp_path):
    assert [load_profile(v)["vendor"] for v in VENDORS] == list(VENDORS)
    assert load_profile("siemens")["vendor"] == "Siemens"
    with pytest.raises(ValueError, match="unknown vendor 'Canon'"):
        load_profile("Canon")
    with pytest.raises(ValueError, match="not found"):
        load_profile(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_profile(broken)
    # A new scanner from a file: a 3 T profile with its own name.
    path = _write_profile(tmp_path, vendor="Acme", field_strength_T=3.0, flip_angle_deg=40, b0_inhomogeneity_hz=150.0)
    study = make_study(path, seed=0, n_phases=2, n_slices=2, matrix=64)
    assert study.vendor == "Acme" and study.meta["profile"]["field_strength_T"] == 3.0
    assert study.image.shape == (2, 2, 64, 64)
    assert make_study(load_profile(path), seed=0, n_phases=2, n_slices=2, matrix=64).image.tobytes() == study.image.tobytes()


# ---------------------------------------------------------------- CLI

def test_cli_writes_dataset(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="unetgan")
    phantom_cli.add_parser(parser.add_subparsers(dest="command"))
    custom = _write_profile(tmp_path, vendor="Acme")
    out = tmp_path / "out"
    args = parser.parse_args(["phantom", "--vendor", "Philips", "--profile", str(custom), "--subjects", "2",
                              "--seed", "5", "-o", str(out), "--phases", "3", "--slices", "2", "--matrix", "48",
                              "--format", "dicom", "--dev-subjects", "1"])
    assert args.func(args) == 0
    assert "PROGRESS 4 4" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert len(rows) == 8 and {r["vendor"] for r in rows} == {"Philips", "Acme"}
    assert {r["split"] for r in rows if r["vendor"] == "Acme"} == {"train_unlabelled", "dev_labelled"}
    assert len(list((out / "scanner" / "scanner001_dicom").glob("*.dcm"))) == 3 * 2
    assert (out / "philips" / "philips000_labels.nii.gz").is_file()

    bad = _write_profile(tmp_path, TR_ms=-1)
    args = parser.parse_args(["phantom", "--profile", str(bad), "-o", str(tmp_path / "bad")])
    assert args.func(args) == 1
    assert capsys.readouterr().err.startswith("ERROR: ")
    with pytest.raises(SystemExit):
        parser.parse_args(["phantom", "--vendor", "GE"])  # -o is required


SICK = dict(n_phases=12, matrix=128)  # all of the profile's slices: the whole heart, base to apex


def _volumes_ml(study) -> tuple[float, float]:
    from unetgan.measurements import frame_measurements

    voxel_ml = float(np.prod(study.spacing)) / 1000.0
    return tuple(frame_measurements(study.labels[frame], voxel_ml)["blood_pool_ml"]
                 for frame in (study.ed_frame, study.es_frame))


@pytest.mark.parametrize("seed", [0, 7])
def test_heart_kinds_fall_in_their_clinical_ranges(seed):
    """Measured on the phantom's own labels: a dilated heart's EDV 250-400 mL and EF 15-35 %; a hypertrophic
    heart's walls 15-30 mm at ED, its ES cavity 10-30 mL and EF 70-85 %; the same subject's normal heart in
    between (EDV 90-220 mL, walls 6-13 mm)."""
    from unetgan.training.sick_hearts import wall_thickness_mm

    hearts = {kind: make_study("Philips", seed=seed, heart=kind, **SICK) for kind in ("normal", "dilated", "hypertrophic")}
    for kind, study in hearts.items():
        assert study.meta["heart_kind"] == kind
    wall = {kind: wall_thickness_mm(s.labels[s.ed_frame], s.spacing[:2]) for kind, s in hearts.items()}
    volumes = {kind: _volumes_ml(s) for kind, s in hearts.items()}
    ef = {kind: 100.0 * (ed - es) / ed for kind, (ed, es) in volumes.items()}
    assert 250.0 <= volumes["dilated"][0] <= 400.0 and 15.0 <= ef["dilated"] <= 35.0 and wall["dilated"] < 8.0
    assert 15.0 <= wall["hypertrophic"] <= 30.0
    assert 10.0 <= volumes["hypertrophic"][1] <= 30.0 and 70.0 <= ef["hypertrophic"] <= 85.0
    assert 90.0 <= volumes["normal"][0] <= 220.0 and 6.0 <= wall["normal"] <= 13.0 and 50.0 <= ef["normal"] <= 70.0
    # the body around the heart is the same subject's
    far = np.s_[:, :, :, :16]
    assert np.array_equal(hearts["normal"].labels[far], hearts["dilated"].labels[far])


def _ray_through_wall(subject, angle: float, w: float, c: float) -> tuple[float, float]:
    """(endocardial radius, wall thickness) in mm along one direction from the LV axis, from painted labels."""
    from unetgan.phantom import anatomy

    x = np.tile(np.arange(-60.0, 60.25, 0.25, dtype=np.float32), (481, 1))
    y = x.T.copy()
    samples = anatomy.PolarSamples(subject.heart, x, y, w, c)
    labels = anatomy.paint_labels(anatomy.heart_layers(subject, samples, w, c), x.shape)
    r = np.arange(0.0, 55.0, 0.25)
    rows = np.round((samples.centre[1] + r * np.sin(angle) + 60.0) / 0.25).astype(int)
    cols = np.round((samples.centre[0] + r * np.cos(angle) + 60.0) / 0.25).astype(int)
    wall = r[labels[rows, cols] == anatomy.MYOCARDIUM]
    return float(wall.min()), float(wall.max() - wall.min() + 0.25)


def test_an_infarct_is_a_thinned_akinetic_segment():
    """In the infarct's centre the wall is under 60 % of the opposite wall's, and its endocardium does not move
    inward at ES while the opposite one does; the same subject's normal heart has no such thin wall."""
    from unetgan.phantom import anatomy, subjects

    normal = subjects.draw_anatomy(np.random.default_rng(3))
    infarct = subjects.draw_anatomy(np.random.default_rng(3), "infarct")
    assert np.array_equal(infarct.body.lung_vessels, normal.body.lung_vessels)  # the same body
    heart = infarct.heart
    centre = float(np.argmax(heart.infarct_table)) * 2.0 * np.pi / subjects.ANGLE_SAMPLES
    opposite = centre + np.pi
    w = 0.75 * heart.length_mm  # inside the infarct's span (mid-ventricle to apex)
    scar_endo_ed, scar_wall = _ray_through_wall(infarct, centre, w, 0.0)
    scar_endo_es, _ = _ray_through_wall(infarct, centre, w, 1.0)
    healthy_endo_ed, healthy_wall = _ray_through_wall(infarct, opposite, w, 0.0)
    healthy_endo_es, _ = _ray_through_wall(infarct, opposite, w, 1.0)
    assert scar_wall < 0.6 * healthy_wall
    # at a fixed depth the slice meets a more basal level at ES (the base descends): an akinetic wall even
    # moves a little outward there, where the contracting wall moves inward
    assert scar_endo_es >= scar_endo_ed - 0.5
    assert healthy_endo_ed - healthy_endo_es >= 1.0
    assert _ray_through_wall(normal, centre, w, 0.0)[1] > 0.6 * _ray_through_wall(normal, opposite, w, 0.0)[1]


def test_cli_draws_the_kind_of_heart(tmp_path):
    parser = argparse.ArgumentParser(prog="unetgan")
    phantom_cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "dilated"
    args = parser.parse_args(["phantom", "--vendor", "Philips", "--heart", "dilated", "-o", str(out),
                              "--phases", "3", "--slices", "2", "--matrix", "48", "--no-cine"])
    assert args.func(args) == 0
    written = sitk.ReadImage(str(out / "philips" / "philips000_ED_gt.nii.gz"))
    normal_args = parser.parse_args(["phantom", "--vendor", "Philips", "-o", str(tmp_path / "normal"),
                                     "--phases", "3", "--slices", "2", "--matrix", "48", "--no-cine"])
    assert normal_args.func(normal_args) == 0
    normal = sitk.ReadImage(str(tmp_path / "normal" / "philips" / "philips000_ED_gt.nii.gz"))
    pool = lambda image: int((sitk.GetArrayFromImage(image) == 1).sum())  # noqa: E731
    assert pool(written) > 1.5 * pool(normal)
    with pytest.raises(SystemExit):
        parser.parse_args(["phantom", "--heart", "enlarged", "-o", str(out)])
