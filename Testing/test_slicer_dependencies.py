"""Dependency installation inside Slicer (issue #13 item 6), the decisions of UnetGANSlicerLib.dependencies:
the installed torch checked against the required version, Slicer's own packages never installed or
replaced, install failures (no network first) explained in one sentence."""
from __future__ import annotations

from pathlib import Path

from UnetGANSlicerLib import dependencies

REQUIREMENTS = Path(__file__).resolve().parent.parent / "UnetGANSlicer" / "Resources" / "requirements.txt"


def versions(**installed):
    return lambda name: installed.get(name.lower().replace("-", "_"))


def test_this_environment_is_ready():
    assert dependencies.check(REQUIREMENTS).ready


def test_old_torch_is_reported_with_what_to_do():
    problem = dependencies.torch_problem(">=2.3", versions(torch="2.1.0+cu118"))
    assert "2.1.0" in problem and "PyTorch Utils" in problem
    assert dependencies.torch_problem(">=2.3", versions(torch="2.13.0+cpu")) is None
    assert dependencies.torch_problem(">=2.3", versions()) is None  # absent: the PyTorch extension installs it


def test_slicers_own_packages_are_never_installed_or_upgraded(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydicom>=9.0  # newer than any Slicer ships\nscipy\nnumpy>=9\nmonai>=1.3\ntqdm\n")
    report = dependencies.check(requirements, versions(pydicom="2.4.4", numpy="1.26.4", monai="1.2.0", torch="2.5.0"))
    assert report.to_install == ["monai>=1.3", "tqdm"]  # too old, absent
    assert report.slicer_missing == ["scipy"]  # Slicer's own and absent: reported, not installed
    assert not report.ready and report.torch_problem is None


def test_install_failures_say_what_happened():
    offline = dependencies.install_failure_message(
        "ERROR: Could not find a version that satisfies the requirement monai (from versions: none)\n"
        "ERROR: No matching distribution found for monai")
    assert "no network" in offline
    other = dependencies.install_failure_message(RuntimeError("pip exited with code 2\nbroken wheel"))
    assert other == "Installing Python packages failed: broken wheel"
