"""Which Python packages the module still needs inside Slicer, and what to tell the user (no Qt, no pip).

- The supported Slicer: 5.12 or newer (Python 3.12, pydicom 3.0.2, from Slicer's SuperBuild
  files). The backend needs Python >= 3.11 and pydicom >= 3 (``pydicom.pixels``); Slicer 5.10
  (Python 3.12, pydicom 2.4.4) and 5.8 (Python 3.9, pydicom 2.4.4) get one message naming the
  Slicer version needed (:func:`slicer_problem`), before anything else runs.
- torch comes from the PyTorch extension; an installed torch older than the module needs
  is reported with what to do (it is never replaced behind the user's back).
- Packages Slicer itself ships (numpy, SimpleITK, pydicom, scipy, vtk, ...) are never
  installed or upgraded by pip: one that is too old means the Slicer is too old.
- Everything else in ``Resources/requirements.txt`` that is absent or too old is "to install";
  :func:`pip_arguments` installs it with a constraints file that pins every package Slicer ships
  at its installed version, so pip can never replace one of them while resolving dependencies.
- Install failures (no network above all) become one readable sentence.

This file must stay importable by any Slicer's Python (3.9 and later), so that an older Slicer
gets the message instead of a TypeError: no syntax or library call newer than Python 3.9 here.
"""
from __future__ import annotations

import importlib.metadata
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

TORCH_REQUIREMENT = ">=2.3"
SUPPORTED_SLICER = "5.12"
MIN_PYTHON = (3, 11)
MIN_PYDICOM = "3.0"
SLICER_DOWNLOAD = "https://download.slicer.org"
SLICER_PACKAGES = ("torch", "numpy", "SimpleITK", "pydicom", "scipy", "vtk", "requests", "Pillow", "h5py")
NETWORK_WORDS = ("network is unreachable", "name or service not known", "temporary failure in name resolution",
                 "connection refused", "connection timed out", "no matching distribution", "could not fetch url",
                 "max retries exceeded", "proxyerror", "sslerror")

VersionOf = Callable[[str], Optional[str]]


@dataclass
class DependencyReport:
    to_install: list = field(default_factory=list)  # requirement lines pip may install
    slicer_missing: list = field(default_factory=list)  # Slicer's own packages that are absent
    torch_problem: Optional[str] = None  # what to tell the user about torch, None when fine
    slicer_problem: Optional[str] = None  # this Slicer is too old: the one message to show

    @property
    def ready(self) -> bool:
        return not (self.to_install or self.slicer_missing or self.torch_problem or self.slicer_problem)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_of_installed(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# packages whose module is not named after them
MODULE_NAMES = {"pylibjpeg-libjpeg": "libjpeg", "pylibjpeg-openjpeg": "openjpeg", "pylibjpeg-rle": "rle",
                "python-gdcm": "gdcm"}


def _importable(name: str) -> bool:
    """Whether the package's module can be found (its metadata alone may outlive a removed module)."""
    import importlib.util

    try:
        module = MODULE_NAMES.get(_normal(name), _normal(name).replace("-", "_"))
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed_version(name: str) -> Optional[str]:
    """The version of an installed, importable package, else None (what :func:`check` asks by default)."""
    version = version_of_installed(name)
    return version if version is not None and _importable(name) else None


def requirement_lines(requirements_file) -> list:
    lines = [line.split("#", 1)[0].strip() for line in Path(requirements_file).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def satisfies(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return not specifier or SpecifierSet(specifier).contains(version, prereleases=True)


def _release(version: str) -> tuple:
    """(3, 0, 2) from '3.0.2' or '3.0.2rc1' (no packaging import: this runs on any Slicer)."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers)


def slicer_problem(python_version=None, version_of: VersionOf = version_of_installed) -> Optional[str]:
    """None on a supported Slicer; else the one sentence an older Slicer shows (Python or pydicom too old)."""
    python = tuple(python_version if python_version is not None else sys.version_info[:3])
    pydicom = version_of("pydicom")
    too_old = []
    if python[:2] < MIN_PYTHON:
        too_old.append("Python {}".format(".".join(str(n) for n in python[:3])))
    if pydicom is not None and _release(pydicom) < _release(MIN_PYDICOM):
        too_old.append(f"pydicom {pydicom}")
    if not too_old:
        return None
    return (f"UnetGANSlicer needs 3D Slicer {SUPPORTED_SLICER} or newer. This Slicer has {' and '.join(too_old)}; "
            f"the module needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer and pydicom {MIN_PYDICOM} or newer, "
            f"which Slicer ships from version {SUPPORTED_SLICER} on (they are not replaced inside an older Slicer). "
            f"Install the current Slicer from {SLICER_DOWNLOAD}.")


def torch_problem(requirement: str = TORCH_REQUIREMENT, version_of: VersionOf = version_of_installed):
    """None when the installed torch satisfies ``requirement``; else what the user should do."""
    version = version_of("torch")
    if version is None:
        return None  # not installed: the PyTorch extension installs it (after asking)
    if satisfies(version.split("+")[0], requirement):
        return None
    return (f"PyTorch {version} is installed but this module needs torch{requirement}. Open the PyTorch Utils "
            "module, uninstall PyTorch, restart Slicer and run again: the module then installs a suitable version.")


def check(requirements_file, version_of: Optional[VersionOf] = None, torch_requirement: str = TORCH_REQUIREMENT,
          python_version=None) -> DependencyReport:
    """What this Slicer lacks. version_of(name): the installed version or None (default: the package's
    metadata, for the packages pip installs only when the module is importable too)."""
    report = DependencyReport(slicer_problem=slicer_problem(python_version, version_of or version_of_installed))
    if report.slicer_problem:
        return report  # nothing else is worth saying (or installing) on an unsupported Slicer
    from packaging.requirements import Requirement

    report.torch_problem = torch_problem(torch_requirement, version_of or version_of_installed)
    slicer_own = {_normal(name) for name in SLICER_PACKAGES}
    for line in requirement_lines(requirements_file):
        requirement = Requirement(line)
        own = _normal(requirement.name) in slicer_own
        version = (version_of or (version_of_installed if own else installed_version))(requirement.name)
        if own:
            if version is None:
                report.slicer_missing.append(requirement.name)
        elif version is None or not satisfies(version, str(requirement.specifier)):
            report.to_install.append(line)
    return report


def constraints_text(version_of: VersionOf = version_of_installed) -> str:
    """A pip constraints file: every package Slicer ships, pinned at the version installed here."""
    pins = [f"{name}=={version_of(name)}" for name in SLICER_PACKAGES if version_of(name)]
    return "# Slicer's own packages: pip may not replace them\n" + "\n".join(pins) + "\n"


def pip_arguments(to_install: list, constraints_file) -> list:
    """The arguments for ``slicer.util.pip_install``: the missing requirements, under the constraints file."""
    return ["-c", str(constraints_file), *to_install]


def install_question(to_install: list) -> str:
    names = ", ".join(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0] for line in to_install)
    return (f"UnetGANSlicer needs these Python packages, which this Slicer does not have yet: {names}. "
            "Download and install them now (a few minutes)? Packages that Slicer ships are left as they are.")


def install_failure_message(error) -> str:
    text = str(error)
    if any(word in text.lower() for word in NETWORK_WORDS):
        return ("Python packages could not be downloaded (no network, or a proxy blocks it). Connect to the "
                "internet, or install them from a wheel folder with pip in Slicer's Python console, and try again.")
    if "conflict" in text.lower() or "resolutionimpossible" in text.lower():
        return ("Python packages could not be installed without replacing a package Slicer ships (pip found no "
                "compatible versions). Update Slicer to the current release and try again.")
    return f"Installing Python packages failed: {text.strip().splitlines()[-1] if text.strip() else 'no message'}"
