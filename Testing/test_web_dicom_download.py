"""A DICOM study in the page served as `unetgan web` serves it by default (the launcher: one process per tab),
in real Chromium: nothing lost, only what is shipped, safe edits.

One launcher (loopback, no sign-in, one session at most) and one tab, as a user would:

- the adapter list is Automatic (the default), the registry's adapters by vendor name, None, then the user's
  own; a GE DICOM cine (the phantom's, Manufacturer "GE") loaded by its path on the server runs with the GE
  adapter without the user choosing, and the right view says which look it was translated to;
- the editor starts with a 2D brush: a stroke on one slice changes that slice only (the masks saved before and
  after the stroke differ on one slice of one frame);
- leaving with unsaved edits asks first, and staying keeps the session;
- Save offers the PDF report and the DICOM SEG; downloading both gives exactly the saved bytes and the tab stays
  in its session: same page, the edit and its numbers still shown, the server still answering;
- a second tab beyond the session limit gets a page saying what happened;
- an upload (no DICOM origin) runs with Automatic as `--adapter auto` does: the label-free choice, with a warning;
- the download route answers this page's ticket only, and only the files of the last Save.

Server helpers, browser and tiny random models are test_web.py's (plumbing, not accuracy).
"""
from __future__ import annotations

import csv
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import write_tiny_adapter
from test_web import (EDIT_TIMEOUT_MS, N_PHASES, N_SLICES, RUN_TIMEOUT_MS, _free_port, blood,  # noqa: F401
                      browser_pages, chromium, models, open_page, paint_stroke, serving, set_state, state,
                      wait_state)

pytestmark = pytest.mark.browser

SESSION_START_MS = 240_000  # a session process imports VTK, MRML and torch on a loaded machine


@pytest.fixture(scope="module")
def registries(models, tmp_path_factory):
    """test_web's registry with a GE adapter whose file exists, and a user registry with one adapter."""
    folder = models.parent
    write_tiny_adapter(folder / "adapter_tiny_ge.safetensors", target_vendor="GE")
    entries = [e for e in json.loads(models.read_text())["models"] if e.get("target_vendor") != "GE"]
    entries.append({"name": "adapter-tiny-ge", "kind": "adapter", "target_vendor": "GE", "source_vendor": "Philips",
                    "file": "adapter_tiny_ge.safetensors", "sha256": None})
    registry = folder / "models_with_ge.json"
    registry.write_text(json.dumps({"models": entries}))
    user_folder = tmp_path_factory.mktemp("user-models")
    user_file = write_tiny_adapter(user_folder / "mine.safetensors", target_vendor="GE")
    from UnetGANSlicerLib.models import register_user_model

    user_registry = user_folder / "models.json"
    register_user_model(user_file, "my-ge-adapter", "adapter", user_registry, "Philips", "GE")
    return registry, user_registry


@pytest.fixture(scope="module")
def launcher(registries, tmp_path_factory):
    """``unetgan web`` as by default (the launcher), one session at most; yields (url, output folder)."""
    registry, user_registry = registries
    output = tmp_path_factory.mktemp("web-dicom-output")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    arguments = ["--host", "127.0.0.1", "--port", str(port), "--sessions", "1", "--output-dir", str(output),
                 "--device", "cpu", "--data-root", str(tmp_path_factory.getbasetemp())]
    saved = os.environ.get("UNETGAN_USER_REGISTRY")
    os.environ["UNETGAN_USER_REGISTRY"] = str(user_registry)  # the session processes inherit it
    try:
        with serving(arguments, registry, output, "web_dicom_launcher.log", probe=url):
            yield url, output
    finally:
        if saved is None:
            os.environ.pop("UNETGAN_USER_REGISTRY", None)
        else:
            os.environ["UNETGAN_USER_REGISTRY"] = saved


def download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path()).read_bytes()


def saved_labels(output: Path, page, name: str) -> np.ndarray:
    """Save under ``name`` and read the labelmap (T, Z, Y, X) the page wrote."""
    import SimpleITK as sitk

    set_state(page, "ug_saved_files", [])
    page.fill("#ug-save-name", name)
    page.click("#ug-save")
    wait_state(page, "s('ug_saved_files').length > 0", timeout=60_000)
    assert not state(page, "ug_error"), state(page, "ug_error")
    root = Path(state(page, "ug_output_root"))  # the session's own sub-folder of the output folder
    assert root.parent == output
    path = root / next(f for f in state(page, "ug_saved_files") if f.endswith(f"{name}_labelmap.nrrd"))
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def connected(page) -> bool:
    return page.evaluate("() => window.trame.client.isConnected()")


def test_dicom_study_in_a_session(chromium, launcher, tmp_path):  # noqa: F811 - chromium: test_web's fixture
    from playwright.sync_api import sync_playwright

    from unetgan.phantom import make_study, write_study

    url, output = launcher
    folder = write_study(make_study("GE", seed=4, n_phases=N_PHASES, n_slices=N_SLICES, matrix=96), tmp_path,
                         fmt="dicom", name="ge")["dicom_dir"]
    first = pydicom.dcmread(next(p for p in sorted(folder.rglob("*")) if p.is_file()), stop_before_pixels=True)
    assert first.Manufacturer == "GE"

    with sync_playwright() as playwright, browser_pages(playwright, chromium) as (page,):
        open_page(page, url, timeout=SESSION_START_MS)
        session_port = state(page, "ug_upload_port")
        assert session_port != int(url.rsplit(":", 1)[1].strip("/"))  # a session process, not the launcher

        # only what is shipped, Automatic first and chosen
        assert [item["title"] for item in state(page, "ug_adapters")] == [
            "Automatic", "Siemens", "GE", "None", "my-ge-adapter (yours)"]
        assert state(page, "ug_adapter") == "auto"

        page.fill("#ug-server-path", str(folder))
        page.click("button:has-text('Load')")
        wait_state(page, "s('ug_is_cine') && s('ug_input_name').endsWith('ge_dicom')", timeout=60_000)
        assert "GE, from DICOM" in page.locator("#ug-adapter-note").inner_text()
        page.click("#ug-run")
        wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
        assert not state(page, "ug_error"), state(page, "ug_error")
        assert page.locator("#ug-right-title").inner_text() == "Translated to the Philips look"
        assert not state(page, "ug_edited")
        before = saved_labels(output, page, "before")
        numbers = json.loads(next(output.rglob("before_measurements.json")).read_text())
        assert numbers["adapter"] == "GE" and numbers["edited"] is False

        # a stroke with the editor's first brush paints one slice of the frame shown
        assert state(page, "ug_frame_shown") == 1
        blood_before = blood(page)
        page.locator("#ug-segment-editor button:has(.mdi-brush)").first.click()
        page.wait_for_selector("#ug-segment-editor button.v-btn--active:has(.mdi-brush)")
        paint_stroke(page, 0.25, 0.3)
        wait_state(page, f"s('ug_frame_rows')[0].blood !== {json.dumps(blood_before[0])}", timeout=EDIT_TIMEOUT_MS)
        wait_state(page, "s('ug_edited') && s('ug_unsaved_edits')")
        assert state(page, "ug_edited_frames") == [1]
        edited_blood = blood(page)

        # leaving with unsaved edits asks; staying keeps the session
        dialogs = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
        page.close(run_before_unload=True)
        page.wait_for_timeout(1500)
        assert dialogs == ["beforeunload"] and not page.is_closed() and connected(page)

        after = saved_labels(output, page, "after")
        changed = np.argwhere(after != before)  # (t, z, y, x) of every voxel the stroke changed
        assert len(changed) > 0
        assert set(changed[:, 0]) == {0} and len(set(changed[:, 1])) == 1, sorted(set(map(tuple, changed[:, :2])))
        assert not state(page, "ug_unsaved_edits")
        # the page shows what the files say: ED/ES frame numbers, the warnings of the edited numbers
        root = Path(state(page, "ug_output_root"))
        with open(root / "after_measurements.csv", newline="") as table:
            saved_summary = {row["Measurement"]: row["Value"] for row in csv.DictReader(table)}
        shown = {row["name"]: row["value"] for row in state(page, "ug_summary")}
        for name in ("ED frame", "ES frame"):
            assert float(shown[name]) == float(saved_summary[name]), (name, shown[name], saved_summary[name])
        saved_numbers = json.loads((root / "after_measurements.json").read_text())
        assert saved_numbers["edited"] is True and saved_numbers["edited_frames"] == [1]
        assert set(saved_numbers["warnings"]) <= set(state(page, "ug_warnings"))
        # (the tiny random segmenter labels far too much: the plausibility check speaks, and the page shows it)
        assert "outside what a human left ventricle holds" in page.locator("#ug-warnings").inner_text()

        # the downloads: the saved bytes, and the tab still in its session with the edit shown
        assert {d["kind"] for d in state(page, "ug_downloads")} == {"pdf", "seg"}
        page_url = page.url
        report = next(output.rglob("after_report.pdf"))
        seg = next(output.rglob("after_segmentation.seg.dcm"))
        assert download(page, "#ug-download-pdf") == report.read_bytes()
        assert download(page, "#ug-download-seg") == seg.read_bytes()
        assert report.read_bytes().startswith(b"%PDF-")
        header = pydicom.dcmread(seg, stop_before_pixels=True)
        assert header.Modality == "SEG" and int(header.NumberOfFrames) == 2 * N_PHASES * N_SLICES
        page.wait_for_timeout(2000)
        assert page.url == page_url and connected(page) and not state(page, "ug_show_error")
        assert state(page, "ug_edited") and blood(page) == edited_blood
        assert page.locator("#ug-edited").is_visible()
        # undoing the stroke makes the masks the backend's again, and the page says so
        page.locator("button:has(.mdi-undo)").first.click()
        wait_state(page, "!s('ug_edited')", timeout=EDIT_TIMEOUT_MS)
        assert blood(page) == blood_before and page.locator("#ug-edited").count() == 0
        set_state(page, "ug_frame", 2)  # the server answers: the session lives
        wait_state(page, "s('ug_frame_shown') === 2")
        ticket = state(page, "ug_upload_ticket")

        # one session at most: a second tab is told what happened
        other = page.context.new_page()
        other.goto(url)
        other.wait_for_function("() => document.body.innerText.includes('sessions this server allows')",
                                timeout=60_000)
        assert "Nothing of yours was lost" in other.inner_text("body")
        other.close()
        assert connected(page)

        # without DICOM origin Automatic is the label-free choice, and the page says so before and after the run
        cine = write_study(make_study("Siemens", seed=5, n_phases=N_PHASES, n_slices=N_SLICES, matrix=96), tmp_path,
                           fmt="nifti", name="upload")["cine"]
        page.set_input_files("#ug-upload", str(cine))
        wait_state(page, "s('ug_input_name') === 'upload_cine.nii.gz (uploaded)'", timeout=60_000)
        assert "no DICOM origin" in page.locator("#ug-adapter-note").inner_text()
        assert state(page, "ug_adapter") == "auto" and not state(page, "ug_unsaved_edits")
        page.click("#ug-run")
        wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
        assert not state(page, "ug_error"), state(page, "ug_error")
        assert "by the label-free check" in page.locator("#ug-warnings").inner_text()

    base = f"http://127.0.0.1:{session_port}/ug-download"
    for query, status in (("ticket=wrong&file=pdf", 403), (f"ticket={ticket}&file=..%2Fafter_report.pdf", 404)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}?{query}", timeout=10)
        assert refused.value.code == status, query
