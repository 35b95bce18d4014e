"""Batch throughput: studies per hour for a folder of phantom cines, with 1 and 2 local worker processes
and with a 2-worker local Dask cluster, and the peak memory of a worker process.

    python scripts/benchmark_batch.py --out docs/benchmarks_batch [--studies 20] [--adapter Siemens]
    python scripts/benchmark_batch.py --out /tmp/check --studies 3 --phases 3 --slices 3 --matrix 96   # a quick check

Writes <out>.json and <out>.md. Each configuration runs `unetgan batch`'s own code (run_batch) on the same
folder into a fresh output folder; the time includes starting the workers and loading the models. The
figures depend on the machine and its load (`load_average` is recorded): run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from report_files import write_report  # scripts/ is on the path when a script runs
from unetgan.batch import StudyOptions, run_batch
from unetgan.batch.worker import usable_cores
from unetgan.phantom import make_study, write_study


def write_cines(folder: Path, count: int, phases: int | None, slices: int | None, matrix: int | None) -> Path:
    """`count` phantom cines of two vendors, one file each (the ED/ES extras the phantom writes are left out)."""
    archive, scratch = folder / "archive", folder / "scratch"
    archive.mkdir(parents=True)
    for seed in range(count):
        vendor = ("Siemens", "GE")[seed % 2]
        study = make_study(vendor, seed=seed, n_phases=phases, n_slices=slices, matrix=matrix)
        cine = write_study(study, scratch, name=f"s{seed}")["cine"]
        shutil.move(cine, archive / f"{vendor}_{seed:03d}.nii.gz")
    shutil.rmtree(scratch)
    return archive


class WorkerMemory:
    """The largest peak resident memory (VmHWM) among this process's descendants: the worker processes."""

    def __init__(self):
        self.peak_mb, self._done = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        me = psutil.Process()
        while not self._done.wait(0.2):
            for child in me.children(recursive=True):
                try:
                    with open(f"/proc/{child.pid}/status") as status:
                        for line in status:
                            if line.startswith("VmHWM:"):
                                self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
                except OSError:  # it ended meanwhile
                    continue

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def timed_batch(archive: Path, out: Path, options: StudyOptions, workers: int = 1, scheduler: str | None = None) -> dict:
    with WorkerMemory() as memory:
        started = time.perf_counter()
        result = run_batch(archive, out, options, workers=workers, scheduler=scheduler, progress=False)
        wall = time.perf_counter() - started
    studies = len(result.rows)
    seconds = [float(r["seconds"]) for r in result.rows if r["status"] == "ok"]
    return {"studies": studies, "failed": len(result.failed), "wall_s": wall, "studies_per_hour": studies / wall * 3600,
            "mean_study_s_in_worker": sum(seconds) / max(1, len(seconds)), "peak_worker_rss_mb": memory.peak_mb}


def dask_batch(archive: Path, out: Path, options: StudyOptions, workers: int) -> dict:
    """A LocalCluster on the loopback, one thread per worker process, started before the clock."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        return timed_batch(archive, out, options, scheduler=cluster.scheduler_address)


def markdown(report: dict) -> str:
    lines = [f"# Batch throughput ({report['studies']} phantom cines, {report['study_shape']})", "",
             f"`{report['command']}` on {report['machine']['cpu']} ({report['machine']['usable_cores']} usable cores, "
             f"load average at the start {report['machine']['load_average'][0]:.2f}).", "",
             "| configuration | studies per hour | wall (s) | mean seconds per study in a worker | peak memory of a worker (MB) | failed |",
             "|---|---|---|---|---|---|"]
    for name, run in report["runs"].items():
        lines.append(f"| {name} | {run['studies_per_hour']:.0f} | {run['wall_s']:.1f} | {run['mean_study_s_in_worker']:.1f} "
                     f"| {run['peak_worker_rss_mb']:.0f} | {run['failed']} |")
    lines += ["", "Wall time includes starting the worker processes and loading the models (the Dask cluster is started "
              "before the clock). Workers get cores/N torch threads (Dask workers: one each)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks_batch", help="writes OUT.json and OUT.md")
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--phases", type=int, help="default: the phantom vendor profile's (25)")
    parser.add_argument("--slices", type=int, help="default: the profile's (11)")
    parser.add_argument("--matrix", type=int, help="default: the profile's reconstruction matrix")
    parser.add_argument("--adapter", default="Siemens", help="as for `unetgan batch --adapter`")
    parser.add_argument("--model", help="as for `unetgan batch --model`")
    args = parser.parse_args()
    options = StudyOptions(adapter=args.adapter, model=args.model, device="cpu")
    report = {"command": " ".join(["python"] + sys.argv), "studies": args.studies,
              "machine": {"cpu": platform.processor() or platform.machine(), "usable_cores": usable_cores(),
                          "load_average": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        archive = write_cines(Path(tmp), args.studies, args.phases, args.slices, args.matrix)
        from unetgan.io.images import read_image

        report["study_shape"] = " x ".join(map(str, read_image(next(archive.iterdir())).array.shape))
        report["runs"] = {}
        for name, run in (("1 local worker", lambda out: timed_batch(archive, out, options, workers=1)),
                          ("2 local workers", lambda out: timed_batch(archive, out, options, workers=2)),
                          ("Dask LocalCluster, 2 workers", lambda out: dask_batch(archive, out, options, 2))):
            report["runs"][name] = run(Path(tmp) / name.replace(" ", "_").replace(",", ""))
            print(f"{name:30s} {json.dumps(report['runs'][name])}", flush=True)
    write_report(Path(args.out).parent, Path(args.out).name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
