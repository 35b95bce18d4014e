"""Installing what the module needs inside Slicer, after asking: the steps, without Qt.

The panel passes what only the application has (a yes/no question, an error dialog, Slicer's
``slicer.util.pip_install``, the PyTorch extension's module); the decisions are in
:mod:`.dependencies`. The order:

1. an unsupported Slicer (too old a Python or pydicom) gets one message and nothing is installed;
2. torch: from the PyTorch extension (``PyTorchUtilsLogic().installTorch``, which asks itself), an
   installed torch that is too old is reported, never replaced;
3. the other packages of ``Resources/requirements.txt``: one question naming them, then one
   ``pip_install`` under a constraints file that pins every package Slicer ships (numpy, SimpleITK,
   pydicom, ...) at its installed version, so that pip refuses rather than replaces one of them.

Nothing is installed when the module is loaded: this runs on the first Apply (and Train).
"""
from __future__ import annotations

import importlib
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import dependencies


@dataclass
class InstallUI:
    """What the application provides: confirm(question) -> bool, error(message, details),
    pip_install(arguments) (raises on failure)."""

    confirm: Callable[[str], bool]
    error: Callable[[str, str], None]
    pip_install: Callable[[list], None]


def ensure_torch(pytorch_utils, ui: InstallUI, ask: bool = True,
                 requirement: str = dependencies.TORCH_REQUIREMENT) -> bool:
    """torch from the PyTorch extension (``pytorch_utils``: its ``PyTorchUtils`` module, None when the
    extension is not installed). True when torch is there afterwards."""
    if pytorch_utils is None:
        ui.error("This module needs the PyTorch extension. Install 'PyTorch' from the Extensions Manager, restart "
                 "Slicer, and try again.", "")
        return False
    logic = pytorch_utils.PyTorchUtilsLogic()
    if logic.torchInstalled():
        return True
    if logic.installTorch(askConfirmation=ask, torchVersionRequirement=requirement) is None:
        ui.error("PyTorch is needed to run the networks; it was not installed.", "")
        return False
    return True


def ensure_dependencies(requirements_file, ui: InstallUI, ask: bool = True, pytorch_utils=None,
                        version_of: dependencies.VersionOf | None = None, python_version=None) -> bool:
    """Everything the module needs, installed after asking. False (after one message, or a declined
    question) when something is still missing. version_of, python_version: what is installed (default:
    this Python's packages and version)."""
    def check():
        return dependencies.check(requirements_file, version_of, python_version=python_version)

    report = check()
    if report.slicer_problem:
        ui.error(report.slicer_problem, "")
        return False
    if report.torch_problem:
        ui.error(report.torch_problem, "")
        return False
    if report.slicer_missing:
        ui.error(f"This Slicer lacks packages it normally ships: {', '.join(report.slicer_missing)}. Reinstall Slicer "
                 "(the module does not install them).", "")
        return False
    if not ensure_torch(pytorch_utils, ui, ask):
        return False
    if not report.to_install:
        return True
    if ask and not ui.confirm(dependencies.install_question(report.to_install)):
        return False
    folder = Path(tempfile.mkdtemp(prefix="unetgan-constraints-"))
    try:
        constraints = folder / "slicer-packages.txt"
        pins = dependencies.constraints_text(version_of or dependencies.version_of_installed)
        constraints.write_text(pins, encoding="utf-8")
        ui.pip_install(dependencies.pip_arguments(report.to_install, constraints))
    except Exception as error:  # noqa: BLE001 - no network, a proxy, a conflict: one sentence, details below it
        ui.error(dependencies.install_failure_message(error), traceback.format_exc())
        return False
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    importlib.invalidate_caches()
    missing = check().to_install
    if missing:
        ui.error(f"These Python packages are still missing after the installation: {', '.join(missing)}. "
                 "Restart Slicer and try again.", "")
        return False
    return True
