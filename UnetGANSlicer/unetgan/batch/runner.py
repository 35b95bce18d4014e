"""Hand the studies to workers (a local process pool, or a Dask scheduler) and keep summary.csv current."""
from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .studies import Study, find_studies, is_complete
from .summary import failed_row, read_summary, row_of_finished_study, write_summary
from .worker import StudyOptions, prepare_process, process_study, process_study_on_dask, usable_cores

SUMMARY = "summary.csv"
WORKER_DIED = "the worker process running it died (out of memory?); a rerun retries it"


@dataclass
class BatchResult:
    rows: list[dict]  # one per study, in the order of the inputs
    skipped: int  # completed by an earlier run
    summary: Path
    failed: list[dict] = field(default_factory=list)


def _local(todo: list[Study], out_dir: Path, options: StudyOptions, workers: int) -> Iterator[dict]:
    """Worker processes with `cores // workers` torch threads each.

    At most `workers` studies are in flight, so if a worker dies (the system killed it) only those are
    marked failed, and a fresh pool takes the rest."""
    workers = min(workers, len(todo))
    threads = max(1, usable_cores() // max(1, workers))
    queue = list(reversed(todo))
    while queue:
        with ProcessPoolExecutor(workers, mp_context=_worker_context(), initializer=prepare_process,
                                 initargs=(threads,)) as pool:
            running = {}
            broken = False
            while (queue and not broken) or running:
                while queue and not broken and len(running) < workers:
                    study = queue.pop()
                    running[pool.submit(process_study, study, str(out_dir), options)] = study
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    study = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        yield failed_row(study, WORKER_DIED)


def _worker_context():
    """Workers forked from a server process that has imported torch once but never run it (forking a process
    whose torch has started its thread pools is unsafe); spawned where there is no fork server. Only torch
    is preloaded: the server imports before it takes this process's sys.path, so our modules could come
    from another copy."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch"])
    return context


def _dask_client(scheduler: str):
    from distributed import Client

    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None


def _dask(todo: list[Study], out_dir: Path, options: StudyOptions, client) -> Iterator[dict]:
    """The same work on a running dask.distributed scheduler; its workers must see the same paths."""
    from distributed import as_completed

    with client:
        futures = {client.submit(process_study_on_dask, study, str(out_dir), options, pure=False,
                                 key=f"unetgan-batch-{index}-{study.name}"): study for index, study in enumerate(todo)}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # KilledWorker: the study took down its workers; the batch goes on
                yield failed_row(futures[future], f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}")


def run_batch(inputs, out_dir, options: StudyOptions = StudyOptions(), workers: int = 1, scheduler: str | None = None,
              overwrite: bool = False, progress: bool = True) -> BatchResult:
    """adapt-segment every study of `inputs` into out_dir/<study>/; summary.csv beside them, rewritten as studies finish.

    Studies whose outputs are all there are skipped (unless `overwrite`); failed ones are retried."""
    from tqdm import tqdm

    if workers < 1:
        raise InputError(f"--workers must be at least 1, not {workers}")
    out_dir = Path(out_dir).resolve()
    studies = find_studies(inputs, out_dir)
    summary_path = out_dir / SUMMARY
    earlier = read_summary(summary_path)
    rows: dict[str, dict] = {}
    todo = []
    for study in studies:
        if not overwrite and is_complete(study, out_dir / study.name):
            rows[study.name] = row_of_finished_study(study, out_dir / study.name, earlier.get(study.name))
        else:
            todo.append(study)
    order = {study.name: index for index, study in enumerate(studies)}

    def current_rows() -> list[dict]:
        return sorted(rows.values(), key=lambda row: order[row["study"]])

    client = _dask_client(scheduler) if scheduler and todo else None  # a wrong address is told before any work
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder {out_dir}: {err.strerror or err}") from None
    where = f"the Dask scheduler at {scheduler}" if scheduler else f"{workers} worker process(es)"
    print(f"{len(studies)} studies: {len(rows)} already done, {len(todo)} to run on {where}", file=sys.stderr, flush=True)
    write_summary(summary_path, current_rows())
    results = _dask(todo, out_dir, options, client) if client else _local(todo, out_dir, options, workers)
    failed = 0
    with tqdm(total=len(todo), desc="studies", unit="study", disable=not progress or not todo) as bar:
        for row in results:
            rows[row["study"]] = row
            failed += row["status"] != "ok"
            write_summary(summary_path, current_rows())
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)
    ordered = current_rows()
    return BatchResult(ordered, len(studies) - len(todo), summary_path, [r for r in ordered if r["status"] != "ok"])
