"""scripts/benchmark_click.py: the real-image Siemens stand-in cine (ED -> ES -> ED from one subject's two
volumes), one report per CPU kind in the JSON, and a page that names the CPU of every figure."""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
bc = load_script("benchmark_click")  # it imports its neighbours (report_files) from scripts/

from unetgan.errors import InputError  # noqa: E402
from unetgan.io.images import read_image  # noqa: E402
from unetgan.phantom import make_study, write_study  # noqa: E402
from unetgan.runtime import INSTRUCTION_SET_ENV, instruction_set  # noqa: E402

VNNI_CPU = {"model": "AMD EPYC", "instruction_set": "vnni", "vnni": True, "int8_weights": "u8s8-per-channel"}
FORCED_AVX2 = {"model": "AMD EPYC", "instruction_set": "avx2", "vnni": False, "int8_weights": "u8s8-reduce-range",
               "forced_instruction_set": "avx2", "detected_instruction_set": "vnni"}
REAL_AVX2 = {"model": "Intel Core i7-6700", "instruction_set": "avx2", "vnni": False,
             "int8_weights": "u8s8-reduce-range"}


SUBJECTS = (("C3", "Siemens", "dev_labelled", 1), ("B2", "Siemens", "dev_labelled", 2),
            ("A1", "Siemens", "train_unlabelled", 3), ("A0", "Philips", "dev_labelled", 4))


def phantom_manifest(folder: Path, matrix: int = 48, subjects=SUBJECTS, slices=None) -> Path:
    """A small manifest of phantom ED/ES volumes: two Siemens dev_labelled subjects (B2 first in sorted order,
    listed second), one Siemens subject of another split and one Philips subject, which the stand-in must skip.
    slices: {subject: number of slices} (default 3)."""
    rows = []
    for subject, vendor, split, seed in subjects:
        study = make_study(vendor, seed=seed, n_phases=6, n_slices=(slices or {}).get(subject, 3), matrix=matrix)
        paths = write_study(study, folder / "volumes", name=subject, cine=False)
        for phase in ("ED", "ES"):
            rows.append({"subject": subject, "vendor": vendor, "phase": phase,
                         "image": str(paths[phase].relative_to(folder)),
                         "label": str(paths[f"{phase}_gt"].relative_to(folder)), "split": split})
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["subject", "vendor", "phase", "image", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_standin_cine_goes_ed_es_ed_on_the_volumes_grid(tmp_path):
    manifest = phantom_manifest(tmp_path)
    path, subject = bc.standin_cine(manifest, tmp_path / "out")
    assert subject == "B2"  # the first Siemens dev_labelled subject in sorted order, not the first listed
    ed, es = (read_image(tmp_path / "volumes" / f"B2_{phase}.nii.gz") for phase in ("ED", "ES"))
    cine = read_image(path)
    assert cine.is_cine and cine.array.shape == (24, *ed.array.shape)
    assert cine.array.dtype == ed.array.dtype
    np.testing.assert_array_equal(cine.array[0], ed.array)
    np.testing.assert_array_equal(cine.array[12], es.array)
    assert not np.array_equal(ed.array, es.array)  # the heart moves: the check above means something
    # halfway to ES: the mean of the two volumes (to the stored integers' rounding); the way back mirrors the way out
    halfway = (ed.array.astype(np.float64) + es.array) / 2
    assert np.abs(cine.array[6] - halfway).max() <= 1
    assert np.abs(cine.array[6].astype(np.float64) - cine.array[18]).max() <= 1  # rounding of .5 aside
    # smooth: each phase differs from the next by at most a quarter turn's share of the ED-ES difference
    steps = np.abs(np.diff(cine.array.astype(np.float64), axis=0)).max(axis=(1, 2, 3))
    assert steps.max() <= np.abs(es.array.astype(np.float64) - ed.array).max() * np.sin(np.pi / 24) + 1
    assert cine.geometry.spacing == pytest.approx(ed.geometry.spacing, abs=1e-6)
    assert cine.geometry.origin == pytest.approx(ed.geometry.origin, abs=1e-6)
    assert cine.geometry.direction == pytest.approx(ed.geometry.direction, abs=1e-6)


def test_standin_subject_is_chosen_by_name_among_siemens_dev_labelled_only(tmp_path):
    manifest = phantom_manifest(tmp_path)
    path, subject = bc.standin_cine(manifest, tmp_path / "out", subject="C3", phases=8)
    assert subject == "C3" and read_image(path).array.shape[0] == 8
    for other in ("A1", "A0"):  # another split; another vendor
        with pytest.raises(InputError, match="choose from B2, C3"):
            bc.standin_cine(manifest, tmp_path / "out", subject=other)


def test_the_typical_standin_has_the_median_number_of_slices(tmp_path):
    subjects = (*SUBJECTS, ("D4", "Siemens", "dev_labelled", 5), ("E5", "Siemens", "dev_labelled", 6))
    # Siemens dev subjects' slices: B2 6, C3 2, D4 4, E5 4 (A1 and A0 are not candidates, whatever their size)
    slices = {"B2": 6, "C3": 2, "D4": 4, "E5": 4, "A1": 4, "A0": 3}
    manifest = phantom_manifest(tmp_path, subjects=subjects, slices=slices)
    assert bc.typical_standin_subject(manifest) == "D4"  # the lower median (4), the first of its equals
    assert bc.standin_cine(manifest, tmp_path / "out")[1] == "B2"  # the default single stand-in is unchanged
    with pytest.raises(InputError, match="no rows match vendor"):  # no Siemens dev subject at all: said, not guessed
        bc.typical_standin_subject(phantom_manifest(tmp_path / "none", subjects=SUBJECTS[2:]))


def test_cosine_cycle_starts_at_ed_and_reaches_es_halfway():
    weights = bc.cosine_cycle(24)
    assert weights[0] == 0 and weights[12] == 1 and weights.argmax() == 12
    np.testing.assert_allclose(weights[1:12], weights[23:12:-1])


def fake_report(cpu: dict, wall_s: float, standin: bool = False) -> dict:
    """A report as main() writes it, with made-up times."""
    def click(number, wall):
        return {"click": number, "wall_s": wall, "images_per_s": 24 / wall, "frames": 2,
                "stages_s": {"backend": wall * 0.8, "backend segment": wall * 0.3}}

    def cine(name, **extra):
        ahead = click("first, worker started ahead", wall_s) | {"worker_ready_s": 2.0}
        return {"cine": name, "adapter": "Siemens", **extra, "cold_cli": {"wall_s": 3 * wall_s},
                "clicks": [click(1, 2 * wall_s), click(2, wall_s), click("later, --tta flip4", 2 * wall_s)],
                "images": 24, "click_worker_ahead": ahead, "float32_bytes": 24 * 4 * 96 * 96}

    cines = [cine("phantom Siemens 2 x 12 x 96")]
    if standin:
        cines.append(cine("real Siemens stand-in (B2 ED/ES, 24 phases)", subject="B2", phases=24))
    return {"command": "python scripts/benchmark_click.py", "runtime": "onnx-int8", "memory_bandwidth_gb_s": 20.0,
            "machine": {"cpu": cpu, "cores": 2, "load_average": [1.0, 1.0, 1.0]}, "cines": cines}


def test_a_run_replaces_its_own_cpu_kind_and_keeps_the_others():
    old_vnni, forced, real_avx2 = fake_report(VNNI_CPU, 1.0), fake_report(FORCED_AVX2, 2.0), fake_report(REAL_AVX2, 3.0)
    data = bc.merge(bc.merge(bc.merge(None, old_vnni), forced), real_avx2)
    assert list(data["reports"]) == ["AMD EPYC (vnni, with VNNI)", "forced avx2 path on AMD EPYC (a VNNI CPU)",
                                     "Intel Core i7-6700 (avx2, without VNNI)"]
    kept = copy.deepcopy(data)
    new_vnni = fake_report(VNNI_CPU, 0.5)
    merged = bc.merge(data, new_vnni)
    assert list(merged["reports"]) == list(kept["reports"])  # replaced in its place; nothing added
    assert merged["reports"]["AMD EPYC (vnni, with VNNI)"] == new_vnni
    for kind in list(kept["reports"])[1:]:
        assert merged["reports"][kind] == kept["reports"][kind]
    assert data == kept  # the merge makes a new mapping; the one read from the file is left as it was


def test_forced_avx2_on_a_vnni_cpu_is_never_called_an_avx2_cpu(monkeypatch):
    assert bc.cpu_label(FORCED_AVX2) == "forced avx2 path on AMD EPYC (a VNNI CPU)"
    assert bc.cpu_label(REAL_AVX2) == "Intel Core i7-6700 (avx2, without VNNI)"
    assert bc.cpu_label({"model": None, "instruction_set": None, "vnni": True}) == "not recorded (VNNI)"
    # this machine, forced: labelled forced unless it really is an AVX2 CPU without VNNI
    monkeypatch.setenv(INSTRUCTION_SET_ENV, "avx2")
    instruction_set.cache_clear()
    try:
        cpu = bc.cpu_kind()
    finally:
        monkeypatch.delenv(INSTRUCTION_SET_ENV)
        instruction_set.cache_clear()
    detected = bc.detected_instruction_set()
    assert cpu["instruction_set"] == "avx2" and cpu["vnni"] is False
    assert cpu["forced_instruction_set"] == "avx2" and cpu["detected_instruction_set"] == detected
    label = bc.cpu_label(cpu)
    assert label.startswith("forced avx2 path on ") == (detected != "avx2"), label
    if detected == "vnni":
        assert label == f"forced avx2 path on {cpu['model']} (a VNNI CPU)"


def test_every_summary_row_names_its_cpu():
    reports = [fake_report(VNNI_CPU, 1.0, standin=True), fake_report(FORCED_AVX2, 2.0, standin=True)]
    data = bc.merge(bc.merge(None, reports[0]), reports[1])
    page = bc.markdown(data)
    kinds = list(data["reports"])
    rows = [line for line in page.splitlines() if line.startswith("| ") and not line.startswith("| CPU |")]
    # per CPU kind and cine: targets (later clicks, flip4), summary (one row), stages (four clicks)
    assert len(rows) == 2 * 2 * (2 + 1 + 4)
    for line in rows:
        assert any(line.startswith(f"| {kind} | ") for kind in kinds), line
    forced = [line for line in rows if line.startswith("| forced avx2 path on AMD EPYC (a VNNI CPU) | ")]
    assert len(forced) == len(rows) // 2
    assert "| real Siemens stand-in (B2 ED/ES, 24 phases) | 24 |" in page
    assert "(avx2, without VNNI)" not in page  # the forced run is not shown as a real AVX2 CPU
    assert "not a measurement of a real CPU of that kind" in page


def test_the_page_in_docs_renders_from_its_json_alone():
    data = json.loads((ROOT / "docs" / "benchmarks_click.json").read_text(encoding="utf-8"))
    assert (ROOT / "docs" / "benchmarks_click.md").read_text(encoding="utf-8") == bc.markdown(data)
    for kind, report in data["reports"].items():
        assert kind == bc.cpu_label(report["machine"]["cpu"])
