"""Screenshot of the web page after a finished Adapt & Segment run (for the README).

    .venv/bin/python scripts/web_screenshot.py --out docs/images/web_workflow.png \
        [--adapter Siemens] [--registry models.json] [--phases 12] [--slices 8]

Starts ``python -m UnetGANSlicerWeb`` on a free localhost port with the shipped
models (or ``--registry``), opens it in Debian's headless Chromium
(``apt-get install -y chromium``), loads the phantom case, runs Adapt & Segment,
selects the paint tool and saves the picture. Needs no network.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "web_workflow.png")
    parser.add_argument("--adapter", help="adapter to select (registry name, vendor or file)")
    parser.add_argument("--model", help="segmenter (registry name or file)")
    parser.add_argument("--registry", type=Path, help="models.json (default: the shipped one)")
    parser.add_argument("--phases", type=int, default=12)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--frame", type=int, default=1, help="frame to show (1-based)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed for the run")
    args = parser.parse_args()
    if not Path(args.chromium).is_file():
        print(f"ERROR: {args.chromium} not found: apt-get install -y chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    port = free_port()
    command = [sys.executable, "-m", "UnetGANSlicerWeb", "--port", str(port), "--device", "cpu",
               "--output-dir", tempfile.mkdtemp(prefix="unetgan-web-shot-"),
               "--phantom-phases", str(args.phases), "--phantom-slices", str(args.slices)]
    for option, value in (("--adapter", args.adapter), ("--model", args.model), ("--registry", args.registry)):
        if value:
            command += [option, str(value)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "UnetGANSlicer"),
                                                                     os.environ.get("PYTHONPATH")])))
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(360):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None:
                    print("ERROR: the web server exited", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="unetgan-chromium-"), executable_path=args.chromium, headless=True,
                args=FLAGS, viewport={"width": 1600, "height": 1000})
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#ug-phantom", timeout=60_000)
            page.click("#ug-phantom")
            page.wait_for_function("() => window.trame.state.get('ug_has_input')", timeout=120_000)
            page.click("#ug-run")
            page.wait_for_function(
                "() => window.trame.state.get('ug_has_result') || window.trame.state.get('ug_error')",
                timeout=int(args.timeout * 1000))
            error = page.evaluate("() => window.trame.state.get('ug_error')")
            if error:
                print(f"ERROR: {error}", file=sys.stderr)
                return 1
            page.evaluate("(f) => window.trame.state.set('ug_frame', f)", args.frame)
            page.wait_for_function("(f) => window.trame.state.get('ug_frame_shown') === f", arg=args.frame)
            page.evaluate("() => window.trame.state.set('ug_show_message', false)")
            page.locator("#ug-segment-editor button:has(.mdi-brush)").first.click()
            page.mouse.move(800, 980)
            page.wait_for_timeout(3000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            context.close()
        print(f"wrote {args.out}")
        return 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(15)


if __name__ == "__main__":
    sys.exit(main())
