"""Which Python packages the module still needs inside Slicer, and what to tell the user (no Qt, no pip).

- torch comes from the PyTorch extension; an installed torch older than the module needs
  is reported with what to do (it is never replaced behind the user's back, as
  MONAIAuto3DSeg's dependency handler does).
- Packages Slicer itself ships (numpy, SimpleITK, pydicom, scipy, vtk, ...) are never
  installed or upgraded by pip, even when the requirements file names a minimum version:
  replacing them breaks Slicer. Present at any version counts as present.
- Everything else in ``Resources/requirements.txt`` that is absent or too old is "to install".
- Install failures (no network above all) become one readable sentence.
"""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TORCH_REQUIREMENT = ">=2.3"
SLICER_PACKAGES = ("torch", "numpy", "SimpleITK", "pydicom", "scipy", "vtk", "requests", "Pillow", "h5py")
NETWORK_WORDS = ("network is unreachable", "name or service not known", "temporary failure in name resolution",
                 "connection refused", "connection timed out", "no matching distribution", "could not fetch url",
                 "max retries exceeded", "proxyerror", "sslerror")


@dataclass
class DependencyReport:
    to_install: list[str] = field(default_factory=list)  # requirement lines pip may install
    slicer_missing: list[str] = field(default_factory=list)  # Slicer's own packages that are absent
    torch_problem: str | None = None  # what to tell the user about torch, None when fine

    @property
    def ready(self) -> bool:
        return not (self.to_install or self.slicer_missing or self.torch_problem)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version_of(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def requirement_lines(requirements_file) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in Path(requirements_file).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def satisfies(version: str, specifier: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return not specifier or SpecifierSet(specifier).contains(version, prereleases=True)


def torch_problem(requirement: str = TORCH_REQUIREMENT, version_of: Callable[[str], str | None] = _version_of):
    """None when the installed torch satisfies ``requirement``; else what the user should do."""
    version = version_of("torch")
    if version is None:
        return None  # not installed: the PyTorch extension installs it (after asking)
    if satisfies(version.split("+")[0], requirement):
        return None
    return (f"PyTorch {version} is installed but this module needs torch{requirement}. Open the PyTorch Utils "
            "module, uninstall PyTorch, restart Slicer and run again: the module then installs a suitable version.")


def check(requirements_file, version_of: Callable[[str], str | None] = _version_of,
          torch_requirement: str = TORCH_REQUIREMENT) -> DependencyReport:
    from packaging.requirements import Requirement

    report = DependencyReport(torch_problem=torch_problem(torch_requirement, version_of))
    slicer_own = {_normal(name) for name in SLICER_PACKAGES}
    for line in requirement_lines(requirements_file):
        requirement = Requirement(line)
        version = version_of(requirement.name)
        if _normal(requirement.name) in slicer_own:
            if version is None:
                report.slicer_missing.append(requirement.name)
        elif version is None or not satisfies(version, str(requirement.specifier)):
            report.to_install.append(line)
    return report


def install_failure_message(error: BaseException | str) -> str:
    text = str(error)
    if any(word in text.lower() for word in NETWORK_WORDS):
        return ("Python packages could not be downloaded (no network, or a proxy blocks it). Connect to the "
                "internet, or install them from a wheel folder with pip in Slicer's Python console, and try again.")
    return f"Installing Python packages failed: {text.strip().splitlines()[-1] if text.strip() else 'no message'}"
