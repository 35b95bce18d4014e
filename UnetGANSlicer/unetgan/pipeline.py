"""File-level jobs behind the command line: read, run, write atomically on the input's grid."""
from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Callable

import numpy as np

from .adapter_choice import choose_adapter
from .dicom_outputs import DICOM_OUTPUTS, is_dicom_input
from .inference import adapt_and_segment, pick_device
from .io.images import read_image, write_image
from .measurements import cine_measurements, measurements_csv
from . import postprocess
from .outputs import refuse_existing, staged_outputs
from .quality import study_warnings
from .registry import ModelCache, paired_segmenter
from .networks.lvunet import with_tta
from .tta import DEFAULT_TTA
from .runtime import resolve_runtime
from .timing import NO_STOPWATCH

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_STUDY_BYTES = 256 << 20  # the input in memory above which memory comes first


def _tune_allocator(study_bytes: int) -> None:
    """Where glibc takes buffers from, per study: memory first for a large one, speed for the others.

    Buffers at or above the mmap threshold come straight from the system and go back when freed; smaller
    ones come from the heap, whose fragments stay resident. A 1 MB threshold kept a large study's peak low
    (a 50 x 20 x 512 study: 1.70 GB against 1.96 GB at 16 MB), but every network call's and stage's
    buffers then cost fresh page faults (the ONNX sessions keep no arena): a 240-image cine took 5.7 s at
    1 MB and 4.2 s at 32 MB, glibc's own ceiling. Set each study, as a warm worker runs many. Outputs are
    the same either way."""
    threshold = (1 << 20) if study_bytes > LARGE_STUDY_BYTES else (32 << 20)
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):  # not glibc: its own allocator decides
        pass


def run_study(input_path, adapter=None, model=None, device="auto", bf16=False,
              progress: Callable[[int, int], None] | None = None, cancel=None, whole_field=False,
              stopwatch=NO_STOPWATCH, models: ModelCache | None = None, series_uid: str | None = None,
              runtime: str = "auto", tta: str = DEFAULT_TTA):
    """Read an image, translate (if an adapter is named) and segment every frame.

    models: a cache that keeps the networks loaded between studies (batch workers); else they are read now.
    adapter "auto": chosen from the DICOM Manufacturer or the images (adapter_choice.py). series_uid: the
    series of a DICOM study to use (default: the short-axis cine found in it). runtime: runtime.RUNTIMES."""
    with stopwatch.stage("read"):
        image = read_image(input_path, series_uid)
    _tune_allocator(image.array.nbytes)
    choice = None
    if adapter == "auto":
        choice = choose_adapter(image, device=device)
        adapter = choice.adapter
    device = pick_device(device)
    runtime = resolve_runtime(runtime, device)
    models = models or ModelCache()  # a fresh one: this call's models only
    generator = models.adapter(adapter, runtime) if adapter not in (None, "none") else None
    network = with_tta(models.lvunet(model or paired_segmenter(generator), runtime), tta)
    network.to(device)
    if generator is not None:
        generator.to(device)
    result = adapt_and_segment(image.frames, image.geometry, network, generator, device, bf16,
                               progress=progress, cancel=cancel, whole_field=whole_field, stopwatch=stopwatch)
    with stopwatch.stage("measure"):
        measurements = cine_measurements(result.labels, image.geometry.voxel_volume_ml)
        measurements["warnings"] = image.meta.get("warnings", []) + study_warnings(  # reading's warnings first
            result.labels, result.confidence, image.geometry.voxel_volume_ml, image.frames) + measurements["measurement_warnings"]
    measurements["adapter"] = None if generator is None else str(adapter)
    measurements["segmenter"] = model or paired_segmenter(generator)  # None: the registry's default
    measurements["test_time_augmentation"], measurements["runtime"] = tta, runtime  # how the masks were made
    measurements["postprocessing"] = postprocess.description()
    measurements["input"] = {"series": image.meta.get("series", {}).get("reason"),
                             "adapter_choice": None if choice is None else choice.reason}
    if image.meta.get("patient"):  # a DICOM study's patient and institution, in the character set the files declared
        measurements["input"]["patient"] = image.meta["patient"]
    if choice is not None and choice.warning:
        measurements["warnings"].insert(0, choice.warning)
    squeeze = (lambda a: a) if image.is_cine else (lambda a: a[0])
    return image, squeeze(result.labels), squeeze(result.translated), measurements


def segment_file(input_path, output_labelmap, model=None, device="auto", overwrite=False, progress=None, adapter=None,
                 whole_field=False, series_uid: str | None = None, runtime: str = "auto", tta: str = DEFAULT_TTA):
    """`unetgan segment`: labelmap on the input grid plus <name>.json / <name>.csv measurements."""
    output = Path(output_labelmap)
    stem = output.name[: -len(".nii.gz")] if output.name.endswith(".nii.gz") else output.stem
    names = [output.name, f"{stem}_measurements.json", f"{stem}_measurements.csv"]
    refuse_existing([output.parent / n for n in names], overwrite)  # before the work, not after it
    image, labels, _, measurements = run_study(input_path, adapter, model, device, progress=progress,
                                               whole_field=whole_field, series_uid=series_uid, runtime=runtime,
                                               tta=tta)
    image.array = None  # only its geometry is needed from here: free the input before the outputs are copied
    with staged_outputs(output.parent, names, overwrite) as staging:
        write_image(labels.astype(np.uint8), image.geometry, staging / names[0])
        (staging / names[1]).write_text(json.dumps(measurements, indent=1), encoding="utf-8")
        (staging / names[2]).write_text(measurements_csv(measurements), encoding="utf-8")  # names in any script
    return measurements


ADAPT_OUTPUTS = ["translated.nrrd", "labelmap.nrrd", "measurements.json", "measurements.csv"]


def adapt_outputs(input_path) -> list[str]:
    """The files adapt-segment writes for this input (all of them, or none, appear)."""
    return ADAPT_OUTPUTS + (DICOM_OUTPUTS if is_dicom_input(input_path) else [])


def default_adapter(input_path) -> str:
    """Without --adapter: chosen per study for DICOM (whose Manufacturer names the vendor), none for image files."""
    return "auto" if is_dicom_input(input_path) else "none"


def adapt_segment_file(input_path, out_dir, adapter, model=None, device="auto", overwrite=False, progress=None, cancel=None,
                       whole_field=False, stopwatch=NO_STOPWATCH, models: ModelCache | None = None,
                       series_uid: str | None = None, compress: bool = True, runtime: str = "auto",
                       tta: str = DEFAULT_TTA):
    """`unetgan adapt-segment`: translated image, labelmap and measurements in out_dir (see docs/architecture.md);
    for DICOM input also the DICOM SEG, SR and the PDF report (docs/dicom.md). compress=False: the images are
    a hand-off to another process (the warm worker's caller), not files to keep."""
    names = adapt_outputs(input_path)
    refuse_existing([Path(out_dir) / n for n in names], overwrite)  # before the work, not after it
    image, labels, translated, measurements = run_study(input_path, adapter, model, device, progress=progress,
                                                        cancel=cancel, whole_field=whole_field, stopwatch=stopwatch,
                                                        models=models, series_uid=series_uid, runtime=runtime,
                                                        tta=tta)
    dicom = None
    if image.meta.get("files"):  # the report needs the original slices: gathered before the input is freed
        from .dicom_outputs.results import DicomResults  # highdicom: loaded only for DICOM input

        with stopwatch.stage("report"):
            dicom = DicomResults.of(image, labels, translated, measurements, measurements["segmenter"],
                                    measurements["adapter"], measurements["input"]["adapter_choice"] or "")
    image.array = None  # only its geometry is needed from here: free the input before the outputs are copied
    with stopwatch.stage("write"), staged_outputs(Path(out_dir), names, overwrite) as staging:
        write_image(translated, image.geometry, staging / "translated.nrrd", compress=compress)
        write_image(labels.astype(np.uint8), image.geometry, staging / "labelmap.nrrd", compress=compress)
        (staging / "measurements.json").write_text(json.dumps(measurements, indent=1), encoding="utf-8")
        (staging / "measurements.csv").write_text(measurements_csv(measurements), encoding="utf-8")  # names in any script
        if dicom is not None:
            dicom.write(staging)
    return measurements
