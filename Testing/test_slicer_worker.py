"""The warm backend worker through the MRML layer, on a real slicer-core scene.

One worker per session: started by the first Adapt & Segment, reused by the next ones (same process,
no model read again), restarted after a crash, stopped by stop_all (and gone with a killed session:
test_slicer_backend_lifetime.py); a
cancel kills it in the middle of a run and leaves the scene and the temporary folder as they were.
Tiny random models and a small synthetic cine: plumbing, not accuracy.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile

import numpy as np
import psutil
import pytest

from conftest import process_ended, ring_study, write_tiny_adapter, write_tiny_lvunet

from unetgan.errors import Cancelled
from UnetGANSlicerLib import BackendError, adapt_and_segment, context, loading, runner
from UnetGANSlicerLib.segmentation import labels_of

MODELS_READ = re.compile(r"models read from disk so far: (\d+)")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worker-models")
    return {"model": str(write_tiny_lvunet(folder / "lvunet.safetensors", labels_voxels=True)),
            "adapter": str(write_tiny_adapter(folder / "adapter.safetensors", residual_output=True))}


@pytest.fixture(scope="module")
def cine():
    image, _, spacing = ring_study(n_frames=3, n_slices=4)
    return image, spacing


@pytest.fixture
def scene(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's temporary files, to see none are left
    runner.WORKER.stop()  # each test starts from no worker
    logics = context.setup_standalone()
    yield logics["scene"]
    logics["scene"].Clear(True)
    runner.WORKER.stop()


def add_cine(scene, cine):
    from unetgan.io.images import Geometry

    image, spacing = cine
    return loading.add_image(image.astype(np.int16), Geometry(spacing), "cine", scene).volume


def node_ids(scene) -> set[str]:
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def run(volume, models, **options):
    """Adapt & Segment in the worker; returns (result, how many models the worker has read from disk so far)."""
    lines = []
    result = adapt_and_segment(volume, adapter=models["adapter"], model=models["model"], device="cpu",
                               log=lines.append, **options)
    [read] = [int(m.group(1)) for m in map(MODELS_READ.search, lines) if m]
    return result, read


def segmentation_frames(result, volume):
    from UnetGANSlicerLib.sequences import read_input

    frames = read_input(volume).frame_nodes
    return np.stack([labels_of(result.segmentation_sequence.GetNthDataNode(t), frames[t]) for t in range(len(frames))])


def test_worker_is_reused_survives_errors_and_is_restarted_after_a_crash(scene, cine, models, tmp_path):
    volume = add_cine(scene, cine)
    first, read = run(volume, models)
    pid = runner.WORKER.pid
    assert pid is not None and read == 2  # the LV-Unet and the adapter
    second, read = run(volume, models)
    assert runner.WORKER.pid == pid and read == 2  # the same process, nothing read again
    np.testing.assert_array_equal(segmentation_frames(second, volume), segmentation_frames(first, volume))

    # a failed job is an ERROR line, not the end of the worker
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"not a safetensors file")
    with pytest.raises(BackendError, match="damaged.safetensors") as error:
        adapt_and_segment(volume, adapter=None, model=str(damaged), device="cpu")
    assert "Traceback" not in str(error.value) and error.value.returncode == 2
    assert runner.WORKER.pid == pid

    psutil.Process(pid).kill()  # a crash between two runs
    assert process_ended(pid)
    third, read = run(volume, models)
    assert runner.WORKER.pid not in (None, pid) and read == 2  # a new worker, which read the models itself
    np.testing.assert_array_equal(segmentation_frames(third, volume), segmentation_frames(first, volume))
    assert not list(tmp_path.glob("unetgan-slicer-*"))


def test_cancel_kills_the_worker_mid_run_and_leaves_nothing(scene, cine, models, tmp_path):
    volume = add_cine(scene, cine)
    run(volume, models)  # warm: the cancel below hits a running job, not the start-up
    pid, before = runner.WORKER.pid, node_ids(scene)
    progress = []
    with pytest.raises(Cancelled):
        adapt_and_segment(volume, adapter=models["adapter"], model=models["model"], device="cpu",
                          progress=lambda done, total, stage: progress.append(done), cancel=lambda: bool(progress))
    assert progress and progress[0] < len(cine[0])  # stopped after the first frame, before the last
    assert process_ended(pid) and runner.WORKER.pid is None and runner.running_backends() == []
    assert node_ids(scene) == before
    assert not list(tmp_path.glob("unetgan-slicer-*")), "temporary files left behind"
    result, read = run(volume, models)  # started again on the next click
    assert result.n_frames == len(cine[0]) and read == 2


def test_stop_all_stops_the_idle_worker(scene, cine, models):
    run(add_cine(scene, cine), models)
    pid = runner.WORKER.pid
    assert runner.stop_all() == 0  # no job was running
    assert process_ended(pid) and runner.WORKER.pid is None


def test_worker_answers_a_bad_job_line_and_goes_on():
    """The protocol's own errors: a line that is not a job, and a command the worker does not run."""
    process = subprocess.run(
        [sys.executable, "-m", "unetgan.worker"], input='not json\n{"arguments": ["segment", "x.nrrd", "-o", "y"]}\n',
        capture_output=True, text=True, timeout=120, env=runner.backend_environment())
    lines = process.stdout.splitlines()
    assert process.returncode == 0, process.stderr[-2000:]
    assert lines[0].startswith("ERROR: not a job line") and lines[1] == "END 1"
    assert lines[2] == "ERROR: the warm backend runs adapt-segment jobs, not 'segment'" and lines[-1] == "END 2"


def test_a_worker_started_ahead_has_the_shipped_models_before_the_first_click(scene, cine):
    runner.stop_all()
    pid = runner.start_worker()  # what entering the module and loading an image in the web page do
    assert runner.start_worker() == pid  # a running worker is kept
    lines = []
    result = adapt_and_segment(add_cine(scene, cine), adapter="Siemens", model=None, device="cpu", log=lines.append)
    [read] = [int(m.group(1)) for m in map(MODELS_READ.search, lines) if m]
    # the default LV-Unet, the Siemens adapter and the GE adapter were read at the start; the click read nothing
    assert read == 3 and runner.WORKER.pid == pid and result.n_frames == len(cine[0])
    runner.stop_all()
    assert process_ended(pid)
