"""The backend never outlives the module: runner.stop_all (called by the module on
cleanup, scene close and application quit, and at interpreter exit) kills every running backend with
its children, the run ends as cancelled and the scene keeps exactly the nodes it had.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from conftest import process_ended

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
    monkeypatch.setattr(runner, "worker_command", lambda preload=False: [sys.executable, "-c", SLOW_WORKER])
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
    assert process_ended(process.pid, timeout=0)
    assert process_ended(child)
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


def backend_of_ended_caller(tmp_path, body: str, exit_code: int) -> int:
    """Run a caller process (Slicer, a web session) whose ``body`` starts a backend, prints its pid and ends
    with ``exit_code``; returns that pid."""
    import subprocess

    script = tmp_path / "caller.py"
    script.write_text("import os, sys, threading, time\n"
                      f"sys.path.insert(0, {str(runner.MODULE_DIR)!r})\n"
                      "from UnetGANSlicerLib import runner\n" + body)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)  # slow under load
    assert run.returncode == exit_code, run.stderr[-2000:]
    return int(run.stdout.split()[0])


def test_backend_is_stopped_when_the_caller_exits(tmp_path):
    """A process (Slicer quitting) that exits while a backend runs takes the backend with it."""
    backend = backend_of_ended_caller(tmp_path, (
        f"runner.backend_command = lambda arguments: [sys.executable, '-c', {SLOW_BACKEND!r}]\n"
        "threading.Thread(target=lambda: runner.run_backend(['x']), daemon=True).start()\n"
        "while not runner.running_backends():\n"
        "    time.sleep(0.05)\n"
        "print(runner.running_backends()[0].pid, flush=True)\n"
        "sys.exit(0)\n"), exit_code=0)
    assert process_ended(backend)


def test_warm_worker_leaves_with_a_killed_caller(tmp_path):
    """A session killed outright (no atexit, no stop_all) does not leave its warm worker behind."""
    worker = backend_of_ended_caller(tmp_path, "print(runner.start_worker(), flush=True)\nos._exit(9)\n", exit_code=9)
    assert process_ended(worker, timeout=60)  # it checks every second, from its first line of Python
