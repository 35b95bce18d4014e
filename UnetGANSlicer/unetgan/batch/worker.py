"""One study in a worker process: adapt-segment into its folder, a summary row back, never an exception.

Each worker process sets its torch threads once (so N workers share the cores without
oversubscription) and keeps its models loaded between studies (`registry.ModelCache`)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..tta import DEFAULT_TTA
from .studies import Study
from .summary import failed_row, ok_row


@dataclass(frozen=True)
class StudyOptions:
    """What adapt-segment is asked to do with every study of the batch."""

    adapter: str | None = None  # None: adapt-segment's default for each study (auto for DICOM, else none)
    model: str | None = None
    device: str = "auto"
    whole_field: bool = False
    runtime: str = "auto"
    tta: str = DEFAULT_TTA


_process: dict = {}  # this worker process's torch threads and model cache


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def prepare_process(threads: int) -> None:
    """Initializer of a local worker process: its share of the cores, and an empty model cache."""
    import torch

    from ..registry import ModelCache

    torch.set_num_threads(max(1, threads))
    _process.update(threads=max(1, threads), models=ModelCache())


def _prepared_on_dask() -> None:
    """The first study a Dask worker process runs sets it up. Dask's nanny starts workers with
    OMP_NUM_THREADS=1 (each worker thread then runs one study on one core); a value set for the
    workers is followed, else the cores are shared among the worker's threads."""
    if _process:
        return
    from distributed import get_worker

    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or usable_cores() // max(1, get_worker().state.nthreads)
    prepare_process(threads)


def _scanner_vendor(input_path: Path) -> str:
    """The vendor a DICOM study's Manufacturer tag names ("SIEMENS" -> Siemens; the tag itself for a vendor
    we do not know); empty for image files, which do not record the scanner."""
    if not input_path.is_dir():
        return ""
    import pydicom

    from ..adapter_choice import vendor_of

    for path in sorted(p for p in input_path.rglob("*") if p.is_file()):
        try:
            manufacturer = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Manufacturer"])
                               .get("Manufacturer", ""))
        except Exception:  # not a DICOM file (a readme beside the slices): try the next one
            continue
        return vendor_of(manufacturer) or manufacturer
    return ""


def process_study(study: Study, out_dir: str, options: StudyOptions) -> dict:
    """adapt-segment one study into out_dir/<study.name>/; its summary row, `failed` with the reason on any error.

    The study is run because its outputs are not all there (or a rerun of everything was asked for):
    whatever is in its folder is replaced."""
    from ..pipeline import adapt_segment_file, default_adapter

    if not _process:
        prepare_process(usable_cores())
    started = time.perf_counter()
    try:
        adapter = options.adapter or default_adapter(study.input)
        measurements = adapt_segment_file(study.input, Path(out_dir) / study.name, adapter, model=options.model,
                                          device=options.device, overwrite=True, whole_field=options.whole_field,
                                          models=_process["models"], runtime=options.runtime,
                                          tta=options.tta)
        vendor = measurements.get("vendor") or _scanner_vendor(Path(study.input))
        return ok_row(study, measurements, vendor, time.perf_counter() - started)
    except InputError as err:
        return failed_row(study, str(err), time.perf_counter() - started)
    except Exception as err:  # a bug or a system failure in one study must not stop the other thousands
        first_line = (str(err).splitlines() or [""])[0]
        return failed_row(study, f"{type(err).__name__}: {first_line}", time.perf_counter() - started)


def process_study_on_dask(study: Study, out_dir: str, options: StudyOptions) -> dict:
    _prepared_on_dask()
    return process_study(study, out_dir, options)
