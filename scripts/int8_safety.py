"""What int8 costs on this CPU: the masks and the speed of each int8 setting against float32 ONNX Runtime.

    OMP_NUM_THREADS=1 python scripts/int8_safety.py --out docs/int8_safety [--manifest ../shared/data/manifest.csv]

Two int8 settings (unetgan/quantize.py): 8-bit weights, what a CPU with VNNI runs, and 7-bit weights
(`reduce_range`), what every other CPU runs because ONNX Runtime's 16-bit pairwise sums there cannot
saturate with them. Both are run on this machine: the 7-bit model computes the same integer sums on any
x86 CPU (none is clipped), so its masks here are the masks a CPU without VNNI gets; its speed is this CPU's.

Writes OUT.json and OUT.md with:
- the CPU (model name, instruction set, VNNI or not);
- Dice of each setting's masks against float32's (blood pool, myocardium) and against the truth, on
  phantom studies of the two vendors the adapters translate, and with --manifest on the real dev data;
- seconds per image of each network and of a whole phantom study, on one thread.
Nothing here is a test: the speed depends on the machine and its load (`load_average`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from report_files import write_report  # scripts/ is on the path when a script runs
from unetgan import quantize, runtime
from unetgan.evaluation import STRUCTURES, dice, score_volume, summarise
from unetgan.inference import adapt_and_segment
from unetgan.io.geometry import Geometry
from unetgan.phantom import make_study
from unetgan.registry import load_adapter, load_lvunet, paired_segmenter

VENDORS = ("Siemens", "GE")  # the vendors whose adapters translate (Philips is the source)
FLOAT32 = "float32"
VARIANTS = {FLOAT32: None, "int8, 8-bit weights (VNNI CPUs)": quantize.FULL_RANGE,
            "int8, 7-bit weights (reduce_range: CPUs without VNNI)": quantize.SATURATION_SAFE}
PHANTOM = {"seed": 4, "n_phases": 2, "n_slices": 8, "matrix": 192}


@contextmanager
def int8_setting(settings):
    """Quantize with these settings whatever this CPU would choose."""
    with mock.patch.object(runtime, "int8_settings", lambda: settings):
        yield


def networks(vendor: str, settings):
    """(LV-Unet, generator) of the vendor's adapter on float32 ONNX Runtime (settings None) or in int8."""
    generator = load_adapter(vendor)
    name = "onnx" if settings is None else "onnx-int8"
    with int8_setting(settings):
        return (runtime.on_runtime(load_lvunet(paired_segmenter(generator)), name),
                runtime.on_runtime(generator, name))


def agreement(labels: np.ndarray, reference: np.ndarray) -> dict:
    """Dice per structure of two label arrays."""
    return {name: dice(labels == value, reference == value) for name, value in STRUCTURES.items()}


def mean_agreement(rows: list[dict]) -> dict:
    return {name: float(np.mean([row[name] for row in rows])) for name in STRUCTURES}


def phantom_rows() -> list[dict]:
    rows = []
    for vendor in VENDORS:
        study = make_study(vendor, **PHANTOM)
        geometry = Geometry(tuple(study.spacing))
        masks = {}
        for variant, settings in VARIANTS.items():
            masks[variant] = adapt_and_segment(study.image, geometry, *networks(vendor, settings)).labels
            rows.append({"vendor": vendor, "variant": variant, "against_float32": agreement(masks[variant], masks[FLOAT32]),
                         "against_truth": agreement(masks[variant], study.labels)})
            print(vendor, variant, rows[-1], flush=True)
    return rows


def real_rows(manifest: Path) -> list[dict]:
    from benchmark import realistic_cine
    from unetgan.io.manifest import read_manifest

    rows = []
    for vendor in VENDORS:
        studies = [realistic_cine(item) for item in read_manifest(manifest, [vendor], ["dev_labelled"], require_labels=True)]
        masks = {}
        for variant, settings in VARIANTS.items():
            pair = networks(vendor, settings)
            masks[variant] = [adapt_and_segment(frames, geometry, *pair).labels for frames, geometry, _ in studies]
            scored = [score_volume(volume, labels[t]) for labels, (_, _, volumes) in zip(masks[variant], studies, strict=True)
                      for t, volume in volumes]
            summary = summarise(scored)[vendor]
            rows.append({"vendor": vendor, "variant": variant, "volumes": summary["n"],
                         "against_float32": mean_agreement([agreement(labels[t], reference[t])
                                                            for labels, reference, (_, _, volumes)
                                                            in zip(masks[variant], masks[FLOAT32], studies, strict=True)
                                                            for t, _ in volumes]),
                         "against_truth": {name: summary[name]["mean"] for name in (*STRUCTURES, "mean")}})
            print(vendor, variant, rows[-1], flush=True)
    return rows


def seconds(run, min_seconds: float = 3.0) -> float:
    """Seconds per call: one warm-up, then the best of repeats until min_seconds have passed."""
    run()
    best, started = float("inf"), time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def speed_rows() -> list[dict]:
    """One thread: each network on a batch of 12 images of 128 x 128 (about a heart box), and a whole phantom
    study (translation, segmentation and the numpy stages around them)."""
    study = make_study("Siemens", **PHANTOM)
    geometry = Geometry(tuple(study.spacing))
    images = study.image.shape[0] * study.image.shape[1]
    rows = []
    for variant, settings in VARIANTS.items():
        lvunet, generator = networks("Siemens", settings)
        x = torch.rand(12, 1, 128, 128)
        with torch.inference_mode():
            segment = seconds(lambda: lvunet(torch.cat([x] * lvunet.config.in_channels, 1)))
            translate = seconds(lambda: generator(x * 2 - 1))
            whole = seconds(lambda: adapt_and_segment(study.image, geometry, lvunet, generator))
        rows.append({"variant": variant, "lvunet_ms_per_image": 1000 * segment / 12,
                     "generator_ms_per_image": 1000 * translate / 12, "study_s": whole, "study_images": images})
        print(rows[-1], flush=True)
    return rows


def markdown(r: dict) -> str:
    cpu = r["cpu"]
    vnni = "with VNNI" if cpu["vnni"] else "without VNNI"
    lines = ["# int8 on this CPU: masks and speed of each quantization setting", "",
             f"Made by `{r['command']}` on **{cpu['model']}** ({cpu['instruction_set']}, {vnni}), {r['cores']} cores, "
             f"onnxruntime {r['onnxruntime']}, load average at start {', '.join(f'{x:.1f}' for x in r['load_average'])}.", "",
             "ONNX Runtime multiplies the 8-bit activations by the 8-bit weights. With VNNI (AVX-512 VNNI, AVX-VNNI) "
             "the products are summed in 32 bits; without it (AVX2, AVX-512 alone) each pair of products is summed "
             "in 16 bits first, clipped at 32767, which full-range weights can exceed (255 x 127 x 2 = 64770): on an "
             "AMD EPYC with AVX2 the masks then moved by 7 %. With 7-bit weights (ONNX Runtime's `reduce_range`) a "
             "pair sums to 255 x 64 x 2 = 32640 at most: nothing is clipped, so a CPU without VNNI computes the same "
             "integers as this one and gets the masks below. `--runtime onnx-int8` uses 7-bit weights on every CPU "
             "without VNNI; `--runtime auto` runs int8 (8-bit weights) only with VNNI and float32 elsewhere.", ""]
    for title, key in (("Phantom studies", "phantom"), ("Real dev data", "real")):
        if key not in r:
            continue
        extra = (f" ({PHANTOM['n_phases']} phases x {PHANTOM['n_slices']} slices, {PHANTOM['matrix']}-pixel matrix, "
                 f"seed {PHANTOM['seed']})" if key == "phantom" else " (dev_labelled, mean over the volumes)")
        lines += [f"## {title}{extra}", "",
                  "| vendor | networks | Dice against float32's masks: blood pool | myocardium | Dice against the truth: "
                  "blood pool | myocardium |", "|---|---|---|---|---|---|"]
        lines += [f"| {x['vendor']}{' (' + str(x['volumes']) + ' volumes)' if 'volumes' in x else ''} | {x['variant']} | "
                  f"{x['against_float32']['blood_pool']:.4f} | {x['against_float32']['myocardium']:.4f} | "
                  f"{x['against_truth']['blood_pool']:.4f} | {x['against_truth']['myocardium']:.4f} |" for x in r[key]]
        lines.append("")
    lines += [f"## Speed on one thread, on this CPU ({cpu['model']}, {vnni})", "",
              "A CPU without VNNI runs the 7-bit model with its own (slower) integer instructions: its time is not "
              "the one below, only its masks are.", "",
              "| networks | LV-Unet (ms per 128^2 image) | generator (ms per 128^2 image) | phantom study (s) | images/s |",
              "|---|---|---|---|---|"]
    lines += [f"| {x['variant']} | {x['lvunet_ms_per_image']:.1f} | {x['generator_ms_per_image']:.1f} | {x['study_s']:.2f} | "
              f"{x['study_images'] / x['study_s']:.1f} |" for x in r["speed"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/int8_safety"), help="writes OUT.json and OUT.md")
    parser.add_argument("--manifest", type=Path, help="the real labelled data (dev_labelled) as well")
    args = parser.parse_args()
    import onnxruntime

    torch.set_num_threads(1)  # one ONNX Runtime session of one thread per network
    report = {"command": " ".join(["python", *sys.argv]), "cpu": runtime.cpu_description(), "cores": os.cpu_count(),
              "onnxruntime": onnxruntime.__version__, "load_average": os.getloadavg(), "phantom": phantom_rows()}
    if args.manifest:
        report["real"] = real_rows(args.manifest)
    report["speed"] = speed_rows()
    write_report(args.out.parent, args.out.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
