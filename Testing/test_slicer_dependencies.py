"""Dependency decisions inside Slicer (UnetGANSlicerLib.dependencies): which Slicer is supported, the
installed torch checked against the required version, Slicer's own packages never installed or replaced,
what pip is asked to do, install failures explained in one sentence."""
from __future__ import annotations

import ast
from pathlib import Path

from UnetGANSlicerLib import dependencies

MODULE_DIR = Path(__file__).resolve().parent.parent / "UnetGANSlicer"
REQUIREMENTS = MODULE_DIR / "Resources" / "requirements.txt"
# Python's minor version and pydicom as Slicer's SuperBuild files pin them (External_python-dicom-requirements.cmake);
# the patch level of Python and the other packages' versions stand for "whatever that Slicer has"
SLICER_5_12 = {"python": (3, 12, 0), "pydicom": "3.0.2", "numpy": "present", "scipy": "present"}
SLICER_5_10 = {"python": (3, 12, 0), "pydicom": "2.4.4", "numpy": "present", "scipy": "present"}
SLICER_5_8 = {"python": (3, 9, 0), "pydicom": "2.4.4", "numpy": "present", "scipy": "present"}


def versions(**installed):
    return lambda name: installed.get(name.lower().replace("-", "_"))


def slicer(shipped: dict, **more):
    packages = {name: version for name, version in shipped.items() if name != "python"}
    return versions(**packages, **more)


def test_this_environment_is_ready():
    assert dependencies.check(REQUIREMENTS).ready


def test_a_stock_slicer_512_is_supported_and_asked_for_the_missing_packages():
    report = dependencies.check(REQUIREMENTS, slicer(SLICER_5_12), python_version=SLICER_5_12["python"])
    assert report.slicer_problem is None and report.torch_problem is None and not report.slicer_missing
    names = {line.split(">")[0].split("=")[0] for line in report.to_install}
    # every package the module imports that Slicer does not ship, matplotlib, highdicom and the DICOM decoders included
    assert names == {"highdicom", "matplotlib", "monai", "safetensors", "tqdm", "psutil", "onnxruntime", "onnx",
                     "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle"}
    assert not any(line.startswith(("pydicom", "scipy", "numpy")) for line in report.to_install)


def test_older_slicers_get_one_message_naming_the_slicer_needed():
    for shipped, said in ((SLICER_5_8, "This Slicer has Python 3.9.0 and pydicom 2.4.4"),
                          (SLICER_5_10, "This Slicer has pydicom 2.4.4")):
        report = dependencies.check(REQUIREMENTS, slicer(shipped), python_version=shipped["python"])
        assert not report.ready and report.slicer_problem.startswith("UnetGANSlicer needs 3D Slicer 5.12 or newer.")
        assert said in report.slicer_problem and "https://download.slicer.org" in report.slicer_problem
        assert report.to_install == [] and report.torch_problem is None  # nothing installed into an old Slicer
    assert dependencies.slicer_problem((3, 12, 10), versions(pydicom="3.0.2")) is None
    assert dependencies.slicer_problem((3, 13, 1), versions(pydicom="3.1.0rc1")) is None


def test_the_version_check_runs_on_an_old_slicers_python():
    """The package's __init__ and dependencies.py must parse (and import nothing newer) on Python 3.9, so that
    Slicer 5.8 shows the message rather than a TypeError or SyntaxError."""
    for path in (MODULE_DIR / "UnetGANSlicerLib" / "__init__.py", MODULE_DIR / "UnetGANSlicerLib" / "dependencies.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
        assert imported <= {"__future__", "importlib", "re", "sys", "dataclasses", "pathlib", "typing", "packaging"}, \
            (path.name, imported)
        for node in ast.walk(tree):  # X | Y evaluated at run time (not in an annotation) needs Python 3.10
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
                assert not any(isinstance(arg, ast.BinOp) for arg in node.args), path.name


def test_an_old_slicer_reaches_the_message():
    """What runs on Slicer 5.8 (Python 3.9) before the panel shows the message: the module file, the panel's
    setup up to the check, the module logic. Python 3.9's grammar, and no X | Y annotation evaluated."""
    chain = [MODULE_DIR / "UnetGANSlicer.py", *(MODULE_DIR / "UnetGANSlicerGUI" / name for name in
                                                  ("__init__.py", "panel.py", "install_dialogs.py", "parameters.py")),
             *(MODULE_DIR / "UnetGANSlicerLib" / name for name in ("module_logic.py", "context.py"))]
    for path in chain:
        tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))
        postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__" and
                        any(alias.name == "annotations" for alias in node.names) for node in tree.body)
        if not postponed:
            annotations = [node.annotation for node in ast.walk(tree) if isinstance(node, (ast.arg, ast.AnnAssign))
                           and node.annotation is not None]
            annotations += [node.returns for node in ast.walk(tree)
                            if isinstance(node, ast.FunctionDef) and node.returns is not None]
            assert not any(isinstance(part, ast.BinOp) for a in annotations for part in ast.walk(a)), path.name
    panel = (MODULE_DIR / "UnetGANSlicerGUI" / "panel.py").read_text(encoding="utf-8")
    setup = panel[panel.index("    def setup(self)"):panel.index("    def _setupControls")]
    assert "slicer_too_old_text(self.logic)" in setup and "return" in setup  # nothing else runs on an old Slicer


def test_old_torch_is_reported_with_what_to_do():
    problem = dependencies.torch_problem(">=2.3", versions(torch="2.1.0+cu118"))
    assert "2.1.0" in problem and "PyTorch Utils" in problem
    assert dependencies.torch_problem(">=2.3", versions(torch="2.13.0+cpu")) is None
    assert dependencies.torch_problem(">=2.3", versions()) is None  # absent: the PyTorch extension installs it


def test_slicers_own_packages_are_never_installed_or_upgraded(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydicom>=3.0\nscipy\nnumpy>=9\nmonai>=1.3\ntqdm\n")
    report = dependencies.check(requirements, versions(pydicom="3.0.2", numpy="1.26.4", monai="1.2.0", torch="2.5.0"),
                                python_version=(3, 12, 10))
    assert report.to_install == ["monai>=1.3", "tqdm"]  # too old, absent
    assert report.slicer_missing == ["scipy"]  # Slicer's own and absent: reported, not installed
    assert not report.ready and report.torch_problem is None


def test_pip_is_constrained_to_the_packages_slicer_ships(tmp_path):
    installed = versions(numpy="2.2.6", pydicom="3.0.2", simpleitk="2.5.0", torch="2.6.0", scipy="1.15.3")
    text = dependencies.constraints_text(installed)
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == ["torch==2.6.0", "numpy==2.2.6", "SimpleITK==2.5.0", "pydicom==3.0.2", "scipy==1.15.3"]
    arguments = dependencies.pip_arguments(["matplotlib>=3.7", "highdicom>=0.27"], tmp_path / "constraints.txt")
    assert arguments == ["-c", str(tmp_path / "constraints.txt"), "matplotlib>=3.7", "highdicom>=0.27"]
    assert "--no-deps" not in arguments  # matplotlib and highdicom need their own dependencies
    question = dependencies.install_question(["matplotlib>=3.7", "highdicom>=0.27"])
    assert "matplotlib, highdicom" in question and "left as they are" in question


def test_install_failures_say_what_happened():
    offline = dependencies.install_failure_message(
        "ERROR: Could not find a version that satisfies the requirement monai (from versions: none)\n"
        "ERROR: No matching distribution found for monai")
    assert "no network" in offline
    conflict = dependencies.install_failure_message("ERROR: ResolutionImpossible: ... numpy==2.2.6 conflicts")
    assert "without replacing a package Slicer ships" in conflict
    other = dependencies.install_failure_message(RuntimeError("pip exited with code 2\nbroken wheel"))
    assert other == "Installing Python packages failed: broken wheel"


class FakeSlicer:
    """Slicer's dialogs, its pip_install and the PyTorch extension, recorded (install.InstallUI's parts)."""

    def __init__(self, shipped: dict, answer=True, pip_error=None, torch=True):
        self.installed = {name: version for name, version in shipped.items() if name != "python"}
        self.python = shipped["python"]
        self.answer, self.pip_error = answer, pip_error
        self.questions, self.errors, self.pip_calls, self.constraints = [], [], [], []
        self.torch = torch

    def ui(self):
        from UnetGANSlicerLib.install import InstallUI

        return InstallUI(confirm=self._confirm, error=lambda message, details: self.errors.append(message),
                         pip_install=self._pip)

    def _confirm(self, question):
        self.questions.append(question)
        return self.answer

    def _pip(self, arguments):
        self.pip_calls.append(arguments)
        self.constraints.append(Path(arguments[1]).read_text())
        if self.pip_error:
            raise RuntimeError(self.pip_error)
        for requirement in arguments[2:]:  # pip installs what it was asked for
            self.installed[requirement.split(">")[0].split("=")[0].replace("-", "_")] = "99.0"

    def pytorch_utils(self):
        if not self.torch:
            return None
        logic = type("PyTorchUtilsLogic", (), {"torchInstalled": lambda self: True})
        return type("PyTorchUtils", (), {"PyTorchUtilsLogic": logic})

    def ensure(self):
        from UnetGANSlicerLib import install

        return install.ensure_dependencies(REQUIREMENTS, self.ui(), True, self.pytorch_utils(),
                                           version_of=lambda name: versions(**self.installed)(name),
                                           python_version=self.python)


def test_a_stock_slicer_is_asked_once_then_installed_under_slicers_own_versions():
    fake = FakeSlicer({**SLICER_5_12, "numpy": "2.1.3", "simpleitk": "2.5.0", "torch": "2.6.0"})
    assert fake.ensure() and fake.errors == []
    assert len(fake.questions) == 1 and "matplotlib" in fake.questions[0] and "highdicom" in fake.questions[0]
    (arguments,) = fake.pip_calls
    assert arguments[0] == "-c" and {"matplotlib>=3.7", "highdicom>=0.27"} <= set(arguments[2:])
    assert not any(a.startswith(("pydicom", "numpy", "scipy", "torch", "SimpleITK")) for a in arguments[2:])
    pins = set(fake.constraints[0].splitlines())
    assert {"pydicom==3.0.2", "numpy==2.1.3", "SimpleITK==2.5.0", "torch==2.6.0"} <= pins
    assert not Path(arguments[1]).exists()  # the constraints file is gone afterwards
    assert fake.ensure() and len(fake.questions) == 1  # nothing more to ask


def test_nothing_is_installed_into_an_old_slicer_or_without_consent():
    old = FakeSlicer(SLICER_5_8)
    assert not old.ensure() and old.pip_calls == [] and old.questions == []
    assert len(old.errors) == 1 and "needs 3D Slicer 5.12 or newer" in old.errors[0]
    declined = FakeSlicer(SLICER_5_12, answer=False)
    assert not declined.ensure() and declined.pip_calls == [] and declined.errors == []
    no_torch = FakeSlicer(SLICER_5_12, torch=False)
    assert not no_torch.ensure() and no_torch.pip_calls == [] and "PyTorch extension" in no_torch.errors[0]


def test_a_failed_installation_says_why_in_one_message():
    offline = FakeSlicer(SLICER_5_12, pip_error="Could not fetch URL https://pypi.org/simple/matplotlib/")
    assert not offline.ensure() and len(offline.errors) == 1 and "no network" in offline.errors[0]
