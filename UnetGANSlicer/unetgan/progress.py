"""The `PROGRESS done total stage` lines a command prints with `--progress`: the contract the MRML layer parses."""
from __future__ import annotations


def progress_printer(enabled: bool, stage: str):
    """A callback printing `PROGRESS done total stage` on stdout, or None when not enabled (anything a caller
    passes after done and total, such as a training iteration's losses, is not printed)."""
    if not enabled:
        return None

    def report(done: int, total: int, *_details) -> None:
        print(f"PROGRESS {done} {total} {stage}", flush=True)

    return report
