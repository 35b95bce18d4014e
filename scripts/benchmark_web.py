"""Load test of the web page: several browser sessions at once, one killed mid-run (loopback only).

    python scripts/benchmark_web.py --sessions 3 --out docs/web_benchmark [--phases 5 --slices 6] [--budget-s 900]

Starts ``unetgan web`` (wslink's launcher) on 127.0.0.1 with a token and room for
``--sessions`` + 1 sessions, opens that many headless Chromium profiles (one user
each), loads the phantom case in each and clicks Adapt & Segment in all at once;
one extra session's process is killed (SIGKILL) while it runs. Checks:

- every remaining session gets a result, saves it into its own session folder and
  nothing else is in that folder; the labelmaps are identical across sessions (same
  case, same models: the backend is deterministic), non-empty, and the same as the
  command line's ``adapt-segment`` on the same phantom;
- the killed session leaves no partial file, the others finish, the launcher frees its port;
- the launcher and its sessions together stay within ``--memory-bound-gb`` (RSS sampled every 0.5 s).

Writes <out>.json and prints a Markdown table for docs/web.md. Bounded: at most
``--sessions`` (<= 8) sessions and ``--budget-s`` seconds. Figures depend on the machine's load.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "UnetGANSlicer"), str(ROOT / "Testing")]

# test_web's browser helpers; importing them leaves the environment as it is (the test run's own int8 cache is
# set by conftest's pytest_configure), so the sessions use the product's cache as a user's would. Pointed at an
# empty folder, every session's worker would quantize the models itself (1.3 GB and about 25 s each), which is
# a first use, not a click.
from test_web import browser_pages, open_page, state, wait_state  # noqa: E402
from unetgan.quantize import cache_folder  # noqa: E402

MAX_SESSIONS = 8
TOKEN = "benchmark-" + os.urandom(8).hex()


def free_port_block(count: int) -> int:
    """A port whose next ``count`` ports are free too (the launcher's sessions use them)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count < 65535 and all(_free(base + i) for i in range(1, count + 1)):
            return base
    raise RuntimeError("no block of free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class MemorySampler(threading.Thread):
    """Peak total RSS of a process and its descendants, sampled until stopped; at that peak, also their PSS
    (shared pages, e.g. the libraries every process maps, divided among the processes that share them: the
    physical memory they take together, which the RSS sum overstates) and each process's RSS, by kind."""

    def __init__(self, pid: int, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.root, self.every_s, self.peak, self.samples = psutil.Process(pid), every_s, 0, 0
        self.peak_pss, self.peak_processes = 0, []
        self._done = threading.Event()

    def run(self):
        while not self._done.is_set():
            total, pss, processes = 0, 0, []
            with contextlib.suppress(psutil.Error):
                for process in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        memory = process.memory_full_info()
                        total, pss = total + memory.rss, pss + memory.pss
                        processes.append((process_kind(process), memory.rss))
            if total > self.peak:
                self.peak, self.peak_pss, self.peak_processes = total, pss, processes
            self.samples += 1
            self._done.wait(self.every_s)

    def stop(self):
        self._done.set()
        self.join()


def process_kind(process: psutil.Process) -> str:
    """launcher, session (a trame-slicer page) or backend worker, from its command line."""
    command = " ".join(process.cmdline())
    return ("backend worker" if "worker" in command and "unetgan" in command else
            "session" if "--session-id" in command else "launcher" if "web" in command else process.name())


def _session_processes(launcher_pid: int) -> list:
    with contextlib.suppress(psutil.Error):
        return [c for c in psutil.Process(launcher_pid).children() if c.status() != psutil.STATUS_ZOMBIE]
    return []


def session_process(launcher_pid: int, port: int) -> psutil.Process:
    for child in psutil.Process(launcher_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if f"--port {port}" in " ".join(child.cmdline()) and "--session-id" in child.cmdline():
                return child
    raise RuntimeError(f"no session process on port {port}")


def reference_labels(phases: int, slices: int, work: Path) -> np.ndarray:
    """The command line's labelmap for the page's phantom case (what every session must reproduce)."""
    from unetgan.io.images import Geometry, read_image, write_image
    from unetgan.phantom import make_study

    study = make_study("Siemens", seed=0, n_phases=phases, n_slices=slices)  # as the page's "Phantom case"
    work.mkdir(parents=True, exist_ok=True)
    image = write_image(study.image, Geometry(study.spacing, study.origin, study.direction), work / "phantom.nrrd")
    subprocess.run([sys.executable, "-m", "unetgan", "adapt-segment", str(image), "-o", str(work / "cli"),
                    "--adapter", "Siemens", "--device", "cpu"], check=True, capture_output=True, text=True)
    return read_image(work / "cli" / "labelmap.nrrd").array


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3, help=f"sessions that run to the end (<= {MAX_SESSIONS})")
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--budget-s", type=float, default=900, help="give up after this long (default 900)")
    parser.add_argument("--memory-bound-gb", type=float, default=None,
                        help="largest total RSS allowed (default 0.5 + 1.5 per session GB)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web_benchmark")
    parser.add_argument("--chromium", default=os.environ.get("UNETGAN_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be 1..{MAX_SESSIONS}")
    held = args.sessions + 1  # one more, killed mid-run
    bound_gb = args.memory_bound_gb or 0.5 + 1.5 * held
    deadline = time.monotonic() + args.budget_s
    left_ms = lambda: max(1000, int((deadline - time.monotonic()) * 1000))  # noqa: E731

    work = Path(tempfile.mkdtemp(prefix="unetgan-web-bench-"))
    output = work / "out"
    progress(f"a command-line run first, so that the int8 cache ({cache_folder()}) holds the models")
    reference_labels(args.phases, args.slices, work / "warm-up")
    port = free_port_block(held)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "UnetGANSlicer"), os.environ.get("PYTHONPATH", "")]))
    log = open(work / "launcher.log", "wb")
    launcher = subprocess.Popen([sys.executable, "-m", "UnetGANSlicerWeb", "--host", "127.0.0.1", "--port", str(port),
                                 "--token", TOKEN, "--sessions", str(held), "--output-dir", str(output),
                                 "--device", "cpu", "--adapter", "Siemens", "--phantom-phases", str(args.phases),
                                 "--phantom-slices", str(args.slices)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    sampler = MemorySampler(launcher.pid)
    sampler.start()
    report = {"int8_cache": "the product's, warmed by a command-line run first",
              "sessions_run": args.sessions, "sessions_held": held, "phases": args.phases, "slices": args.slices,
              "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    try:
        from playwright.sync_api import sync_playwright

        url = f"http://127.0.0.1:{port}/?token={TOKEN}"
        while not _answers(port):
            if launcher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the launcher did not start: " + (work / "launcher.log").read_text()[-2000:])
            time.sleep(0.5)
        with sync_playwright() as playwright, browser_pages(playwright, args.chromium, count=held) as pages:
            started = time.monotonic()
            for page in pages:  # each page load starts a session process (in turn: the launcher waits for each)
                open_page(page, url, timeout=left_ms())
            report["seconds_to_open_all_sessions"] = round(time.monotonic() - started, 1)
            progress(f"{held} sessions open")
            for page in pages:
                page.click("#ug-phantom")
            for page in pages:
                wait_state(page, "s('ug_has_input') && s('ug_is_cine')", timeout=left_ms())
            clicked = time.monotonic()
            for page in pages:
                page.click("#ug-run")
            victim_page, pages = pages[-1], pages[:-1]
            wait_state(victim_page, "s('ug_running') && s('ug_progress_done') >= 0", timeout=left_ms())
            victim_port = state(victim_page, "ug_upload_port")
            victim = session_process(launcher.pid, victim_port)
            victim_folder = Path(state(victim_page, "ug_output_root"))
            os.kill(victim.pid, signal.SIGKILL)
            progress(f"session on port {victim_port} killed mid-run")
            report["killed_session_port"] = victim_port
            seconds = []
            for page in pages:
                wait_state(page, "s('ug_has_result') && !s('ug_running')", timeout=left_ms())
                if state(page, "ug_error"):
                    raise AssertionError(f"a session failed: {state(page, 'ug_error')}")
                seconds.append(float(state(page, "ug_seconds")))
            report["wall_seconds_all_runs"] = round(time.monotonic() - clicked, 1)
            progress(f"{len(pages)} runs done")
            report["backend_seconds_per_run"] = seconds
            for page in pages:
                page.fill("#ug-save-name", "case")
                page.click("#ug-save")
            folders = []
            for page in pages:
                wait_state(page, "s('ug_saved_files').length > 0", timeout=left_ms())
                folder = Path(state(page, "ug_output_root"))
                saved = {folder / name for name in state(page, "ug_saved_files")}
                assert {p for p in folder.rglob("*") if p.is_file()} == saved, "a session folder holds other files"
                folders.append(folder)
            assert len(set(folders)) == len(folders), "two sessions share a folder"
            labels = [_labels(folder) for folder in folders]
            assert all(np.array_equal(labels[0], other) for other in labels[1:]), "sessions disagree on one case"
            assert {1, 2} <= set(np.unique(labels[0]).tolist()), "empty segmentation"
            progress("saved; the command line's reference run")
            reference_started = time.monotonic()
            reference = reference_labels(args.phases, args.slices, work / "reference")
            report["command_line_seconds_same_case"] = round(time.monotonic() - reference_started, 1)
            report["same_as_command_line"] = bool(np.array_equal(reference, labels[0]))
            assert not victim_folder.exists() or not any(victim_folder.iterdir()), "the killed session left files"
            report["killed_session_left_files"] = False
            time.sleep(6)  # the launcher's reaper frees the killed session's port
            report["killed_session_port_freed"] = _free(victim_port)
        closed = time.monotonic()  # the tabs are closed now: their sessions end after the grace period
        while _session_processes(launcher.pid) and time.monotonic() < deadline:
            time.sleep(1)
        report["seconds_until_closed_sessions_ended"] = round(time.monotonic() - closed, 1)
        report["sessions_left_after_closing"] = len(_session_processes(launcher.pid))
        progress("tabs closed; their sessions ended")
    finally:
        sampler.stop()
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                launcher.wait(30)
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
        log.close()
    report["peak_rss_gb_all_processes"] = round(sampler.peak / 2**30, 2)
    report["at_the_peak_pss_gb_all_processes"] = round(sampler.peak_pss / 2**30, 2)
    report["at_the_peak_rss_gb_by_process"] = [[kind, round(rss / 2**30, 2)] for kind, rss in sampler.peak_processes]
    report["memory_bound_gb"] = bound_gb
    report["within_memory_bound"] = sampler.peak / 2**30 <= bound_gb
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print(f"\n| sessions held | sessions run | case | backend s per run (each) | wall s, all runs | "
          f"peak RSS, all processes |\n|---|---|---|---|---|---|\n| {held} (1 killed mid-run) | {args.sessions} | "
          f"phantom {args.phases} phases x {args.slices} slices | "
          f"{', '.join(f'{s:.1f}' for s in report['backend_seconds_per_run'])} | {report['wall_seconds_all_runs']} | "
          f"{report['peak_rss_gb_all_processes']} GB (bound {bound_gb} GB) |")
    ok = (report["within_memory_bound"] and report["killed_session_port_freed"] and report["same_as_command_line"]
          and report["sessions_left_after_closing"] == 0)
    return 0 if ok else 1


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _answers(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
    except urllib.error.HTTPError:
        return True  # 403 without the token: it is up
    except OSError:
        return False
    return True


def _labels(folder: Path) -> np.ndarray:
    from unetgan.io.images import read_image

    return read_image(next(folder.rglob("*_labelmap.nrrd"))).array


if __name__ == "__main__":
    sys.exit(main())
