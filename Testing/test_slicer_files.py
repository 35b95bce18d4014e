"""The Slicer extension's files: packaging lists, UI names, index metadata, module syntax.

Run ``python Testing/test_slicer_files.py`` to print the SCRIPTS/RESOURCES lists for
``UnetGANSlicer/CMakeLists.txt`` from the files on disk, ``... --write`` to rewrite them there.
"""
from __future__ import annotations

import ast
import json
import py_compile
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "UnetGANSlicer"
MODULE_FILE = MODULE_DIR / "UnetGANSlicer.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "UnetGANSlicer.ui"
MODULE_CMAKE = MODULE_DIR / "CMakeLists.txt"
GUI_DIR = MODULE_DIR / "UnetGANSlicerGUI"
PARAMETERS_FILE = GUI_DIR / "parameters.py"
PACKAGES = ("UnetGANSlicerGUI", "UnetGANSlicerLib", "UnetGANSlicerWeb", "unetgan")
SKIP_PARTS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}


# ---------------------------------------------------------------- files on disk

def _ignored_by_git(paths: list[Path]) -> set[Path]:
    """Paths git ignores (build outputs, local models): they are not part of the extension."""
    if not paths or not (ROOT / ".git").exists():
        return set()
    try:
        run = subprocess.run(["git", "check-ignore", "--stdin", "-z"], cwd=ROOT, capture_output=True,
                             input="\0".join(str(p.relative_to(ROOT)) for p in paths), text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {ROOT / p for p in run.stdout.split("\0") if p}


def _candidates(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(MODULE_DIR)
        if not path.is_file() or SKIP_PARTS & set(relative.parts):
            continue
        if any(part.startswith(".") or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        files.append(path)
    return files


def files_on_disk() -> tuple[list[str], list[str]]:
    """(scripts, resources) relative to the module folder, as CMake must list them."""
    candidates = [MODULE_FILE] + [p for package in PACKAGES if (MODULE_DIR / package).is_dir()
                                  for p in _candidates(MODULE_DIR / package)]
    candidates += _candidates(MODULE_DIR / "Resources")
    ignored = _ignored_by_git(candidates)
    scripts, resources = [], []
    for path in candidates:
        if path in ignored:
            continue
        relative = path.relative_to(MODULE_DIR).as_posix()
        (scripts if path.suffix == ".py" else resources).append(relative)
    return sorted(scripts), sorted(resources)


def cmake_block(name: str, entries: list[str]) -> str:
    return "set({}\n{}\n  )".format(name, "\n".join(f"  {e}" for e in entries))


def cmake_lists(text: str) -> dict[str, list[str]]:
    """The entries of every set(MODULE_PYTHON_...) block, with ${MODULE_NAME} expanded."""
    name = re.search(r"set\(MODULE_NAME\s+(\S+?)\s*\)", text)
    module_name = name.group(1) if name else "UnetGANSlicer"
    lists = {}
    for match in re.finditer(r"set\((MODULE_PYTHON_\w+)\s+(.*?)\)", text, re.S):
        entries = []
        for line in match.group(2).splitlines():
            line = line.split("#", 1)[0].strip()
            entries += [e.replace("${MODULE_NAME}", module_name) for e in line.split()]
        lists[match.group(1)] = entries
    return lists


# ---------------------------------------------------------------- packaging

def test_cmake_lists_every_file_of_the_module():
    scripts, resources = files_on_disk()
    lists = cmake_lists(MODULE_CMAKE.read_text())
    problems = []
    for block, expected in (("MODULE_PYTHON_SCRIPTS", scripts), ("MODULE_PYTHON_RESOURCES", resources)):
        listed = lists.get(block, [])
        missing = sorted(set(expected) - set(listed))
        extra = sorted(set(listed) - set(expected))
        duplicated = sorted({e for e in listed if listed.count(e) > 1})
        if missing:
            problems.append(f"{block}: on disk but not listed (missing from the installed extension):\n    "
                            + "\n    ".join(missing))
        if extra:
            problems.append(f"{block}: listed but not on disk:\n    " + "\n    ".join(extra))
        if duplicated:
            problems.append(f"{block}: listed twice: {', '.join(duplicated)}")
    if problems:
        pytest.fail("UnetGANSlicer/CMakeLists.txt is out of date.\n" + "\n".join(problems)
                    + "\n\nUpdate them with: python Testing/test_slicer_files.py --write\n\n"
                    + cmake_block("MODULE_PYTHON_SCRIPTS", scripts) + "\n\n"
                    + cmake_block("MODULE_PYTHON_RESOURCES", resources))


def test_module_cmake_builds_a_scripted_module_with_tests():
    text = MODULE_CMAKE.read_text()
    call = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S)
    assert call, "slicerMacroBuildScriptedModule call missing"
    for word in ("NAME", "SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS"):
        assert re.search(rf"\b{word}\b", call.group(1)), word
    assert re.search(r"if\s*\(\s*BUILD_TESTING\s*\)(.|\n)*slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py",
                     text)
    assert re.search(r"set\(MODULE_NAME\s+UnetGANSlicer\s*\)", text)


def test_top_level_cmake_is_an_extension_depending_on_pytorch():
    text = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"project\(\s*UnetGANSlicer\s*\)", text)
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert re.search(rf'set\({variable}\s+"[^"]+"\)', text), variable
    assert re.search(r"set\(EXTENSION_DEPENDS\s+PyTorch\s*\)", text)
    for line in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})", "add_subdirectory(UnetGANSlicer)",
                 "include(${Slicer_EXTENSION_GENERATE_CONFIG})", "include(${Slicer_EXTENSION_CPACK})"):
        assert line in text, line
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text


def test_extension_index_files():
    entry = json.loads((ROOT / "UnetGANSlicer.json").read_text())
    for key in ("$schema", "category", "scm_url", "scm_revision", "build_dependencies", "tier"):
        assert key in entry, key
    assert entry["build_dependencies"] == ["PyTorch"]
    assert entry["category"] == "Segmentation" and entry["scm_url"].startswith("https://")
    assert "slicer-extension-catalog-entry-schema" in entry["$schema"]
    fields = {}
    for line in (ROOT / "UnetGANSlicer.s4ext").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            fields[key] = value.strip()
    for key in ("scm", "scmurl", "scmrevision", "depends", "homepage", "contributors", "category", "iconurl",
                "description", "screenshoturls", "status", "enabled", "build_subdirectory"):
        assert key in fields, key
    assert fields["depends"] == "PyTorch" and fields["category"] == "Segmentation"
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0" in license_text and "END OF TERMS AND CONDITIONS" in license_text


REPOSITORY_FILE_URL = "https://raw.githubusercontent.com/unetganslicer/UnetGANSlicer/main/"
CONTRIBUTORS = re.compile(r"^[^(),]+ \([^()]+\)(, [^(),]+ \([^()]+\))*$")  # Name (Organisation), ...


def extension_metadata() -> dict[str, dict[str, str]]:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    s4ext = {}
    for line in (ROOT / "UnetGANSlicer.s4ext").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            s4ext[key] = value.strip()
    return {"CMakeLists.txt": {"screenshots": re.search(r'set\(EXTENSION_SCREENSHOTURLS\s+"([^"]*)"\)', cmake).group(1),
                               "icon": re.search(r'set\(EXTENSION_ICONURL\s+"([^"]*)"\)', cmake).group(1),
                               "contributors": re.search(r'set\(EXTENSION_CONTRIBUTORS\s+"([^"]*)"\)', cmake).group(1)},
            "UnetGANSlicer.s4ext": {"screenshots": s4ext["screenshoturls"], "icon": s4ext["iconurl"],
                                    "contributors": s4ext["contributors"]}}


def test_extension_screenshots_and_icon_exist_and_contributors_name_organisations():
    for source, fields in extension_metadata().items():
        urls = fields["screenshots"].split() + [fields["icon"]]
        assert urls and all(url.startswith(REPOSITORY_FILE_URL) for url in urls), (source, urls)
        for url in urls:
            path = ROOT / url[len(REPOSITORY_FILE_URL):]
            assert path.is_file(), f"{source}: {url} points to a file that is not in the repository"
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        assert CONTRIBUTORS.match(fields["contributors"]), (source, fields["contributors"])
    assert not CONTRIBUTORS.match("UnetGANSlicer team")  # the check can fail
    assert (ROOT / "scripts" / "slicer_screenshot.py").is_file()  # the screenshot is made by a committed script


def test_icon_is_a_128_pixel_png():
    data = (MODULE_DIR / "Resources" / "Icons" / "UnetGANSlicer.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (128, 128)


def test_requirements_never_name_slicers_own_packages():
    lines = [line.split("#", 1)[0].strip() for line in
             (MODULE_DIR / "Resources" / "requirements.txt").read_text().splitlines()]
    names = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower() for line in lines if line}
    assert not names & {"torch", "numpy", "simpleitk", "vtk"}
    assert {"pydicom", "monai", "safetensors", "tqdm", "psutil", "scipy"} <= names


def test_terminology_file_loads_in_slicer_logic():
    import slicer

    path = MODULE_DIR / "Resources" / "Terminology" / "UnetGANSlicer.term.json"
    context = slicer.vtkSlicerTerminologiesModuleLogic().LoadTerminologyFromFile(str(path))
    sys.path.insert(0, str(MODULE_DIR))
    from UnetGANSlicerLib.segmentation import SEGMENTS

    assert all(spec.terminology_entry.startswith(context + "~") for spec in SEGMENTS)
    data = json.loads(path.read_text())
    codes = {t["CodeValue"] for c in data["SegmentationCodes"]["Category"] for t in c["Type"]}
    assert {spec.type_code[0] for spec in SEGMENTS} <= codes


# ---------------------------------------------------------------- module file and UI

def _ui_tree():
    return ET.parse(UI_FILE).getroot()


def ui_object_names() -> set[str]:
    return {w.get("name") for w in _ui_tree().iter() if w.tag in ("widget", "layout", "spacer") and w.get("name")}


def module_ui_names() -> set[str]:
    """Every ``self.ui.<name>`` the module file and its Qt package use."""
    names = set()
    for path in [MODULE_FILE, *sorted(GUI_DIR.glob("*.py"))]:
        names |= _ui_names(ast.parse(path.read_text()))
    return names


def _ui_names(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def test_every_ui_name_used_by_the_module_exists():
    used, defined = module_ui_names(), ui_object_names()
    assert used, "the module uses no self.ui widgets?"
    assert not used - defined, f"used in UnetGANSlicer.py but not in the .ui file: {sorted(used - defined)}"


def test_ui_has_the_sections_and_parameter_bindings():
    root = _ui_tree()
    sections = [w.find("./property[@name='text']/string").text for w in root.iter("widget")
                if w.get("class") == "ctkCollapsibleButton"]
    assert sections == ["Inputs", "Adapt && Segment", "Results", "Train adapter"]
    bindings = {}
    for widget in root.iter("widget"):
        prop = widget.find("./property[@name='SlicerParameterName']/string")
        if prop is not None:
            bindings[prop.text] = (widget.get("name"), widget.get("class"))
    assert bindings["inputVolume"] == ("inputVolumeSelector", "qMRMLNodeComboBox")
    assert bindings["device"][1] == "QComboBox"
    assert bindings["trainingFolder"][1] == "ctkPathLineEdit"
    assert bindings["iterations"][1] == "QSpinBox"
    # every bound name is a field of the parameter node wrapper
    tree = ast.parse(PARAMETERS_FILE.read_text())
    wrapper = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "UnetGANSlicerParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert set(bindings) <= fields, set(bindings) - fields
    # the flip-averaging choice offers the backend's settings, its default first and selected
    from unetgan.tta import DEFAULT_TTA, TTA_FLIPS

    assert bindings["testTimeAugmentation"][1] == "QComboBox"
    tta = next(n for n in wrapper.body if isinstance(n, ast.AnnAssign) and n.target.id == "testTimeAugmentation")
    choice = next(n for n in ast.walk(tta.annotation) if isinstance(n, ast.Call) and ast.unparse(n.func) == "Choice")
    offered = ast.literal_eval(choice.args[0])
    assert set(offered) == set(TTA_FLIPS) and offered[0] == DEFAULT_TTA == ast.literal_eval(tta.value)
    classes = {w.get("class") for w in root.iter("widget")}
    assert {"qMRMLNodeComboBox", "ctkPathLineEdit", "QProgressBar", "qMRMLTableView", "QPushButton",
            "QPlainTextEdit"} <= classes  # the backend's log in the panel
    declared = {c.find("class").text for c in root.iter("customwidget")}
    assert {c for c in classes if c.startswith(("ctk", "qMRML"))} <= declared


def test_module_file_compiles_and_has_the_slicer_classes(tmp_path):
    py_compile.compile(str(MODULE_FILE), cfile=str(tmp_path / "m.pyc"), doraise=True)
    tree = ast.parse(MODULE_FILE.read_text())
    classes = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert classes["UnetGANSlicer"] == ["ScriptedLoadableModule"]
    assert classes["UnetGANSlicerWidget"] == ["ScriptedLoadableModuleWidget", "VTKObservationMixin"]
    assert classes["UnetGANSlicerLogic"] == ["ScriptedLoadableModuleLogic"]
    assert classes["UnetGANSlicerTest"] == ["ScriptedLoadableModuleTest"]
    decorated = [n for n in ast.parse(PARAMETERS_FILE.read_text()).body
                 if isinstance(n, ast.ClassDef) and n.name == "UnetGANSlicerParameterNode"]
    assert decorated and ast.unparse(decorated[0].decorator_list[0]) == "parameterNodeWrapper"
    # the module file stays the module's entry points: the panel, logic and installer live in their packages
    assert len(MODULE_FILE.read_text().splitlines()) <= 130


def test_module_file_has_no_side_effects_at_import():
    """Top level: imports, constants, classes and functions only; the backend and the panel are imported lazily."""
    tree = ast.parse(MODULE_FILE.read_text())
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n and n.split(".")[0] in ("unetgan", "UnetGANSlicerLib", "UnetGANSlicerGUI", "torch", "qt")
                           for n in names), names
            continue
        ok = isinstance(node, (ast.ClassDef, ast.FunctionDef)) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) or (
            isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List, ast.Tuple)))
        assert ok, f"top-level statement with effects at line {node.lineno}: {ast.unparse(node)[:80]}"
    # the layout and Sample Data are registered when Slicer has started, not when the module is opened
    assert 'slicer.app.connect("startupCompleted()", onStartupCompleted)' in MODULE_FILE.read_text()
    startup = (GUI_DIR / "startup.py").read_text()
    assert "layout.register_layout(slicer.mrmlScene)" in startup and "sample_data.load_and_show" in startup
    # packages are installed with Slicer's documented pip_install and the PyTorch extension, after asking
    dialogs = (GUI_DIR / "install_dialogs.py").read_text()
    assert "slicer.util.pip_install(arguments)" in dialogs and "confirm=slicer.util.confirmOkCancelDisplay" in dialogs
    install = (MODULE_DIR / "UnetGANSlicerLib" / "install.py").read_text()
    assert "installTorch(askConfirmation=ask, torchVersionRequirement=requirement)" in install


def test_the_mrml_layer_never_imports_qt():
    """UnetGANSlicerLib stays Qt-free (tested on slicer-core); Qt code lives in UnetGANSlicerGUI."""
    problems = []
    for path in sorted((MODULE_DIR / "UnetGANSlicerLib").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            problems += [f"{path.name}: {n}" for n in names
                         if n.split(".")[0] in ("qt", "ctk", "PythonQt", "UnetGANSlicerGUI", "SampleData")]
    assert not problems, problems


def test_mrml_layer_imports_without_qt_or_torch():
    code = ("import sys; import UnetGANSlicerLib, UnetGANSlicerLib.workflow, UnetGANSlicerLib.layout, "
            "UnetGANSlicerLib.training, UnetGANSlicerLib.models, UnetGANSlicerLib.module_logic, "
            "UnetGANSlicerLib.background, UnetGANSlicerLib.install, UnetGANSlicerLib.panel_jobs, "
            "UnetGANSlicerLib.editor; "
            "bad = [m for m in ('torch', 'qt', 'ctk', 'PythonQt') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], cwd=MODULE_DIR, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(MODULE_DIR)})
    assert run.returncode == 0, run.stdout + run.stderr


def write_cmake_lists(path: Path = MODULE_CMAKE) -> None:
    """Replace the two lists in the module's CMakeLists.txt with the files on disk."""
    scripts, resources = files_on_disk()
    text = path.read_text()
    for name, entries in (("MODULE_PYTHON_SCRIPTS", scripts), ("MODULE_PYTHON_RESOURCES", resources)):
        text, count = re.subn(rf"set\({name}\s.*?\)", lambda m: cmake_block(name, entries), text, count=1, flags=re.S)
        assert count == 1, f"no set({name} ...) block in {path}"
    path.write_text(text)


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_cmake_lists()
        print(f"updated {MODULE_CMAKE}")
    else:
        found_scripts, found_resources = files_on_disk()
        print(cmake_block("MODULE_PYTHON_SCRIPTS", found_scripts))
        print()
        print(cmake_block("MODULE_PYTHON_RESOURCES", found_resources))
