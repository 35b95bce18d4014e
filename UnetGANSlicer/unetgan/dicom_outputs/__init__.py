"""Results a hospital keeps, for DICOM input: a DICOM SEG, a DICOM SR measurement report and a PDF page.

- seg.py: segmentation.seg.dcm, the labelmap as one DICOM Segmentation of the whole cine;
- sr.py: measurements.sr.dcm, a TID 1500 Measurement Report referencing the SEG and the images;
- report_pdf.py: report.pdf, the one page a cardiologist reads;
- algorithm.py: which program, LV-Unet and adapter (with SHA256) made them;
- source.py: the source images' headers.

results.py: `DicomResults.of(...)` gathers what the three need while the images are still in
memory; `.write(folder)` writes them. `export_dicom_results` does both for a front end (the
Slicer module after an edit, the web page) from a DICOM folder and a labelmap.

This module itself stays light (no highdicom, no matplotlib): the pipeline asks it which names a run writes.
The PDF needs matplotlib, which a stock 3D Slicer does not ship: without it the SEG and SR are written and
the PDF is skipped, with PDF_SKIPPED saying why (`pdf_available`).
"""
from __future__ import annotations

from pathlib import Path

SEG_NAME, SR_NAME, PDF_NAME = "segmentation.seg.dcm", "measurements.sr.dcm", "report.pdf"
DICOM_OUTPUTS = [SEG_NAME, SR_NAME, PDF_NAME]
PDF_SKIPPED = ("The PDF report was not written: it needs the Python package matplotlib, which is not installed "
               "(the module offers to install it; or run pip_install('matplotlib') in Slicer's Python console).")


def pdf_available() -> bool:
    """Whether the PDF report can be drawn here (matplotlib importable)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def dicom_output_names() -> list[str]:
    """The names a DICOM export writes here: SEG and SR, and the PDF where matplotlib is installed."""
    return DICOM_OUTPUTS if pdf_available() else [SEG_NAME, SR_NAME]


def is_dicom_input(path) -> bool:
    """A DICOM folder or file: the inputs that get SEG, SR and PDF (decided before the work, from the path alone)."""
    path = Path(path)
    return path.is_dir() or path.name.lower().endswith(".dcm")
