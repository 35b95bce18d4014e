"""Adapt & Segment on scene nodes: the one entry point of the MRML layer.

    result = adapt_and_segment(volume_node, adapter="Siemens", model=None, device="auto",
                               progress=lambda done, total, stage: ..., cancel=lambda: False)

The backend runs in this session's warm worker (:func:`.runner.run_in_worker`): the first run
starts it, later runs reuse its loaded models. A run is three steps: read the input from the
scene (main thread), run the backend (any thread: the Slicer panel keeps it off the GUI thread),
add the result's nodes (main thread).

Nothing is lost: the input node and its voxels are never modified; every run
creates new nodes with unique names (a segmentation the user edited is never
overwritten); on cancel or failure every node made so far is removed, the
browser is left as it was, and the temporary files are deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from unetgan.errors import Cancelled, InputError
from unetgan.io.images import read_image, write_image
from unetgan.timing import NO_STOPWATCH
from unetgan.tta import check_tta

from . import sequences as seq
from .context import scene_of
from .measurements import add_frames_table, add_summary_table
from .layout import add_volume_chart
from .nodes import add_volume, remove_nodes
from .results import AdaptSegmentResult, remember  # the result type lives with its scene records
from .runner import BackendError, run_in_worker
from .segmentation import add_segmentation, set_reference_volume

DEVICES = {"auto": "auto", "cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}


def _argument_path(value, what: str) -> str:
    """Model/adapter option: a registry name as is; a file as an absolute path, refused at once if missing."""
    text = os.fspath(value)
    path = Path(text).expanduser()
    looks_like_file = path.suffix.lower() == ".safetensors" or os.sep in text or (os.altsep or os.sep) in text
    if path.exists() or looks_like_file:
        if not path.is_file():
            raise InputError(f"{what} file not found: {path}")
        return str(path.resolve())
    return text


def backend_arguments(input_path, output_dir, adapter, model, device, tta: str | None = None) -> list[str]:
    device_name = DEVICES.get(str(device).lower())
    if device_name is None:
        raise InputError(f"unknown device {device!r}: use auto, CPU or GPU")
    arguments = ["adapt-segment", str(input_path), "-o", str(output_dir),
                 "--adapter", "none" if adapter in (None, "", "none") else _argument_path(adapter, "adapter"),
                 "--device", device_name, "--progress"]
    if model not in (None, ""):
        arguments += ["--model", _argument_path(model, "model")]
    if tta is not None:
        arguments += ["--tta", check_tta(tta)]
    return arguments


def _read_outputs(output_dir: Path, shape: tuple[int, ...]):
    translated = read_image(output_dir / "translated.nrrd").frames
    labels = read_image(output_dir / "labelmap.nrrd").frames
    if translated.shape != shape or labels.shape != shape:
        raise BackendError(
            f"the backend returned frames of shape {translated.shape} / {labels.shape}, expected {shape}"
        )
    measurements = json.loads((output_dir / "measurements.json").read_text(encoding="utf-8"))
    return translated.astype(np.float32, copy=False), labels.astype(np.uint8, copy=False), measurements


def _check(cancel):
    if cancel is not None and cancel():
        raise Cancelled("cancelled by the user")


@dataclass
class PreparedRun:
    """A run's input, read from the scene and written for the backend (:func:`prepare_run`, main thread)."""

    source: seq.InputFrames
    workdir: Path
    arguments: list[str]
    adapter: object
    started: float

    def discard(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class BackendOutputs:
    """What the backend returned (:func:`run_prepared`, any thread)."""

    translated: np.ndarray | None
    labels: np.ndarray
    measurements: dict
    warnings: list[str]


def prepare_run(volume_node, adapter="Siemens", model=None, device="auto", tta: str | None = None,
                stopwatch=NO_STOPWATCH) -> PreparedRun:
    """Read the input from the scene and write it for the backend. Touches the scene: call it on the main
    thread. Bad options and unusable input raise here, before any work."""
    started = time.monotonic()
    with stopwatch.stage("scene to arrays"):
        source = seq.read_input(volume_node)
    backend_arguments("input", "output", adapter, model, device, tta)  # refuse bad options before any work
    workdir = Path(tempfile.mkdtemp(prefix="unetgan-slicer-"))
    try:
        input_path = workdir / "input.nrrd"
        with stopwatch.stage("hand-off write"):  # uncompressed both ways (the worker writes so too): read once
            write_image(source.frames if source.is_cine else source.frames[0], source.geometry, input_path,
                        compress=False)
        arguments = backend_arguments(input_path, workdir / "output", adapter, model, device, tta)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return PreparedRun(source, workdir, arguments, adapter, started)


def run_prepared(prepared: PreparedRun, progress=None, cancel=None, log=None,
                 stopwatch=NO_STOPWATCH) -> BackendOutputs:
    """Run the backend on a prepared input and read what it wrote. No scene access: a GUI runs this on a
    background thread (progress, cancel and log are then called on that thread)."""
    with stopwatch.stage("backend"):
        run = run_in_worker(prepared.arguments, progress=progress, cancel=cancel, log=log)
    for name, seconds in run.stages.items():
        stopwatch.add(f"backend {name}", seconds)
    with stopwatch.stage("hand-off read"):
        translated, labels, measurements = _read_outputs(prepared.workdir / "output", prepared.source.frames.shape)
    if prepared.adapter in (None, "", "none"):
        translated = None
    return BackendOutputs(translated, labels, measurements, list(run.warnings))


def finish_run(prepared: PreparedRun, outputs: BackendOutputs, cancel=None,
               stopwatch=NO_STOPWATCH) -> AdaptSegmentResult:
    """The result's nodes in the scene (main thread); the temporary files go in any case."""
    try:
        _check(cancel)
        with stopwatch.stage("nodes"):
            result = add_result_nodes(prepared.source, outputs.labels, outputs.measurements, outputs.translated,
                                      outputs.warnings, cancel)
        result.seconds = time.monotonic() - prepared.started
        return result
    finally:
        prepared.discard()


def adapt_and_segment(volume_node, adapter="Siemens", model=None, device="auto", tta: str | None = None,
                      progress: Callable[[int, int, str], None] | None = None,
                      cancel: Callable[[], bool] | None = None,
                      log: Callable[[str], None] | None = None, stopwatch=NO_STOPWATCH) -> AdaptSegmentResult:
    """Translate ``volume_node`` (or every frame of its cine) to the source look and segment the LV.

    adapter: a registry name (e.g. the target vendor), an adapter file, or None to segment
    the image as it is. model: a segmenter name or file (None: the one the adapter was trained against, else the registry's default).
    device: "auto", "cpu"/"CPU" or "gpu"/"GPU"/"cuda". tta: the backend's --tta (None: its default,
    four flips; "none" is the fastest). progress(done, total, stage) is
    called as frames are done; cancel() is polled and, when it returns True, the run stops,
    raising ``unetgan.errors.Cancelled`` with the scene as it was.
    Raises ``InputError`` for unusable input and ``BackendError`` (message = the
    backend's ``ERROR:`` line) when the backend fails. stopwatch (``unetgan.timing.Stopwatch``):
    seconds per stage, this layer's and the backend's ("backend read", ...), for benchmarks.

    The three steps (:func:`prepare_run`, :func:`run_prepared`, :func:`finish_run`) one after the other;
    the Slicer panel runs the middle one on a background thread (:mod:`.background`).
    """
    prepared = prepare_run(volume_node, adapter, model, device, tta, stopwatch)
    try:
        outputs = run_prepared(prepared, progress, cancel, log, stopwatch)
    except BaseException:
        prepared.discard()
        raise
    result = finish_run(prepared, outputs, cancel, stopwatch)
    if progress is not None:
        progress(prepared.source.n_frames, prepared.source.n_frames, "done")
    return result


def add_result_nodes(source: seq.InputFrames, labels: np.ndarray, measurements: dict,
                     translated: np.ndarray | None = None, backend_warnings=(),
                     cancel: Callable[[], bool] | None = None) -> AdaptSegmentResult:
    """The scene nodes of a result (labels and translated frames (T, Z, Y, X) on the input's grid).

    Segmentation (a sequence in the input's browser for a cine), translated image when
    given, summary and per-frame tables, the volume curve of a cine; the nodes are
    recorded on the summary table (:mod:`.results`). All or nothing: on failure or
    cancel every node made here is removed and the browser is as it was.
    """
    volume_node = source.node
    scene = scene_of(volume_node)
    created: list = []
    attached: list = []
    try:
        base = volume_node.GetName() or "volume"
        warnings = list(dict.fromkeys(list(backend_warnings) + list(measurements.get("warnings") or [])))
        empty = [t + 1 for t in range(source.n_frames) if not (labels[t] > 0).any()]
        if empty:
            warnings.append(f"no left ventricle found in frame(s) {', '.join(map(str, empty))}")
        result = AdaptSegmentResult(input=volume_node, segmentation=None, table=None, frames_table=None,
                                    measurements=measurements, warnings=warnings, n_frames=source.n_frames)
        if source.is_cine:
            _cine_nodes(scene, base, source, translated, labels, result, created, attached, cancel)
        else:
            if translated is not None:
                result.translated = add_volume(scene, f"{base} translated", translated[0], volume_node)
                created.append(result.translated)
            result.segmentation = add_segmentation(scene, f"{base} segmentation", labels[0], volume_node)
            created.append(result.segmentation)
        _check(cancel)
        result.table = add_summary_table(scene, f"{base} measurements", measurements)
        created.append(result.table)
        index_label = (source.sequence.GetIndexName() or "Index") if source.is_cine else "Index"
        result.frames_table = add_frames_table(scene, f"{base} volumes per frame", measurements,
                                               source.index_values or None, index_label)
        created.append(result.frames_table)
        if source.is_cine:
            result.chart, series = add_volume_chart(scene, result.frames_table, f"{base} volume curve")
            created += [series, result.chart]
        remember(result)
        return result
    except BaseException:
        for browser, sequence in reversed(attached):
            seq.detach(browser, sequence)
        remove_nodes(created)
        raise


def _cine_nodes(scene, base, source, translated, labels, result, created, attached, cancel):
    browser = source.browser
    if translated is not None:
        result.translated_sequence = seq.new_sequence(scene, f"{base} translated", source.sequence)
        created.append(result.translated_sequence)
        seq.fill_volume_sequence(result.translated_sequence, translated, source, cancel)
    result.segmentation_sequence = seq.new_sequence(scene, f"{base} segmentation", source.sequence)
    created.append(result.segmentation_sequence)
    seq.fill_segmentation_sequence(result.segmentation_sequence, labels, source, cancel)
    _check(cancel)
    if result.translated_sequence is not None:
        attached.append((browser, result.translated_sequence))
        result.translated = seq.attach(browser, result.translated_sequence)
        created.append(result.translated)
    attached.append((browser, result.segmentation_sequence))
    result.segmentation = seq.attach(browser, result.segmentation_sequence, save_changes=True)
    created.append(result.segmentation)
    set_reference_volume(result.segmentation, source.node)
    result.browser = browser

