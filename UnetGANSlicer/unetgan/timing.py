"""Per-stage wall time of a run (read, preprocess, translate, segment, restore, write) for benchmarks."""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager


class Stopwatch:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()  # a cine's frames may be timed from two threads at once

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        """A stage timed elsewhere (e.g. in the backend process)."""
        with self._lock:
            self.seconds[name] += seconds


class _NoStopwatch:
    @contextmanager
    def stage(self, name: str):
        yield

    def add(self, name: str, seconds: float) -> None:
        pass


NO_STOPWATCH = _NoStopwatch()
