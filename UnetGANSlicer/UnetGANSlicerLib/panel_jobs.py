"""The panel's two long jobs as :class:`.background.Job`: Adapt & Segment and adapter training.

Each job's ``prepare`` runs on the GUI thread and holds every step that may refuse before the
backend starts (packages missing or declined, no input, the adapter to resolve, the input to
read from the scene); ``work`` runs the backend subprocess on a thread; ``finish`` adds the nodes
on the GUI thread. An error at any of these steps ends the job with the panel usable again
(:class:`.background.BackgroundRunner`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from unetgan.errors import Cancelled, InputError

from .background import Job


class NotStarted(Cancelled):
    """The user declined a step before the run (e.g. installing packages): not an error, nothing was done."""


@dataclass
class SegmentRun:
    """A finished Adapt & Segment: the result and what to tell the user about the adapter."""

    result: object
    adapter_note: str = ""


def progress_text(done: int, total: int, stage: str) -> str:
    """The backend's ``PROGRESS`` line in the panel's words."""
    if stage == "adapt-segment":
        return f"Translating and segmenting: frame {done} of {total} done"
    if stage == "train-adapter":
        return f"Training the adapter: iteration {done} of {total}"
    return f"{stage or 'Working'}: {done} of {total}"


def _ready(ensure_dependencies: Callable[[], bool] | None) -> None:
    if ensure_dependencies is not None and not ensure_dependencies():
        raise NotStarted("not started: the Python packages the module needs are not installed")


def segment_job(volume_node, adapter: str, model: str | None = None, device: str = "auto", tta: str | None = None,
                ensure_dependencies: Callable[[], bool] | None = None, user_registry=None) -> Job:
    """Adapt & Segment ``volume_node`` in the background; the job's result is a :class:`SegmentRun`."""
    from . import workflow
    from .vendor import resolve_adapter

    def prepare():
        _ready(ensure_dependencies)
        if volume_node is None:
            raise InputError("select an input volume first")
        backend_adapter, note = resolve_adapter(volume_node, adapter, user_registry)
        return workflow.prepare_run(volume_node, backend_adapter, model or None, device, tta), note

    def work(state, progress, cancel, log):
        return workflow.run_prepared(state[0], progress, cancel, log)

    def finish(state, outputs):
        return SegmentRun(workflow.finish_run(state[0], outputs), state[1])

    return Job(prepare, work, finish, discard=lambda state: state[0].discard())


def train_job(target_folder, source_folder, vendor: str = "", iterations: int = 2000, model: str | None = None,
              device: str = "auto", ensure_dependencies: Callable[[], bool] | None = None,
              user_registry=None) -> Job:
    """Train an adapter in the background (hours on a CPU); the job's result is the new adapter's path."""
    from . import training

    def prepare():
        _ready(ensure_dependencies)
        # the same checks the backend's command line makes, before a thread starts
        training.train_arguments(target_folder, source_folder, "check", vendor, iterations, model, device)
        return None

    def work(_state, progress, cancel, log):
        return Path(training.train_adapter(target_folder, source_folder, vendor=vendor or None, iterations=iterations,
                                           model=model or None, device=device, progress=progress, cancel=cancel,
                                           log=log, user_registry=user_registry))

    return Job(prepare, work)
