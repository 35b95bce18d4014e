"""Two users at once, in real headless Chromium: one process per browser session, behind a token.

``unetgan web --token T`` starts wslink's launcher; each page load gets its own
page process (scene, backend runs, output sub-folder, upload folder). Two
browser profiles (two users: cookies apart) load different cases, run Adapt &
Segment, paint and save at the same time; neither sees the other's data or
files. Without the token nothing is served, not even the page's title. The
session helpers and fixtures are test_web.py's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from test_web import (EDIT_TIMEOUT_MS, MODULE_DIR, N_PHASES, RUN_TIMEOUT_MS, SEGMENT_NAMES,  # noqa: F401
                      _free_port, blood, browser_pages, chromium, models, open_page, paint_stroke, serving,
                      set_state, state, wait_state)
from UnetGANSlicerWeb import auth

pytestmark = pytest.mark.browser

TOKEN = "test-token-5f1c0d9e"
TITLE = "UnetGANSlicer"
SESSION_START_MS = 240_000  # a session process imports VTK, MRML and torch on a loaded machine


@pytest.fixture(scope="module")
def launcher(models, tmp_path_factory):
    """The launcher with a token, two sessions at most; yields (base url, output folder, session ports)."""
    output = tmp_path_factory.mktemp("web-sessions-output")
    port = _free_port()
    arguments = ["--host", "127.0.0.1", "--port", str(port), "--token", TOKEN, "--sessions", "2",
                 "--output-dir", str(output), "--device", "cpu", "--adapter", "adapter-tiny-siemens",
                 "--phantom-phases", str(N_PHASES), "--phantom-slices", "4", "--max-upload-mb", "1"]
    url = f"http://127.0.0.1:{port}/"
    with serving(arguments, models, output, "web_launcher.log", probe=url):
        yield url, output, (port + 1, port + 2)


def http(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def assert_nothing_served(url: str) -> None:
    for address, data in ((url, None), (url + "index.html", None), (url + "?token=wrong", None),
                          (url + "paraview/", b'{"application": "trame"}'), (url + "ug-upload?ticket=x", b"x")):
        status, body = http(address, data)
        assert status == 403 and TITLE not in body and "<html" not in body.lower(), (address, status, body[:200])


def test_without_the_token_nothing_is_served(launcher, chromium):
    from playwright.sync_api import sync_playwright

    url, _, _ = launcher
    assert_nothing_served(url)
    with sync_playwright() as playwright, browser_pages(playwright, chromium) as (page,):
        page.goto(url + "?token=not-the-token")
        assert TITLE not in page.content() and page.title() == ""


def test_non_loopback_without_sign_in_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (auth.TOKEN_ENV, auth.PASSWORD_ENV)}
    env["PYTHONPATH"] = str(MODULE_DIR)
    done = subprocess.run([sys.executable, "-m", "UnetGANSlicerWeb", "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("ERROR: refusing to serve"), done.stderr


def test_two_sessions_are_isolated(launcher, chromium, tmp_path):
    import SimpleITK as sitk
    from playwright.sync_api import sync_playwright

    url, output, session_ports = launcher
    volume = sitk.GetImageFromArray(np.random.default_rng(1).normal(300, 60, (4, 64, 64)).astype(np.float32))
    volume.SetSpacing((1.5, 1.5, 8.0))
    upload = tmp_path / "user b case.nrrd"
    sitk.WriteImage(volume, str(upload))

    with sync_playwright() as playwright, browser_pages(playwright, chromium, count=2) as (a, b):
        for page in (a, b):
            open_page(page, url + f"?token={TOKEN}", timeout=SESSION_START_MS)
        ports = {state(a, "ug_upload_port"), state(b, "ug_upload_port")}
        assert ports == set(session_ports), ports  # two processes
        for port in ports:  # their own ports answer nothing without the sign-in cookie either
            assert_nothing_served(f"http://127.0.0.1:{port}/")
        assert not state(a, "ug_server_paths")  # no --data-root: the server-path field is off
        assert a.locator("#ug-server-path").count() == 0

        # the upload route: the cap is enforced by the server, and a page's ticket opens only its own session
        post = """async ([port, ticket, megabytes]) => {
            const r = await fetch(`http://127.0.0.1:${port}/ug-upload?ticket=${ticket}&name=big.nrrd`,
                {method: 'POST', body: new Blob([new Uint8Array(megabytes * 1048576)]), credentials: 'include',
                 headers: {'Content-Type': 'text/plain'}});
            return [r.status, await r.text()]; }"""
        port_b, ticket_a, ticket_b = state(b, "ug_upload_port"), state(a, "ug_upload_ticket"), state(b, "ug_upload_ticket")
        status, body = b.evaluate(post, [port_b, ticket_b, 2])
        assert status == 400 and "the limit is 1 MB" in body, (status, body)
        assert b.evaluate(post, [port_b, ticket_a, 0])[0] == 403  # the other page's ticket
        assert not state(a, "ug_show_error")
        set_state(b, "ug_error", "")  # b's page showed the refusal; clear it for the checks below

        # different cases, then Adapt & Segment in both at once
        a.click("#ug-phantom")
        b.set_input_files("#ug-upload", str(upload))
        wait_state(a, "s('ug_has_input') && s('ug_is_cine')", timeout=90_000)
        wait_state(b, "s('ug_has_input') && !s('ug_is_cine')", timeout=90_000)
        assert state(b, "ug_input_name") == "user_b_case.nrrd (uploaded)"
        assert "Phantom" in state(a, "ug_input_name")
        for page in (a, b):
            page.click("#ug-run")
        for page in (a, b):
            wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=RUN_TIMEOUT_MS)
            assert not state(page, "ug_error"), state(page, "ug_error")
            assert set(state(page, "ug_segment_names")) == SEGMENT_NAMES
        assert len(state(a, "ug_frame_rows")) == N_PHASES and len(state(b, "ug_frame_rows")) == 1

        # an edit in one session changes that session's numbers only
        before_a, before_b = blood(a), blood(b)
        a.locator("#ug-segment-editor button:has(.mdi-brush)").first.click()
        a.wait_for_selector("#ug-segment-editor button.v-btn--active:has(.mdi-brush)")
        paint_stroke(a, 0.25, 0.3)
        wait_state(a, f"s('ug_frame_rows')[0].blood !== {json.dumps(before_a[0])}", timeout=EDIT_TIMEOUT_MS)
        assert state(a, "ug_edited") and not state(b, "ug_edited") and blood(b) == before_b

        # save in both at once, under the same names: each into its own session folder
        for page in (a, b):
            page.fill("#ug-save-name", "case")
            page.click("#ug-save")
        for page in (a, b):
            wait_state(page, "s('ug_saved_files').length > 0")
        roots = [state(page, "ug_output_root") for page in (a, b)]
        assert roots[0] != roots[1] and all(root.startswith(str(output)) for root in roots)
        folders = sorted(p for p in output.iterdir() if p.is_dir())
        assert [str(p) for p in folders] == sorted(roots)
        for page, root in zip((a, b), roots):
            files = {p.name for p in output.joinpath(root).rglob("*") if p.is_file()}
            assert files == {name.split("/")[-1] for name in state(page, "ug_saved_files")}
        numbers = [json.loads((output / root / "case_measurements.json").read_text()) for root in roots]
        assert len(numbers[0]["frames"]) == N_PHASES and len(numbers[1]["frames"]) == 1
        assert f"{numbers[0]['frames'][0]['blood_pool_ml']:.1f}" == f"{float(blood(a)[0]):.1f}"

        # neither page can name the other's folder
        a.fill("#ug-save-folder", f"../{output.joinpath(roots[1]).name}")
        a.click("#ug-save")
        wait_state(a, "s('ug_show_error')")
        assert "must not contain '..'" in state(a, "ug_error")

        # a third session is refused while two run (the launcher's limit): the page says so, and so does the
        # session endpoint
        signed_in = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with pytest.raises(urllib.error.HTTPError) as page_refused:
            signed_in.open(url + f"?token={TOKEN}", timeout=10)
        assert page_refused.value.code == 503 and "sessions this server allows" in page_refused.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            signed_in.open(urllib.request.Request(url + "paraview/", data=b'{"application": "trame"}'), timeout=30)
        assert refused.value.code == 503 and "sessions this server allows" in refused.value.read().decode()
