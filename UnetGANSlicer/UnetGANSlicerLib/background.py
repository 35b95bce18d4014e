"""A long job (Adapt & Segment, adapter training) run off the GUI thread, as a Qt-free state machine.

The Slicer panel owns one :class:`BackgroundRunner` per button. A click calls :meth:`click`:

- idle: the job's ``prepare`` runs on the calling (GUI) thread (check dependencies, resolve the
  adapter, read the input from the scene); its result goes to ``work`` on a Python thread (the
  backend subprocess: nothing there touches the scene or a widget); ``work``'s progress and log
  lines are queued;
- running: the click asks to cancel (``work``'s ``cancel()`` then answers True and the
  subprocess is killed).

The panel calls :meth:`poll` from a ``qt.QTimer`` (as SlicerNNUnet and MONAIAuto3DSeg poll their
process): it hands the queued log lines and progress to the panel, and once ``work`` has ended runs
``finish`` on the GUI thread (the result's nodes). Whatever raises (``prepare``, ``work``,
``finish``, or the panel's own callbacks) the runner ends idle, its button back to the idle text
and enabled, the outcome and message recorded: the panel never stays on "Cancel".
"""
from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from unetgan.errors import Cancelled

IDLE, RUNNING, CANCELLING = "idle", "running", "cancelling"
DONE, CANCELLED, FAILED = "done", "cancelled", "failed"
MAX_LOG_LINES = 2000  # the panel's log keeps the last lines (a training run prints thousands)


@dataclass
class Job:
    """prepare() -> state on the GUI thread; work(state, progress, cancel, log) -> output on a thread;
    finish(state, output) -> result on the GUI thread; discard(state) when work or finish never get it."""

    prepare: Callable[[], Any]
    work: Callable[[Any, Callable, Callable, Callable], Any]
    finish: Callable[[Any, Any], Any] = lambda state, output: output
    discard: Callable[[Any], None] = lambda state: None


class BackgroundRunner:
    def __init__(self, idle_text: str, running_text: str = "Cancel", cancelling_text: str = "Cancelling...",
                 on_change: Callable[["BackgroundRunner"], None] | None = None,
                 on_done: Callable[[Any], None] | None = None, on_failed: Callable[[str, str], None] | None = None,
                 on_cancelled: Callable[[], None] | None = None):
        self.idle_text, self.running_text, self.cancelling_text = idle_text, running_text, cancelling_text
        self.on_change, self.on_done, self.on_failed, self.on_cancelled = on_change, on_done, on_failed, on_cancelled
        self.state = IDLE
        self.outcome: str | None = None  # DONE, CANCELLED or FAILED once a job has ended
        self.message = ""  # the error of a failed job, in one line
        self.details = ""  # its traceback
        self.result: Any = None
        self.progress: tuple[int, int, str] | None = None
        self.log: list[str] = []  # the last MAX_LOG_LINES lines of the job (the backend's output)
        self._unshown: list[str] = []
        self._events: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._job: Job | None = None
        self._job_state: Any = None
        self._work_output: tuple[str, Any] | None = None

    # -- what the panel shows -----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.state != IDLE

    @property
    def button_text(self) -> str:
        return {IDLE: self.idle_text, RUNNING: self.running_text, CANCELLING: self.cancelling_text}[self.state]

    @property
    def button_enabled(self) -> bool:
        return self.state != CANCELLING

    # -- the panel's calls (GUI thread) ---------------------------------------------------------------

    def click(self, make_job: Callable[[], Job]) -> None:
        """The button: start a job when idle (make_job builds it), ask to cancel when running."""
        if self.state == RUNNING:
            self.cancel()
        elif self.state == IDLE:
            self.start(make_job)

    def start(self, make_job: Callable[[], Job]) -> bool:
        """Prepare and start the job; False when it did not start (failed or cancelled while preparing)."""
        if self.busy:
            return False
        self.state, self.outcome, self.message, self.details, self.result = RUNNING, None, "", "", None
        self.progress, self.log, self._unshown, self._work_output, self._job_state = None, [], [], None, None
        self._cancel.clear()
        self._events = queue.Queue()
        self._changed()
        try:
            self._job = make_job()
            self._job_state = self._job.prepare()
        except BaseException as error:  # noqa: BLE001 - any step's error ends the run, the panel usable again
            self._end(error)
            return False
        if self._cancel.is_set():
            self._end(Cancelled("cancelled by the user"))
            return False
        self._thread = threading.Thread(target=self._work, name="UnetGANSlicer job", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        if self.state == RUNNING:
            self._cancel.set()
            self.state = CANCELLING
            self._changed()

    def poll(self) -> bool:
        """Hand over queued progress and log lines; finish the job once its work has ended. Returns whether
        the runner is still busy (the panel stops its timer when not)."""
        changed = False
        while True:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                break
            changed = True
            if kind == "progress":
                self.progress = value
            else:
                self._add_log(value)
        if self.busy and self._work_output is not None and (self._thread is None or not self._thread.is_alive()):
            kind, value = self._work_output
            self._work_output = None
            if kind == "error":
                self._end(value)
            else:
                try:
                    if self._cancel.is_set():
                        raise Cancelled("cancelled by the user")
                    result = self._job.finish(self._job_state, value)
                    self._job_state = None
                except BaseException as error:  # noqa: BLE001
                    self._end(error)
                else:
                    self._end(None, result)
            return self.busy
        if changed:
            self._changed()
        return self.busy

    def new_log_lines(self) -> list[str]:
        """The log lines not handed out yet (the panel appends them to its log view)."""
        lines, self._unshown = self._unshown[-MAX_LOG_LINES:], []
        return lines

    def wait(self, timeout: float = 60.0) -> None:
        """Block until the work thread ends, then poll (tests and scripts; the panel uses its timer)."""
        if self._thread is not None:
            self._thread.join(timeout)
        self.poll()

    # -- internals ---------------------------------------------------------------------------------------

    def _work(self) -> None:
        def progress(done, total, stage=""):
            self._events.put(("progress", (int(done), int(total), str(stage))))

        def log(line):
            self._events.put(("log", str(line)))

        try:
            output = self._job.work(self._job_state, progress, self._cancel.is_set, log)
        except BaseException as error:  # noqa: BLE001 - handed to the GUI thread
            self._work_output = ("error", error)
        else:
            self._work_output = ("output", output)

    def _end(self, error: BaseException | None, result: Any = None) -> None:
        if error is not None and self._job is not None and self._job_state is not None:
            try:
                self._job.discard(self._job_state)
            except Exception:  # noqa: BLE001 - a temporary folder that cannot go is not the user's problem
                pass
        self._job_state, self._thread = None, None
        self.state = IDLE
        if error is None:
            self.outcome, self.result = DONE, result
        elif isinstance(error, Cancelled):
            self.outcome, self.message = CANCELLED, str(error)
        else:
            self.outcome = FAILED
            self.message = str(error) or type(error).__name__
            self.details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        callback = {DONE: self.on_done, CANCELLED: self.on_cancelled, FAILED: self.on_failed}[self.outcome]
        try:
            if self.outcome == DONE and callback is not None:
                callback(result)
            elif self.outcome == FAILED and callback is not None:
                callback(self.message, self.details)
            elif callback is not None:
                callback()
        except Exception as callback_error:  # noqa: BLE001 - the panel's own display failed: still idle
            self._add_log(f"ERROR: {callback_error}")
        self._changed()

    def _add_log(self, line: str) -> None:
        self.log.append(line)
        self._unshown.append(line)
        del self.log[:-MAX_LOG_LINES]

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self)
            except Exception as error:  # noqa: BLE001 - a widget update must not wedge the state machine
                self._add_log(f"ERROR: {error}")
