"""Issue #14 item 6 in the web page: a DICOM cine loaded by its path on the server, Adapt & Segment, Save; the
page then offers the PDF report and the DICOM SEG that Save wrote, and a click in real Chromium downloads
exactly those bytes. The download route answers this page's ticket only, and only the files of the last Save.

Server, browser and tiny random models are test_web.py's (plumbing, not accuracy).
"""
from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pydicom
import pytest

from test_web import (N_PHASES, N_SLICES, RUN_TIMEOUT_MS, _free_port, browser_pages, chromium, models,  # noqa: F401
                      open_page, serving, state, wait_state)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):  # noqa: F811 - models: test_web's fixture
    output = tmp_path_factory.mktemp("web-dicom-output")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    arguments = ["--single-session", "--host", "127.0.0.1", "--port", str(port), "--output-dir", str(output),
                 "--device", "cpu", "--adapter", "adapter-tiny-siemens", "--data-root", str(tmp_path_factory.getbasetemp())]
    with serving(arguments, models, output, "web_dicom_server.log", probe=url):
        yield url, output


def download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    return Path(info.value.path()).read_bytes()


def test_report_and_seg_download(chromium, server, tmp_path):  # noqa: F811 - chromium: test_web's fixture
    from playwright.sync_api import sync_playwright

    from unetgan.phantom import make_study, write_study

    url, output = server
    folder = write_study(make_study("Siemens", seed=4, n_phases=N_PHASES, n_slices=N_SLICES, matrix=96), tmp_path,
                         fmt="dicom", name="siemens")["dicom_dir"]
    with sync_playwright() as playwright, browser_pages(playwright, chromium) as (page,):
        open_page(page, url)
        page.fill("#ug-server-path", str(folder))
        page.click("button:has-text('Load')")
        wait_state(page, "s('ug_is_cine') && s('ug_input_name').endsWith('siemens_dicom')", timeout=60_000)
        page.click("#ug-run")
        wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
        assert not state(page, "ug_error"), state(page, "ug_error")
        assert page.locator("#ug-download-pdf").count() == 0  # nothing is offered before Save
        page.fill("#ug-save-name", "dicom_case")
        page.click("#ug-save")
        wait_state(page, "s('ug_downloads').length === 2", timeout=60_000)
        assert not state(page, "ug_error"), state(page, "ug_error")

        report, seg = output / "dicom_case_report.pdf", output / "dicom_case_segmentation.seg.dcm"
        assert download(page, "#ug-download-pdf") == report.read_bytes()
        assert download(page, "#ug-download-seg") == seg.read_bytes()
        assert report.read_bytes().startswith(b"%PDF-")
        header = pydicom.dcmread(seg, stop_before_pixels=True)
        assert header.Modality == "SEG" and int(header.NumberOfFrames) == 2 * N_PHASES * N_SLICES

        ticket, port = state(page, "ug_upload_ticket"), state(page, "ug_upload_port")
    base = f"http://127.0.0.1:{port}/ug-download"
    for query, status in ((f"ticket=wrong&file=pdf", 403), (f"ticket={ticket}&file=..%2Fdicom_case_report.pdf", 404)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}?{query}", timeout=10)
        assert refused.value.code == status, query
