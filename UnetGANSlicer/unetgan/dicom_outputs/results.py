"""SEG, SR and PDF of one run, gathered and written together (see the package's description)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.geometry import ImageData
from . import PDF_NAME, SEG_NAME, SR_NAME, dicom_output_names, pdf_available
from .algorithm import AlgorithmInfo
from .report_pdf import ReportContent, report_content, write_report_pdf
from .seg import write_segmentation
from .source import share_frame_of_reference, share_orientation, source_headers
from .sr import write_measurement_report


@dataclass
class DicomResults:
    labels: np.ndarray  # (T, Z, Y, X)
    measurements: dict
    headers: list  # [t][z] source headers
    algorithm: AlgorithmInfo
    report: ReportContent

    @classmethod
    def of(cls, image: ImageData, labels: np.ndarray, translated: np.ndarray | None, measurements: dict,
           segmenter: str | None, adapter: str | None, adapter_reason: str = "") -> "DicomResults":
        """From a DICOM image as read (its array still in memory), its labels and translation, the measurements."""
        frames = labels if labels.ndim == 4 else labels[None]
        headers = source_headers(image.meta["files"], image.meta.get("frame_numbers"))
        share_orientation(headers)
        shared = share_frame_of_reference(headers)
        if shared and shared not in measurements.setdefault("warnings", []):
            measurements["warnings"].append(shared)  # before measurements.json and the report are written
        algorithm = AlgorithmInfo.of(segmenter, adapter)
        moved = None if translated is None or adapter in (None, "none") else (translated if translated.ndim == 4 else translated[None])
        report = report_content(image.frames, moved, frames, measurements, headers[0][0], algorithm,
                                image.meta.get("series", {}).get("reason", ""), adapter_reason or _adapter_said(adapter),
                                image.trigger_times_ms)
        return cls(frames, measurements, headers, algorithm, report)

    @property
    def edited(self) -> bool:
        """Whether a user changed the masks the networks made (the SEG's segments are then SEMIAUTOMATIC)."""
        return bool(self.measurements.get("edited"))

    def write(self, folder: Path) -> list[Path]:
        folder = Path(folder)
        try:
            seg = write_segmentation(folder / SEG_NAME, self.labels, self.headers, self.algorithm, self.edited)
            write_measurement_report(folder / SR_NAME, self.measurements, seg, self.headers, self.algorithm)
        except (ValueError, TypeError) as err:  # highdicom refuses a source attribute it cannot carry over
            raise InputError(f"cannot write the DICOM SEG and SR for these source images ({err}); expected one "
                             "series with one geometry and patient and study attributes that DICOM allows") from None
        if pdf_available():  # without matplotlib (a stock Slicer) the SEG and SR still count
            write_report_pdf(folder / PDF_NAME, self.report)
        return [folder / name for name in dicom_output_names()]


def _adapter_said(adapter: str | None) -> str:
    return "none" if adapter in (None, "none") else str(adapter)


def export_dicom_results(out_dir, dicom_input, labels: np.ndarray, measurements: dict, translated: np.ndarray | None = None,
                         segmenter: str | None = None, adapter: str | None = None, adapter_reason: str = "",
                         series_uid: str | None = None, overwrite: bool = False) -> list[Path]:
    """For a front end: SEG, SR and PDF of (possibly edited) labels (T, Z, Y, X) of the cine in `dicom_input`,
    written atomically into out_dir (nothing partial; existing files kept unless `overwrite`)."""
    from ..io.images import read_image
    from ..outputs import staged_outputs

    image = read_image(dicom_input, series_uid)
    if image.frames.shape != (labels if labels.ndim == 4 else labels[None]).shape:
        raise InputError(f"labels {labels.shape} do not fit the cine {image.array.shape} in {dicom_input}")
    results = DicomResults.of(image, labels, translated, measurements, segmenter, adapter, adapter_reason)
    names = dicom_output_names()
    with staged_outputs(Path(out_dir), names, overwrite) as staging:
        results.write(staging)
    return [Path(out_dir) / name for name in names]
