"""The picture of report.pdf in docs/cli.md: a phantom Siemens DICOM study through `adapt-segment` (adapter auto,
shipped models), its report page saved as a PNG.

    .venv/bin/python scripts/report_figure.py --out docs/images/report_page.png

About two minutes on 2 CPU cores. The page is drawn by the same code as report.pdf (report_page).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from unetgan.dicom_outputs.report_pdf import report_page
from unetgan.dicom_outputs.results import DicomResults
from unetgan.phantom import make_study, write_study
from unetgan.pipeline import run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/report_page.png")
    parser.add_argument("--vendor", default="Siemens")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="report-figure-"))
    try:
        study = make_study(args.vendor, seed=args.seed, n_phases=20, n_slices=10)
        folder = write_study(study, work, fmt="dicom", name=f"{args.vendor.lower()}001")["dicom_dir"]
        image, labels, translated, measurements = run_study(folder, adapter="auto", device="cpu")
        results = DicomResults.of(image, labels, translated, measurements, measurements["segmenter"],
                                  measurements["adapter"], measurements["input"]["adapter_choice"])
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        figure = report_page(results.report)
        figure.savefig(out, dpi=80)
        plt.close(figure)
        print(f"wrote {out}: EF {measurements['ef_percent']} %")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
