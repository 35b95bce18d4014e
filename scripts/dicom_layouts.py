"""Each DICOM transfer syntax and layout the reader takes, measured against the same cine uncompressed and single-frame.

    OMP_NUM_THREADS=1 python scripts/dicom_layouts.py --out docs/dicom_layouts.json \
        [--study ../shared/data/sunnybrook/SCD0000101/dicom ...]

For the phantom's GE study (always: 8 slices of 256 x 256, 3 phases) and each --study folder (a real cine), the
short-axis cine is rewritten by unetgan.io.dicom_rewrite in each compressed syntax (encoded by python-gdcm or
pyjpegls) and each layout (Enhanced MR multi-frame, one series per slice position), read back by the product's
reader (decoded by pylibjpeg) and segmented by the shipped networks (no adapter, runtime torch, one pass), and
compared with the original: the EF, the share of left-ventricle voxels whose label changed, the largest change
of a pixel value (relative to the image's largest value). Writes one JSON with the command and the CPU.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unetgan.io.dicom_pixels import read_pixels
from unetgan.io.dicom_rewrite import LAYOUTS, SYNTAXES, recompress
from unetgan.io.images import read_image
from unetgan.phantom import make_study, write_study
from unetgan.pipeline import run_study


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def segmented(folder: Path) -> tuple:
    started = time.perf_counter()
    image, labels, _, measurements = run_study(folder, None, runtime="torch", tta="none")
    return image, labels, measurements, time.perf_counter() - started


def compared(original, rewritten) -> dict:
    image, labels, measurements, _ = original
    got_image, got_labels, got, seconds = rewritten
    return {"ef_percent": got["ef_percent"], "ef_change_points": round(abs(got["ef_percent"] - measurements["ef_percent"]), 2),
            "lv_voxels_changed_percent": round(100.0 * np.count_nonzero(got_labels != labels) / np.count_nonzero(labels), 2),
            "same_masks": bool(np.array_equal(got_labels, labels)),
            "largest_pixel_change": round(float(np.abs(got_image.array - image.array).max() / image.array.max()), 4),
            "seconds_read_and_segment": round(seconds, 1)}


def measure(cine_files: list[Path], work: Path) -> dict:
    """The cine of `cine_files` (one series' single-frame files), as it is and rewritten every way."""
    plain = work / "plain"
    plain.mkdir()
    for path in cine_files:
        shutil.copy(path, plain / path.name)
    original = segmented(plain)
    results = {"images": len(cine_files), "shape_t_z_y_x": list(original[0].array.shape),
               "ef_percent": original[2]["ef_percent"], "syntaxes": {}, "layouts": {}}
    for syntax, (encoder, lossless) in SYNTAXES.items():
        folder = shutil.copytree(plain, work / f"syntax-{syntax}")
        recompress(folder, syntax)
        decoder = read_pixels(sorted(folder.iterdir())[0])[2] or "pydicom (inflate)"
        results["syntaxes"][syntax.name] = {"uid": str(syntax), "encoder": encoder, "decoder": decoder,
                                            "lossless": lossless, **compared(original, segmented(folder))}
        print(syntax.name, results["syntaxes"][syntax.name], flush=True)
    for layout, rewrite in LAYOUTS.items():
        folder = work / f"layout-{layout.replace(' ', '-')}"
        folder.mkdir()
        rewrite(sorted(plain.iterdir()), folder)
        rewritten = segmented(folder)
        results["layouts"][layout] = {"files": len(list(folder.iterdir())), "series": rewritten[0].meta["series"]["reason"][:200],
                                      **compared(original, rewritten)}
        print(layout, results["layouts"][layout], flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--study", type=Path, nargs="*", default=[], help="DICOM folders of real cines")
    args = parser.parse_args(argv)
    report = {"command": "python scripts/dicom_layouts.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "cpu": cpu_name(), "studies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        phantom = write_study(make_study("GE", seed=4, n_phases=3, n_slices=8), work / "phantom", fmt="dicom",
                              name="ge")["dicom_dir"]
        studies = {"phantom": sorted(phantom.glob("*.dcm"))}  # GE, seed 4, 3 phases x 8 slices of 256 x 256
        for folder in args.study:
            image = read_image(folder)
            studies[folder.parent.name if folder.name == "dicom" else folder.name] = sorted(
                {Path(p) for row in image.meta["files"] for p in row})
        for index, (name, files) in enumerate(studies.items()):
            target = work / f"study{index}"
            target.mkdir()
            report["studies"][name] = measure(files, target)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
