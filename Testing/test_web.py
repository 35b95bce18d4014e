"""The web page (UnetGANSlicerWeb) in a real headless Chromium, driven with Playwright.

One server (a subprocess on a free localhost port) serves the module; the tests
run in order on it, as one user would:

1. phantom cine -> Adapt & Segment -> result (segments, table), the two views show
   different images, the frame slider and play button step the cine, a paint
   stroke changes the blood-pool volume, Save writes .seg.nrrd files with the
   segment names inside and asks before overwriting;
2. errors reach the page (a missing adapter file, a save folder outside the output folder)
   and Cancel stops a run;
3. other inputs: a wrong upload type is refused, a small .nrrd volume is uploaded, a DICOM
   cine folder is loaded by its path on the server.

Models are tiny random networks written here (plumbing, not accuracy). The
browser is Debian's Chromium (``apt-get install -y chromium``); without it these
tests fail with that instruction. Screenshots and the server's log go to
``Testing/artifacts/`` (``scripts/web_screenshot.py`` makes the README's picture
with the shipped models instead of these random ones).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import write_tiny_adapter, write_tiny_lvunet
from unetgan.tta import DEFAULT_TTA

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = ROOT / "UnetGANSlicer"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("UNETGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("install Debian's Chromium for the browser tests: sudo apt-get update && "
                "sudo apt-get install -y chromium  (or set UNETGAN_CHROMIUM to a Chromium binary)")
N_PHASES, N_SLICES = 3, 4
SEGMENT_NAMES = {"Left ventricle blood pool", "Myocardium"}
SERVER_START_S = 180
RUN_TIMEOUT_MS = 180_000
EDIT_TIMEOUT_MS = 60_000


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def chromium():
    """The system Chromium and Playwright: missing ones fail the tests with how to install them."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the Python package 'playwright' is missing: pip install playwright "
                    "(its own browser download is not needed)", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A models.json with a tiny random LV-Unet, a tiny random adapter and an adapter whose file is missing."""
    folder = tmp_path_factory.mktemp("web-models")
    write_tiny_lvunet(folder / "lvunet_tiny.safetensors", labels_voxels=True)
    # not residual: a random generator changes the image visibly, so the two views differ
    write_tiny_adapter(folder / "adapter_tiny.safetensors")
    registry = folder / "models.json"
    registry.write_text(json.dumps({"models": [
        {"name": "lvunet-tiny-default", "kind": "segmenter", "file": "lvunet_tiny.safetensors", "sha256": None},
        {"name": "adapter-tiny-siemens", "kind": "adapter", "target_vendor": "Siemens", "source_vendor": "Philips",
         "file": "adapter_tiny.safetensors", "sha256": None},
        {"name": "adapter-missing-ge", "kind": "adapter", "target_vendor": "GE", "source_vendor": "Philips",
         "file": "no_such_file.safetensors", "sha256": None},
    ]}))
    return registry


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(arguments: list[str], models: Path, output: Path, log_name: str, probe: str = ""):
    """``python -m UnetGANSlicerWeb ARGUMENTS`` until the block ends; waits for ``probe`` (a URL) to answer,
    any HTTP status (a signed-in server answers 403 without its token)."""
    ARTIFACTS.mkdir(exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", UNETGAN_REGISTRY=str(models))
    env["PYTHONPATH"] = os.pathsep.join([str(MODULE_DIR), *filter(None, [env.get("PYTHONPATH")])])
    log_path = ARTIFACTS / log_name
    log = open(log_path, "wb")
    process = subprocess.Popen([sys.executable, "-m", "UnetGANSlicerWeb", *arguments], stdout=log,
                               stderr=subprocess.STDOUT, env=env, cwd=str(output), start_new_session=True)
    deadline = time.monotonic() + SERVER_START_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the web server exited ({process.returncode}):\n{_tail(log_path)}", pytrace=False)
            try:
                with urllib.request.urlopen(probe, timeout=2):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the web server did not answer within {SERVER_START_S} s:\n{_tail(log_path)}",
                            pytrace=False)
            time.sleep(0.5)
        yield process, log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        log.close()


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """One page process (``--single-session``) on a free localhost port; yields (url, output folder).
    Server paths are allowed inside pytest's temporary folders (``--data-root``)."""
    output = tmp_path_factory.mktemp("web-output")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    arguments = ["--single-session", "--host", "127.0.0.1", "--port", str(port), "--output-dir", str(output),
                 "--device", "cpu", "--adapter", "adapter-tiny-siemens", "--phantom-phases", str(N_PHASES),
                 "--phantom-slices", str(N_SLICES), "--data-root", str(tmp_path_factory.getbasetemp())]
    with serving(arguments, models, output, "web_server.log", probe=url):
        yield url, output


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in text if "WARN|" not in line)[-4000:] if text else "(no output)"


@contextlib.contextmanager
def browser_pages(playwright, chromium, count: int = 1):
    """``count`` pages of Chromium, each in its own profile (cookies apart: two users)."""
    contexts, profiles = [], []
    try:
        for _ in range(count):
            profiles.append(tempfile.mkdtemp(prefix="unetgan-chromium-"))
            contexts.append(playwright.chromium.launch_persistent_context(
                profiles[-1], executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1600, "height": 1000}))
        pages = [context.new_page() for context in contexts]
        for page in pages:
            page.set_default_timeout(30_000)
        yield pages
    finally:
        for context in contexts:
            context.close()
        for profile in profiles:
            shutil.rmtree(profile, ignore_errors=True)


def open_page(page, url: str, timeout: int = 30_000):
    page.goto(url)
    page.wait_for_selector("#ug-phantom", timeout=timeout)
    page.wait_for_function("() => window.trame && window.trame.state", timeout=timeout)


@pytest.fixture(scope="module")
def page(chromium, server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as playwright, browser_pages(playwright, chromium) as (page,):
        open_page(page, url)
        yield page


# ---------------------------------------------------------------- helpers

def state(page, key):
    return page.evaluate("(key) => window.trame.state.get(key)", key)


def set_state(page, key, value):
    page.evaluate("([key, value]) => window.trame.state.set(key, value)", [key, value])


def wait_state(page, expression: str, timeout: int = 30_000):
    """Wait until a JavaScript expression over ``s`` (the trame state getter) is true."""
    page.wait_for_function(f"() => {{ const s = (k) => window.trame.state.get(k); return {expression}; }}",
                           timeout=timeout)


def shot(page, name: str) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def view_pixels(page, attempts: int = 20) -> list[np.ndarray]:
    """The two slice views as RGB arrays, from screenshots of their images (once both have the same size)."""
    from PIL import Image

    images = page.locator("#ug-views img.image-display-area")
    assert images.count() == 2
    for _ in range(attempts):
        arrays = []
        for i in range(2):
            path = ARTIFACTS / f"web_view_{i}.png"
            images.nth(i).screenshot(path=str(path))
            arrays.append(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32))
        if arrays[0].shape == arrays[1].shape:
            return arrays
        page.wait_for_timeout(500)  # one view's image is still being re-rendered at its new size
    return arrays


def blood(page) -> list[str]:
    return [row["blood"] for row in state(page, "ug_frame_rows")]


def paint_stroke(page, fx: float, fy: float, steps: int = 20):
    box = page.locator("#ug-views img.image-display-area").first.bounding_box()
    x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x + 7 * i, y + 5 * i)
        page.wait_for_timeout(40)
    page.mouse.up()


def segment_names_in(path: Path) -> set[str]:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    keys = reader.GetMetaDataKeys()
    return {reader.GetMetaData(k) for k in keys if k.startswith("Segment") and k.endswith("_Name")}


# ---------------------------------------------------------------- tests

def test_adapt_segment_edit_and_save(page, server):
    _, output = server
    assert state(page, "ug_adapter") == "adapter-tiny-siemens"
    assert "none" in [item["value"] for item in state(page, "ug_adapters")]

    page.click("#ug-phantom")
    wait_state(page, "s('ug_has_input') && s('ug_is_cine')", timeout=90_000)
    assert state(page, "ug_n_frames") == N_PHASES
    assert state(page, "ug_tta") == DEFAULT_TTA  # the backend's default
    set_state(page, "ug_tta", "flip")  # the page's choice reaches the backend (the saved numbers say so)

    started = time.monotonic()
    page.click("#ug-run")
    wait_state(page, "s('ug_running')", timeout=10_000)
    wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
    assert not state(page, "ug_error"), state(page, "ug_error")
    assert set(state(page, "ug_segment_names")) == SEGMENT_NAMES
    assert state(page, "ug_progress_done") == state(page, "ug_progress_total") == N_PHASES
    summary = {row["name"]: row["value"] for row in state(page, "ug_summary")}
    assert {"End-diastolic volume (EDV)", "End-systolic volume (ESV)", "Stroke volume (SV)",
            "Ejection fraction (EF)", "Myocardial mass at ED"} <= set(summary)
    page.wait_for_selector("#ug-summary >> text=Ejection fraction (EF)")
    assert len(state(page, "ug_frame_rows")) == N_PHASES
    assert state(page, "ug_curve").startswith("data:image/png;base64,")
    print(f"Adapt & Segment in the page: {time.monotonic() - started:.1f} s")

    # the two views: images (not blank), and different ones (original | translated)
    page.wait_for_timeout(1500)
    left, right = view_pixels(page)
    assert left.shape == right.shape
    assert left.std() > 5 and right.std() > 5
    difference = float(np.abs(left - right).mean())
    assert difference > 2.0, f"the original and translated views look the same (mean |diff| {difference:.2f})"

    # frames: the slider's value reaches the server's sequence browser; play steps it
    set_state(page, "ug_frame", 2)
    wait_state(page, "s('ug_frame_shown') === 2")
    page.click("#ug-play")
    wait_state(page, "s('ug_playing') && s('ug_frame_shown') !== 2", timeout=20_000)
    page.click("#ug-play")
    wait_state(page, "!s('ug_playing')")
    set_state(page, "ug_frame", 1)
    wait_state(page, "s('ug_frame_shown') === 1")

    # manual correction: a paint stroke on frame 1 changes its blood-pool volume
    before = blood(page)
    page.locator("#ug-segment-editor button:has(.mdi-brush)").first.click()
    page.wait_for_selector("#ug-segment-editor button.v-btn--active:has(.mdi-brush)")
    paint_stroke(page, 0.25, 0.3)
    wait_state(page, f"s('ug_frame_rows')[0].blood !== {json.dumps(before[0])}", timeout=EDIT_TIMEOUT_MS)
    after = blood(page)
    assert after[0] != before[0] and after[1:] == before[1:]
    assert state(page, "ug_edited")
    page.locator("#ug-segment-editor button:has(.mdi-cursor-default)").first.click()
    page.wait_for_timeout(1000)
    shot(page, "web_workflow.png")

    # save: .seg.nrrd files with the segment names inside, the numbers as edited
    page.fill("#ug-save-folder", "web test")
    page.fill("#ug-save-name", "phantom_case")
    page.click("#ug-save")
    wait_state(page, "s('ug_saved_files').length > 0")
    saved = [output / f for f in state(page, "ug_saved_files")]
    assert all(path.is_file() for path in saved), saved
    segmentations = [p for p in saved if p.name.endswith(".seg.nrrd")]
    assert len(segmentations) == N_PHASES
    for path in segmentations:
        assert segment_names_in(path) == SEGMENT_NAMES, path
    assert any(p.name.endswith("_translated.seq.nrrd") for p in saved)
    assert any(p.suffix == ".csv" for p in saved)
    numbers = json.loads(next(p for p in saved if p.name.endswith("_measurements.json")).read_text())
    assert f"{numbers['frames'][0]['blood_pool_ml']:.1f}" == f"{float(after[0]):.1f}"
    assert numbers["test_time_augmentation"] == "flip"
    assert not [p for p in output.parent.iterdir() if p.name.startswith("phantom_case")]

    # saving again asks first; "Keep them" leaves the files as they were, "Overwrite" replaces them
    stamps = {p: p.stat().st_mtime_ns for p in saved}
    page.click("#ug-save")
    wait_state(page, "s('ug_confirm_overwrite')")
    assert len(state(page, "ug_confirm_files")) >= N_PHASES + 1
    page.click("#ug-keep")
    wait_state(page, "!s('ug_confirm_overwrite')")
    assert {p: p.stat().st_mtime_ns for p in saved} == stamps
    set_state(page, "ug_saved_files", [])
    page.click("#ug-save")
    wait_state(page, "s('ug_confirm_overwrite')")
    page.click("#ug-overwrite")
    wait_state(page, "s('ug_saved_files').length > 0")
    assert all(p.stat().st_mtime_ns != stamps[p] for p in segmentations)

    # the report downloads without the tab leaving the page (here one process serves the page and the file)
    report = output / "web test" / "phantom_case_report.pdf"
    with page.expect_download() as download:
        page.click("#ug-download-pdf")
    assert Path(download.value.path()).read_bytes() == report.read_bytes()
    page.wait_for_timeout(1000)
    assert page.evaluate("() => window.trame.client.isConnected()") and state(page, "ug_edited")


def test_errors_are_shown_in_the_page(page, server):
    _, output = server
    # a save folder outside the output folder is refused, and nothing is written
    set_state(page, "ug_show_error", False)
    page.fill("#ug-save-folder", "../escape")
    page.click("#ug-save")
    wait_state(page, "s('ug_show_error')")
    assert "must not contain '..'" in state(page, "ug_error")
    page.wait_for_selector("#ug-error-alert")
    assert not (output.parent / "escape").exists()

    # Cancel stops a running Adapt & Segment (the backend needs seconds to start: the click lands first)
    seconds = state(page, "ug_seconds")
    page.click("#ug-run")
    wait_state(page, "s('ug_running')", timeout=10_000)
    page.click("#ug-cancel")
    wait_state(page, "!s('ug_running')", timeout=30_000)
    assert state(page, "ug_message").startswith("Cancelled"), state(page, "ug_message")
    assert state(page, "ug_seconds") == seconds  # the shown result is still the first run's

    # a registry adapter whose file is missing: the backend's error reaches the page
    set_state(page, "ug_show_error", False)
    set_state(page, "ug_adapter", "adapter-missing-ge")
    page.click("#ug-run")
    wait_state(page, "s('ug_show_error') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
    message = state(page, "ug_error")
    assert "Adapt & Segment failed" in message and "no_such_file.safetensors" in message, message
    assert page.locator("#ug-error").is_visible() or page.locator("#ug-error-alert").is_visible()
    shot(page, "web_error.png")
    set_state(page, "ug_adapter", "adapter-tiny-siemens")


def test_other_inputs(page, tmp_path):
    import SimpleITK as sitk

    # a wrong type is refused in the page (before anything is sent)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    set_state(page, "ug_show_error", False)
    page.set_input_files("#ug-upload", str(text_file))
    wait_state(page, "s('ug_show_error')")
    assert "not an accepted image type" in state(page, "ug_error")

    # a small 3D volume is uploaded and replaces the cine
    volume = np.random.default_rng(0).normal(100, 20, (4, 48, 40)).astype(np.float32)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((1.5, 1.5, 8.0))
    path = tmp_path / "small volume.nrrd"
    sitk.WriteImage(image, str(path))
    set_state(page, "ug_show_error", False)
    page.set_input_files("#ug-upload", str(path))
    wait_state(page, "s('ug_has_input') && !s('ug_is_cine') && s('ug_input_name').includes('uploaded')",
               timeout=60_000)
    assert state(page, "ug_input_name") == "small_volume.nrrd (uploaded)"
    assert not state(page, "ug_has_result")
    assert not state(page, "ug_show_error"), state(page, "ug_error")

    # a NIfTI whose sform is orthonormal only to 1e-4 (as converters write them) is read with a warning
    from test_hostile_inputs import mha_header, nrrd_header, rounded_sform_nifti

    rounded = rounded_sform_nifti(tmp_path / "rounded.nii.gz", 1e-4)
    page.set_input_files("#ug-upload", str(rounded))
    wait_state(page, "s('ug_input_name') === 'rounded.nii.gz (uploaded)'", timeout=60_000)
    assert any("orthonormal only to 1.0e-04" in w for w in state(page, "ug_warnings")), state(page, "ug_warnings")
    assert "orthonormal only to 1.0e-04" in page.locator("#ug-warnings").inner_text()  # shown, not only kept
    page.set_input_files("#ug-upload", str(path))
    wait_state(page, "s('ug_input_name') === 'small_volume.nrrd (uploaded)'", timeout=60_000)

    # headers pointing to a file on the server are refused, and its bytes reach nothing
    secret = tmp_path / "server-secret.raw"
    secret.write_bytes(b"SERVER-SECRET-BYTES-" * 4)
    headers = {"pointer.mha": mha_header(str(secret)), "pointer.nrrd": nrrd_header(str(secret))}
    for name, text in headers.items():
        (tmp_path / name).write_text(text)
        set_state(page, "ug_show_error", False)
        page.set_input_files("#ug-upload", str(tmp_path / name))
        wait_state(page, "s('ug_show_error')", timeout=60_000)
        message = state(page, "ug_error")
        assert "points to a separate data file" in message and name in message, message
        assert state(page, "ug_input_name") == "small_volume.nrrd (uploaded)"  # the scene kept the last image
        shown = [state(page, key) for key in ("ug_error", "ug_input_name", "ug_input_info", "ug_warnings")]
        assert "SERVER-SECRET" not in json.dumps(shown)

    # a DICOM cine folder on the server, by path
    from unetgan.phantom import make_study, write_study

    folder = write_study(make_study("GE", seed=1, n_phases=N_PHASES, n_slices=N_SLICES), tmp_path, fmt="dicom",
                         name="ge")["dicom_dir"]
    page.fill("#ug-server-path", str(folder))
    page.click("button:has-text('Load')")
    wait_state(page, "s('ug_is_cine') && s('ug_input_name').endsWith('ge_dicom')", timeout=60_000)
    assert state(page, "ug_n_frames") == N_PHASES
    assert state(page, "ug_input_info").startswith(f"{N_PHASES} frames x {N_SLICES} slices")
    # a file of another type on the server is refused
    set_state(page, "ug_show_error", False)
    page.fill("#ug-server-path", str(tmp_path / "notes.txt"))
    page.click("button:has-text('Load')")
    wait_state(page, "s('ug_show_error')")
    assert "not an image type" in state(page, "ug_error")
