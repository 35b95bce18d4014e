"""The panel's Apply and Train as background jobs (UnetGANSlicerLib.background and .panel_jobs), on a real
slicer-core scene: the GUI thread is never held, the backend's log and progress reach the panel, and an
error at any step (packages, adapter, input, backend, result nodes, the panel's own display) or a cancel
brings the button back to "Adapt and segment", enabled, with the scene as it was.

The Qt panel (UnetGANSlicerGUI.panel) only shows what the runner says: button_text, button_enabled,
progress, new_log_lines(); here the runner is driven as its QTimer drives it (poll)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from unetgan.errors import Cancelled, InputError
from UnetGANSlicerLib import background, models, panel_jobs, training, vendor, workflow
from UnetGANSlicerLib.background import CANCELLED, DONE, FAILED, BackgroundRunner
from UnetGANSlicerLib.runner import BackendError, RunOutput

from test_slicer_mrml import add_study_cine, fake_backend, node_ids, scene, study  # noqa: F401 - fixtures

APPLY = "Adapt and segment"


class Panel:
    """What the Qt panel does with the runner's callbacks (the widgets replaced by a record)."""

    def __init__(self):
        self.failed, self.done, self.cancelled, self.log = [], [], 0, []
        self.runner = BackgroundRunner(APPLY, on_done=self.done.append, on_cancelled=self._cancelled,
                                       on_failed=lambda message, details: self.failed.append(message),
                                       on_change=lambda runner: self.log.extend(runner.new_log_lines()))

    def _cancelled(self):
        self.cancelled += 1

    def run(self, make_job, timeout=60.0):
        self.runner.start(make_job)
        deadline = time.monotonic() + timeout
        while self.runner.poll() and time.monotonic() < deadline:  # the QTimer's job
            time.sleep(0.01)
        return self.runner

    def assert_usable(self):
        assert self.runner.state == background.IDLE and not self.runner.busy
        assert self.runner.button_text == APPLY and self.runner.button_enabled


@pytest.fixture
def workdirs(monkeypatch, tmp_path):
    """The runs' temporary folders go under tmp_path (to check none is left)."""
    import tempfile

    root = tmp_path / "work"
    root.mkdir()
    real = tempfile.mkdtemp
    monkeypatch.setattr(workflow.tempfile, "mkdtemp", lambda prefix="": real(prefix=prefix, dir=root))
    return root


def test_apply_runs_off_the_gui_thread_with_log_and_progress(scene, study, monkeypatch, workdirs):
    proxy = add_study_cine(scene, study)[0]
    release, threads = threading.Event(), {}

    def backend(arguments, progress=None, cancel=None, log=None):
        threads["backend"] = threading.current_thread()
        log("loading the networks")
        progress(1, 3, "adapt-segment")
        assert release.wait(30), "the test never released the backend"
        return fake_backend(arguments, progress, cancel, log)

    make_nodes = workflow.add_result_nodes

    def nodes_on_gui_thread(*args, **kwargs):
        threads["nodes"] = threading.current_thread()
        return make_nodes(*args, **kwargs)

    monkeypatch.setattr(workflow, "run_in_worker", backend)
    monkeypatch.setattr(workflow, "add_result_nodes", nodes_on_gui_thread)
    panel = Panel()
    started = time.monotonic()
    assert panel.runner.start(lambda: panel_jobs.segment_job(proxy, "none", device="CPU"))
    assert time.monotonic() - started < 5  # the click returns while the backend works
    assert panel.runner.button_text == "Cancel" and panel.runner.busy
    deadline = time.monotonic() + 10
    while panel.runner.progress is None and time.monotonic() < deadline:
        assert panel.runner.poll()  # still busy: the GUI goes on
        time.sleep(0.01)
    assert panel.runner.progress == (1, 3, "adapt-segment") and panel.log == ["loading the networks"]
    release.set()
    panel.runner.wait()
    assert panel.runner.outcome == DONE and panel.failed == [] and len(panel.done) == 1
    panel.assert_usable()
    result = panel.done[0].result
    assert result.n_frames == 3 and result.segmentation is not None
    assert threads["backend"] is not threading.main_thread() and threads["nodes"] is threading.main_thread()
    assert not list(workdirs.iterdir())  # the hand-off files are gone


@pytest.mark.parametrize("step", ["packages declined", "packages check", "adapter", "input", "backend",
                                  "result nodes", "error dialog"])
def test_apply_comes_back_after_an_error_at_any_step(step, scene, study, monkeypatch, workdirs):
    proxy = add_study_cine(scene, study)[0]
    before = node_ids(scene)
    monkeypatch.setattr(workflow, "run_in_worker", fake_backend)
    ready, volume, device = (lambda: True), proxy, "CPU"
    if step == "packages declined":
        ready = lambda: False  # noqa: E731 - the user said no to the installation
    elif step == "packages check":
        ready = lambda: (_ for _ in ()).throw(RuntimeError("pip crashed"))  # noqa: E731
    elif step == "adapter":
        monkeypatch.setattr(vendor, "choose_adapter", lambda *a, **k: (_ for _ in ()).throw(
            InputError("the DICOM database cannot be read")))
    elif step == "input":
        device = "quantum"
    elif step == "backend":
        monkeypatch.setattr(workflow, "run_in_worker", lambda *a, **k: (_ for _ in ()).throw(
            BackendError("the backend crashed")))
    elif step == "result nodes":
        monkeypatch.setattr(workflow, "add_result_nodes", lambda *a, **k: (_ for _ in ()).throw(
            MemoryError("no memory left for the nodes")))
    panel = Panel()
    if step == "error dialog":  # the panel's own error display fails too
        monkeypatch.setattr(workflow, "run_in_worker", lambda *a, **k: (_ for _ in ()).throw(BackendError("x")))
        panel.runner.on_failed = lambda message, details: (_ for _ in ()).throw(RuntimeError("no dialog"))

    runner = panel.run(lambda: panel_jobs.segment_job(volume, models.AUTOMATIC, device=device,
                                                      ensure_dependencies=ready))

    panel.assert_usable()
    assert node_ids(scene) == before and not list(workdirs.iterdir())
    if step == "packages declined":
        assert runner.outcome == CANCELLED and panel.cancelled == 1 and "not installed" in runner.message
        return
    assert runner.outcome == FAILED
    expected = {"packages check": "pip crashed", "adapter": "DICOM database", "input": "unknown device",
                "backend": "the backend crashed", "result nodes": "no memory", "error dialog": "x"}[step]
    assert expected in runner.message
    if step == "error dialog":
        assert any("no dialog" in line for line in runner.log)
    else:
        assert panel.failed == [runner.message]


def test_a_job_that_cannot_be_built_also_comes_back(scene, study):
    panel = Panel()
    runner = panel.run(lambda: (_ for _ in ()).throw(TypeError("the panel passed a wrong argument")))
    panel.assert_usable()
    assert runner.outcome == FAILED and "wrong argument" in panel.failed[0]


def test_cancel_while_the_backend_runs(scene, study, monkeypatch, workdirs):
    proxy = add_study_cine(scene, study)[0]
    before = node_ids(scene)
    running = threading.Event()

    def backend(arguments, progress=None, cancel=None, log=None):
        running.set()
        while not cancel():
            time.sleep(0.01)
        raise Cancelled("cancelled by the user")

    monkeypatch.setattr(workflow, "run_in_worker", backend)
    panel = Panel()
    make = lambda: panel_jobs.segment_job(proxy, "none", device="CPU")  # noqa: E731
    panel.runner.click(make)
    assert running.wait(10)
    panel.runner.click(make)  # the same button, now Cancel
    assert panel.runner.button_text == "Cancelling..." and not panel.runner.button_enabled
    panel.runner.wait()
    panel.assert_usable()
    assert panel.runner.outcome == CANCELLED and panel.cancelled == 1 and panel.done == []
    assert node_ids(scene) == before and not list(workdirs.iterdir())


def test_cancel_after_the_backend_finished_makes_no_nodes(scene, study, monkeypatch, workdirs):
    proxy = add_study_cine(scene, study)[0]
    before = node_ids(scene)
    monkeypatch.setattr(workflow, "run_in_worker", fake_backend)
    panel = Panel()
    panel.runner.start(lambda: panel_jobs.segment_job(proxy, "none", device="CPU"))
    panel.runner._thread.join(30)  # the backend has ended, the result not yet taken (no poll)
    panel.runner.cancel()
    panel.runner.poll()
    panel.assert_usable()
    assert panel.runner.outcome == CANCELLED and node_ids(scene) == before and not list(workdirs.iterdir())


def test_training_runs_in_the_background_and_fails_cleanly(tmp_path, monkeypatch):
    target, source = tmp_path / "ge", tmp_path / "philips"
    target.mkdir()
    source.mkdir()
    monkeypatch.setenv("UNETGAN_ADAPTER_DIR", str(tmp_path / "adapters"))
    registry = tmp_path / "user" / "models.json"

    def backend(arguments, progress=None, cancel=None, log=None):
        output = arguments[arguments.index("-o") + 1]
        for i in range(1, 4):
            progress(i, 3, "train")
            log(f"iteration {i}")
        Path(output).write_bytes(b"adapter weights")
        return RunOutput(returncode=0, stdout=[json.dumps({"adapter": output})])

    monkeypatch.setattr(training, "run_backend", backend)
    panel = Panel()
    panel.runner.idle_text = "Start training"
    runner = panel.run(lambda: panel_jobs.train_job(target, source, "GE", 30, user_registry=registry))
    assert runner.outcome == DONE and panel.done[0].name == "GE.safetensors"
    assert panel.log == ["iteration 1", "iteration 2", "iteration 3"] and runner.progress == (3, 3, "train")
    assert [o.label for o in models.adapter_choices(registry) if o.user] == ["adapter-GE (yours)"]
    runner = panel.run(lambda: panel_jobs.train_job(target, tmp_path / "missing", "GE", 30, user_registry=registry))
    assert runner.outcome == FAILED and "source image folder" in runner.message
    assert runner.button_text == "Start training" and runner.button_enabled


def test_the_log_keeps_the_last_lines():
    runner = BackgroundRunner(APPLY)

    def chatty(_state, progress, cancel, log):
        for i in range(background.MAX_LOG_LINES + 10):
            log(f"line {i}")
        return np.int64(7)

    assert runner.start(lambda: background.Job(lambda: None, chatty))
    runner.wait()
    assert runner.outcome == DONE and runner.result == 7
    assert len(runner.log) == background.MAX_LOG_LINES and runner.log[-1] == f"line {background.MAX_LOG_LINES + 9}"
    assert len(runner.new_log_lines()) == background.MAX_LOG_LINES and runner.new_log_lines() == []


def test_progress_is_said_in_words():
    assert panel_jobs.progress_text(3, 12, "adapt-segment") == "Translating and segmenting: frame 3 of 12 done"
    assert panel_jobs.progress_text(200, 2000, "train-adapter") == "Training the adapter: iteration 200 of 2000"
