"""Run the backend in a subprocess: the command line (``python -m unetgan ...``) per run, or the warm worker.

- :func:`run_backend` starts ``python -m unetgan <arguments>`` and waits for it (training, one-off jobs).
- :func:`run_in_worker` hands the same arguments to this process's warm worker (``python -m
  unetgan.worker``, :class:`Worker`): started on first use (or by :func:`start_worker`), torch imported and
  each model loaded once per session, restarted on the next run if it died; cancel kills it (the next
  run starts a new one). Adapt & Segment runs there: a click no longer pays a process start.

- The interpreter is ``sys.executable`` outside Slicer and ``PythonSlicer`` inside
  it (Slicer's own Python, with its torch and SimpleITK): inference never runs in
  the GUI process.
- stdout and stderr are read on two threads; ``PROGRESS <done> <total> <stage>``
  lines are handed to ``progress(done, total, stage)`` on the calling thread, from
  the polling loop, which also asks ``cancel()`` (a GUI passes a callback that
  processes its events, so the Cancel button works while this blocks).
- Cancel kills the whole process tree (psutil), not just the launcher.
- A failure raises :class:`BackendError` with the ``ERROR:`` line's message.
- The backend never outlives its caller: it stays in the caller's process group (a
  terminal's Ctrl-C or a session end reaches it), every running backend is known
  here, and :func:`stop_all` (called by the module on cleanup, scene close and
  application quit, and at interpreter exit) kills them and the warm worker; a run then
  raises ``Cancelled`` and the MRML layer removes any half-made nodes. The worker also
  leaves by itself when its stdin closes or its parent dies.
"""
from __future__ import annotations

import atexit
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from unetgan.errors import Cancelled

MODULE_DIR = Path(__file__).resolve().parent.parent  # holds unetgan/ and UnetGANSlicerLib/
PROGRESS_LINE = re.compile(r"^PROGRESS\s+(\d+)\s+(\d+)(?:\s+(.*))?$")
STAGES_LINE = re.compile(r"^STAGES\s+(\{.*\})$")  # the worker's seconds per stage of a job

ProgressCallback = Callable[[int, int, str], None]
CancelCallback = Callable[[], bool]


class BackendError(RuntimeError):
    """The backend failed; the message is its ``ERROR:`` line (or the end of its stderr)."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


@dataclass
class RunOutput:
    returncode: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stages: dict = field(default_factory=dict)  # the backend's seconds per stage, where it reports them


def python_executable() -> str:
    """PythonSlicer inside the Slicer application, else this interpreter."""
    try:
        import slicer

        in_app = getattr(slicer, "app", None) is not None
    except ImportError:  # pragma: no cover - the MRML layer always has slicer
        in_app = False
    if in_app:
        found = shutil.which("PythonSlicer")
        if found:
            return found
        candidate = Path(sys.executable).with_name("PythonSlicer" + (".exe" if os.name == "nt" else ""))
        if candidate.exists():
            return str(candidate)
    return sys.executable


def backend_environment() -> dict:
    env = os.environ.copy()
    paths = [str(MODULE_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


_running: set[subprocess.Popen] = set()
_stopped: set[int] = set()  # pids stopped by stop_all (their run ends as cancelled, not as failed)
_running_lock = threading.Lock()


def running_backends() -> list[subprocess.Popen]:
    with _running_lock:
        return [process for process in _running if process.poll() is None]


def stop_all(timeout: float = 5.0) -> int:
    """Kill every running backend with its children, and the warm worker even when idle (any thread).
    Returns how many were running a job."""
    processes = running_backends()
    for process in processes:
        with _running_lock:
            _stopped.add(process.pid)
        kill_process_tree(process, timeout)
    WORKER.stop(timeout)
    return len(processes)


atexit.register(stop_all)


def backend_command(arguments: Sequence[str]) -> list[str]:
    return [python_executable(), "-m", "unetgan", *[str(a) for a in arguments]]


def kill_process_tree(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """Kill the process and every descendant (children first, so none is re-parented and left running)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a requirement; fall back to the launcher only
        process.kill()
        process.wait(timeout)
        return
    try:
        parent = psutil.Process(process.pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=timeout)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _pump(stream, sink: queue.Queue, tag: str) -> None:
    try:
        for line in iter(stream.readline, ""):
            sink.put((tag, line.rstrip("\r\n")))
    finally:
        sink.put((tag, None))


def _take_line(tag: str, line: str, output: "RunOutput", progress: ProgressCallback | None,
               log: Callable[[str], None] | None) -> None:
    """One line of the backend: progress, a warning or an error (kept with stderr, where the command line
    prints them; the worker sends them on stdout, in order with its END line), or text for the log."""
    match = PROGRESS_LINE.match(line.strip()) if tag == "out" else None
    if match:
        output.stdout.append(line)
        if progress is not None:
            progress(int(match.group(1)), int(match.group(2)), (match.group(3) or "").strip())
        return
    stages = STAGES_LINE.match(line.strip()) if tag == "out" else None
    if stages:
        output.stages.update(json.loads(stages.group(1)))
    if tag == "out" and not line.startswith(("WARNING:", "ERROR:")):
        output.stdout.append(line)
    else:
        output.stderr.append(line)
        if line.startswith("WARNING:"):
            output.warnings.append(line[len("WARNING:"):].strip())
    if log is not None:
        log(line)


def _error_message(stderr: list[str], returncode: int) -> str:
    errors = [line[len("ERROR:"):].strip() for line in stderr if line.startswith("ERROR:")]
    if errors:
        return errors[-1]
    tail = [line for line in stderr if line.strip()][-5:]
    detail = "\n".join(tail) if tail else "no message"
    return f"the backend failed (exit code {returncode}): {detail}"


def _start(command: list[str], stdin) -> subprocess.Popen:
    flags = subprocess.CREATE_NO_WINDOW if os.name == "nt" else 0
    return subprocess.Popen(
        command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        encoding="utf-8", errors="replace", bufsize=1, env=backend_environment(), creationflags=flags,
    )


def _readers(process: subprocess.Popen, lines: queue.Queue) -> list[threading.Thread]:
    """Two threads that put ``(tag, line)`` from the process's stdout ("out") and stderr ("err") into ``lines``,
    then ``(tag, None)`` when the stream closes."""
    readers = [threading.Thread(target=_pump, args=(process.stdout, lines, "out"), daemon=True),
               threading.Thread(target=_pump, args=(process.stderr, lines, "err"), daemon=True)]
    for reader in readers:
        reader.start()
    return readers


def run_backend(arguments: Sequence[str], progress: ProgressCallback | None = None,
                cancel: CancelCallback | None = None, log: Callable[[str], None] | None = None,
                poll_interval: float = 0.05) -> RunOutput:
    """Run ``unetgan <arguments>`` to completion; raise BackendError on failure, Cancelled on cancel."""
    started = time.monotonic()
    process = _start(backend_command(arguments), stdin=subprocess.DEVNULL)
    with _running_lock:
        _running.add(process)
    lines: queue.Queue = queue.Queue()
    readers = _readers(process, lines)
    output = RunOutput(returncode=-1)
    open_streams = 2
    try:
        while True:
            try:
                tag, line = lines.get(timeout=poll_interval)
            except queue.Empty:
                tag, line = None, None
            if tag is not None:
                if line is None:
                    open_streams -= 1
                else:
                    _take_line(tag, line, output, progress, log)
            if cancel is not None and cancel():
                raise Cancelled("cancelled by the user")
            if open_streams == 0 and process.poll() is not None:
                break
    except BaseException:
        kill_process_tree(process)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=1.0)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        with _running_lock:
            _running.discard(process)
            stopped = process.pid in _stopped
            _stopped.discard(process.pid)
    output.returncode = process.wait()
    output.seconds = time.monotonic() - started
    if stopped:
        raise Cancelled("the backend was stopped (module closed, scene closed or application quitting)")
    if output.returncode != 0:
        raise BackendError(_error_message(output.stderr, output.returncode), output.returncode,
                           "\n".join(output.stderr))
    return output


# -- the warm worker --------------------------------------------------------------------------------------

END_LINE = re.compile(r"^END\s+(-?\d+)$")


def worker_command(preload: bool = False) -> list[str]:
    return [python_executable(), "-m", "unetgan.worker", "--parent", str(os.getpid())] + (["--preload"] if preload else [])


class Worker:
    """A warm backend process (``python -m unetgan.worker``) that runs one job at a time.

    Started on first use, restarted on the next run once it has died (crash, cancel, stop_all);
    thread-safe (a second caller waits for the first run to end)."""

    def __init__(self):
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue | None = None
        self._state = threading.Lock()  # guards _process/_lines (stop_all comes from any thread)
        self._job = threading.Lock()  # one job at a time

    @property
    def pid(self) -> int | None:
        """The process id while the worker is alive, else None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self, preload: bool = False) -> tuple[subprocess.Popen, queue.Queue]:
        """The live worker, started now if there is none (it imports torch while the caller goes on; with
        preload it also loads the shipped default models, before any job asks for them)."""
        with self._state:
            if self._process is None or self._process.poll() is not None:
                self._close()
                self._process = _start(worker_command(preload), stdin=subprocess.PIPE)
                self._lines = queue.Queue()
                _readers(self._process, self._lines)
            return self._process, self._lines

    def stop(self, timeout: float = 5.0) -> bool:
        """Kill the worker (a job it runs ends: stopped, cancelled or failed, as its caller decides).
        Returns whether it was alive."""
        with self._state:
            process = self._process
        if process is None:
            return False
        alive = process.poll() is None
        kill_process_tree(process, timeout)
        with self._state:
            if self._process is process:
                self._close()
        return alive

    def _close(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:  # the pipe of a dead worker
                pass
        self._process, self._lines = None, None

    def _send(self, arguments: Sequence[str]) -> tuple[subprocess.Popen, queue.Queue]:
        request = json.dumps({"arguments": [str(a) for a in arguments]}) + "\n"
        for attempt in (1, 2):  # the worker may have died since the last run: start a new one, once
            process, lines = self.start()
            try:
                process.stdin.write(request)
                process.stdin.flush()
                return process, lines
            except (BrokenPipeError, OSError, ValueError):
                kill_process_tree(process)
                if attempt == 2:
                    raise BackendError("the backend worker could not be started (its input closed at once)") from None
        raise AssertionError("unreachable")

    def run(self, arguments: Sequence[str], progress: ProgressCallback | None = None,
            cancel: CancelCallback | None = None, log: Callable[[str], None] | None = None,
            poll_interval: float = 0.05) -> RunOutput:
        started = time.monotonic()
        while not self._job.acquire(timeout=poll_interval):  # another run of this session is in progress
            if cancel is not None and cancel():
                raise Cancelled("cancelled by the user")
        try:
            # a worker that died between runs may not look dead yet when the job is sent: if it ends
            # without a word about the job, the job goes once more, to a new worker
            for _ in range(2):
                output, code, stopped, answered = self._attempt(arguments, progress, cancel, log, poll_interval)
                if answered or stopped or code == 0:
                    break
        finally:
            self._job.release()
        output.returncode, output.seconds = code, time.monotonic() - started
        if stopped:
            raise Cancelled("the backend was stopped (module closed, scene closed or application quitting)")
        if code != 0:
            raise BackendError(_error_message(output.stderr, code), code, "\n".join(output.stderr))
        return output

    def _attempt(self, arguments, progress, cancel, log, poll_interval) -> tuple[RunOutput, int, bool, bool]:
        """Send the job and follow it to its END line or the worker's death: (output, exit code, stopped by
        stop_all, whether the worker said anything on stdout about this job)."""
        process, lines = self._send(arguments)
        with _running_lock:
            _running.add(process)
        output, code, answered = RunOutput(returncode=-1), None, False
        try:
            while code is None:
                try:
                    tag, line = lines.get(timeout=poll_interval)
                except queue.Empty:
                    tag, line = None, None
                if tag == "out" and line is None:  # the worker died in the job
                    code = self._died(process, lines, output, log)
                elif line is not None:
                    answered = answered or tag == "out"
                    match = END_LINE.match(line.strip()) if tag == "out" else None
                    if match:
                        code = int(match.group(1))
                    else:
                        _take_line(tag, line, output, progress, log)
                if code is None and cancel is not None and cancel():
                    raise Cancelled("cancelled by the user")
        except BaseException:
            self.stop()  # a cancelled job ends with its process; the next run starts a new one
            raise
        finally:
            with _running_lock:
                _running.discard(process)
                stopped = process.pid in _stopped
                _stopped.discard(process.pid)
        return output, code, stopped, answered

    def _died(self, process, lines: queue.Queue, output: RunOutput, log) -> int:
        """The worker's stdout closed in a job: collect what it said on stderr, and its exit code."""
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            kill_process_tree(process)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                tag, line = lines.get(timeout=0.05)
            except queue.Empty:
                continue
            if line is None:
                break
            _take_line(tag, line, output, None, log)
        self.stop()
        code = process.returncode
        return code if code not in (0, None) else EXIT_DIED


EXIT_DIED = -1  # the worker ended without an exit code of its own
WORKER = Worker()


def start_worker() -> int:
    """Start this session's warm worker now, e.g. when the module is entered or the web page loads an image (returns
    at once with its pid), so that the first click waits neither for torch to import nor for the shipped
    models to load. A worker already running is kept."""
    return WORKER.start(preload=True)[0].pid


def run_in_worker(arguments: Sequence[str], progress: ProgressCallback | None = None,
                  cancel: CancelCallback | None = None, log: Callable[[str], None] | None = None,
                  poll_interval: float = 0.05) -> RunOutput:
    """Run an ``adapt-segment`` command line in this session's warm worker; as :func:`run_backend` otherwise
    (progress, cancel, BackendError with the ERROR line, Cancelled when stopped by stop_all)."""
    return WORKER.run(arguments, progress, cancel, log, poll_interval)
