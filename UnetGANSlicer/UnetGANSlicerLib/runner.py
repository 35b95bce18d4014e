"""Run the backend command line (``python -m unetgan ...``) as a subprocess.

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
  application quit, and at interpreter exit) kills them; the run then raises
  ``Cancelled`` and the MRML layer removes any half-made nodes.
"""
from __future__ import annotations

import atexit
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
    """Kill every running backend with its children (any thread). Returns how many were running."""
    processes = running_backends()
    for process in processes:
        with _running_lock:
            _stopped.add(process.pid)
        kill_process_tree(process, timeout)
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


def _error_message(stderr: list[str], returncode: int) -> str:
    errors = [line[len("ERROR:"):].strip() for line in stderr if line.startswith("ERROR:")]
    if errors:
        return errors[-1]
    tail = [line for line in stderr if line.strip()][-5:]
    detail = "\n".join(tail) if tail else "no message"
    return f"the backend failed (exit code {returncode}): {detail}"


def run_backend(arguments: Sequence[str], progress: ProgressCallback | None = None,
                cancel: CancelCallback | None = None, log: Callable[[str], None] | None = None,
                poll_interval: float = 0.05) -> RunOutput:
    """Run ``unetgan <arguments>`` to completion; raise BackendError on failure, Cancelled on cancel."""
    command = backend_command(arguments)
    flags = subprocess.CREATE_NO_WINDOW if os.name == "nt" else 0
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        encoding="utf-8", errors="replace", bufsize=1, env=backend_environment(), creationflags=flags,
    )
    with _running_lock:
        _running.add(process)
    lines: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=_pump, args=(process.stdout, lines, "out"), daemon=True),
               threading.Thread(target=_pump, args=(process.stderr, lines, "err"), daemon=True)]
    for reader in readers:
        reader.start()
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
                elif tag == "out":
                    output.stdout.append(line)
                    match = PROGRESS_LINE.match(line.strip())
                    if match and progress is not None:
                        progress(int(match.group(1)), int(match.group(2)), (match.group(3) or "").strip())
                    elif not match and log is not None:
                        log(line)
                else:
                    output.stderr.append(line)
                    if line.startswith("WARNING:"):
                        output.warnings.append(line[len("WARNING:"):].strip())
                    if log is not None:
                        log(line)
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
