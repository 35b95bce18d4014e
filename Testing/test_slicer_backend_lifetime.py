"""The backend never outlives the module (issue #13 item 5): runner.stop_all (called by the module on
cleanup, scene close and application quit, and at interpreter exit) kills every running backend with
its children, the run ends as cancelled and the scene keeps exactly the nodes it had.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from unetgan.errors import Cancelled
from unetgan.io.images import Geometry
from UnetGANSlicerLib import adapt_and_segment, context, loading, runner

# a stand-in backend: a worker child, one progress line, then a long wait
SLOW_BACKEND = ("import subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                "print(f'CHILD {child.pid}', flush=True)\n"
                "print('PROGRESS 0 3 frames', flush=True)\n"
                "time.sleep(120)\n")


# the same as the warm worker: takes its job line, one progress line, then a long wait
SLOW_WORKER = "import sys, time\nsys.stdin.readline()\nprint('PROGRESS 0 3 frames', flush=True)\ntime.sleep(120)\n"


@pytest.fixture
def slow_backend(monkeypatch):
    monkeypatch.setattr(runner, "backend_command", lambda arguments: [sys.executable, "-c", SLOW_BACKEND])
    monkeypatch.setattr(runner, "worker_command", lambda: [sys.executable, "-c", SLOW_WORKER])
    runner.WORKER.stop()  # a warm worker left by an earlier test would take the job
    yield
    runner.WORKER.stop()


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def run_in_thread(function):
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_stop_all_kills_the_backend_and_its_children(slow_backend):
    lines = []
    thread, outcome = run_in_thread(lambda: runner.run_backend(["adapt-segment"], log=lines.append))
    assert wait_for(lambda: any(line.startswith("CHILD") for line in lines))
    [process] = runner.running_backends()
    child = int(next(line for line in lines if line.startswith("CHILD")).split()[1])
    if os.name != "nt":  # in the caller's session: a terminal hang-up or a session end reaches it too
        assert os.getsid(process.pid) == os.getsid(0)
    assert runner.stop_all() == 1
    thread.join(15)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled)
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE
    assert wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE, 10)
    assert runner.running_backends() == [] and runner.stop_all() == 0


def test_stopped_run_leaves_the_scene_as_it_was(slow_backend):
    logics = context.setup_standalone()
    scene = logics["scene"]
    try:
        loaded = loading.add_image(np.random.default_rng(0).random((2, 2, 16, 16), np.float32),
                                   Geometry((1.5, 1.5, 8.0)), "cine", scene)
        ids = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
        thread, outcome = run_in_thread(lambda: adapt_and_segment(loaded.volume, adapter=None))
        assert wait_for(lambda: bool(runner.running_backends()))
        runner.stop_all()
        thread.join(15)
        assert isinstance(outcome.get("error"), Cancelled)
        assert {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())} == ids
    finally:
        scene.Clear(True)


def test_backend_is_stopped_when_the_caller_exits(tmp_path):
    """A process (Slicer quitting) that exits while a backend runs takes the backend with it."""
    import subprocess

    script = tmp_path / "caller.py"
    script.write_text(
        "import sys, threading, time\n"
        f"sys.path.insert(0, {str(runner.MODULE_DIR)!r})\n"
        "from UnetGANSlicerLib import runner\n"
        f"runner.backend_command = lambda arguments: [sys.executable, '-c', {SLOW_BACKEND!r}]\n"
        "threading.Thread(target=lambda: runner.run_backend(['x']), daemon=True).start()\n"
        "while not runner.running_backends():\n"
        "    time.sleep(0.05)\n"
        "print(runner.running_backends()[0].pid, flush=True)\n"
        "sys.exit(0)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    backend = int(run.stdout.split()[0])
    assert wait_for(lambda: not psutil.pid_exists(backend) or psutil.Process(backend).status() == psutil.STATUS_ZOMBIE,
                    10)
