"""The warm backend: one long-lived process that runs `adapt-segment` jobs for the MRML layer.

    python -m unetgan.worker --parent PID

Why: each click in the Slicer module or the web page used to start `python -m unetgan adapt-segment`,
which imports torch, loads and hashes the models and compresses its NRRD outputs every time. This
process pays the imports once per session, keeps every model loaded (``registry.ModelCache``: keyed
by file and SHA256, so a replaced file is checked and loaded again), and writes its outputs
uncompressed (they are a hand-off to the caller, deleted after one read).

Protocol, one job at a time (UnetGANSlicerLib/runner.py is the other side):

- caller -> worker, one line per job: ``{"arguments": ["adapt-segment", INPUT, "-o", OUTDIR, ...]}``,
  the command line's own arguments (parsed by its own parser, so options mean the same);
- worker -> caller on stdout, and nothing else there (anything printed by libraries goes to stderr):
  ``PROGRESS <done> <total> adapt-segment``, ``WARNING: <text>``, ``STAGES {"read": seconds, ...}``
  (where the job's time went), on failure one ``ERROR: <message>``,
  a line for the log saying how many models were read from disk so far, and last ``END <code>``
  with the code the command line would exit with (0, 1 bug, 2 bad input, 130 cancelled);
- stderr: free text (a bug's traceback), for the caller's log.

The worker exits when its stdin closes or its parent process is gone, so it never outlives the
session that started it, even one that was killed.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback

from .errors import EXIT_CANCELLED, EXIT_INPUT_ERROR, InputError, user_error

EXIT_BUG = 1
PARENT_CHECK_S = 1.0


class Protocol:
    """The protocol lines, written whole and flushed (the caller reads them as they come)."""

    def __init__(self, stream):
        self.stream = stream

    def line(self, text: str) -> None:
        self.stream.write(text.replace("\n", " ") + "\n")
        self.stream.flush()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, ended but not yet reaped, does not)."""
    try:
        import psutil
    except ImportError:  # psutil is a requirement; without it, POSIX's signal 0 (on Windows it would kill)
        if os.name == "nt":
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _exit_with_caller(caller: int) -> None:
    """Leave when the caller is gone, even in a job or while importing: a killed Slicer or web session
    closes our stdin, but that is only read between jobs. The caller's pid comes from the caller (Slicer
    starts us through its PythonSlicer launcher, so our parent is not the caller)."""
    while _alive(caller):
        time.sleep(PARENT_CHECK_S)
    os._exit(EXIT_CANCELLED)


def error_message(err: BaseException) -> tuple[int, str]:
    """(exit code, the ERROR line's text): the command line's for what the user can act on, else a bug's."""
    return user_error(err) or (EXIT_BUG, f"the backend failed: {type(err).__name__}: {err}")


def inference_parser():
    """The command line's own `segment` and `adapt-segment` options, without its other commands (their
    imports, the phantom's scipy.signal and the web page's, cost seconds at every worker start)."""
    import argparse

    from . import cli

    parser = argparse.ArgumentParser(prog="unetgan")
    cli.add_inference_commands(parser.add_subparsers(dest="command", required=True))
    return parser


class Jobs:
    """Runs one job's arguments with the models kept loaded between jobs."""

    def __init__(self, protocol: Protocol):
        from . import pipeline  # noqa: F401 - torch and the pipeline imported before the first job arrives
        from .registry import ModelCache

        self.protocol = protocol
        self.parser = inference_parser()
        self.models = ModelCache()
        self.jobs_done = 0

    def preload(self) -> None:
        """Load what a first click most likely needs: the registry's default LV-Unet and each vendor's shipped
        adapter with the LV-Unet it pairs with, on the default runtime. A model that fails to load is left
        for the job that asks for it to report."""
        from .inference import pick_device
        from .registry import paired_segmenter, read_registry
        from .runtime import resolve_runtime

        runtime = resolve_runtime("auto", pick_device("auto"))
        vendors = {}
        for entry in read_registry():
            if entry.kind == "adapter" and entry.target_vendor:
                vendors.setdefault(entry.target_vendor.lower(), entry.name)
        try:
            self.models.lvunet(None, runtime)
            for adapter in vendors.values():
                self.models.lvunet(paired_segmenter(self.models.adapter(adapter, runtime)), runtime)
        except Exception as err:  # noqa: BLE001 - reported by the job that needs the model
            print(f"preloading the models failed: {err}", file=sys.stderr, flush=True)

    def run(self, arguments: list[str]) -> int:
        try:
            code = self._adapt_segment(arguments)
        except SystemExit as exit_:  # argparse refused the arguments (its usage line went to stderr)
            code = EXIT_INPUT_ERROR if exit_.code else 0
            if code:
                self.protocol.line(f"ERROR: bad backend arguments: {' '.join(arguments)}")
        except BaseException as err:  # noqa: BLE001 - every failure becomes the job's ERROR line
            code, message = error_message(err)
            if code == EXIT_BUG:
                traceback.print_exc(file=sys.stderr)
                sys.stderr.flush()
            self.protocol.line(f"ERROR: {message}")
        self.jobs_done += 1
        # for the log (and the tests): a warm worker reads each model from disk once
        self.protocol.line(f"worker {os.getpid()}: job {self.jobs_done} ended ({code}); models read from disk so far: "
                           f"{self.models.loads}")
        return code

    def _adapt_segment(self, arguments: list[str]) -> int:
        from .pipeline import adapt_segment_file, default_adapter
        from .timing import Stopwatch

        args = self.parser.parse_args(arguments)
        if args.command != "adapt-segment":
            raise InputError(f"the warm backend runs adapt-segment jobs, not {args.command!r}")
        stopwatch = Stopwatch()

        def progress(done: int, total: int) -> None:
            self.protocol.line(f"PROGRESS {done} {total} adapt-segment")

        measurements = adapt_segment_file(
            args.input, args.output, adapter=args.adapter or default_adapter(args.input), model=args.model,
            device=args.device, overwrite=args.overwrite, progress=progress if args.progress else None,
            whole_field=args.whole_field, series_uid=args.series, models=self.models, compress=False, runtime=args.runtime,
            tta=args.tta,
            stopwatch=stopwatch)
        for warning in measurements.get("warnings", []):
            self.protocol.line(f"WARNING: {warning}")
        self.protocol.line("STAGES " + json.dumps({k: round(v, 4) for k, v in stopwatch.seconds.items()}))
        return 0


def serve(requests, protocol: Protocol, preload: bool = False) -> int:
    """Answer job lines from ``requests`` until it closes."""
    jobs = Jobs(protocol)
    if preload:
        jobs.preload()
    for line in requests:
        if not line.strip():
            continue
        try:
            arguments = [str(a) for a in json.loads(line)["arguments"]]
        except (ValueError, KeyError, TypeError) as err:
            protocol.line(f"ERROR: not a job line ({err}): expected {{\"arguments\": [...]}}")
            protocol.line(f"END {EXIT_BUG}")
            continue
        protocol.line(f"END {jobs.run(arguments)}")
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m unetgan.worker", description="the warm backend (see its module)")
    parser.add_argument("--parent", type=int, help="the caller's process id: the worker leaves when it is gone")
    parser.add_argument("--preload", action="store_true", help="load the shipped default models before the first job")
    options = parser.parse_args(argv)
    caller = options.parent
    # stdout is the protocol's alone: keep a private copy of it, and send whatever else writes to
    # file descriptor 1 (print, C libraries) to stderr
    protocol = Protocol(os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    threading.Thread(target=_exit_with_caller, args=(caller or os.getppid(),), daemon=True).start()
    return serve(sys.stdin, protocol, options.preload)


if __name__ == "__main__":
    sys.exit(main())
