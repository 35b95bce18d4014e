"""What int8 costs on this CPU: the masks and the speed of each int8 setting against float32 ONNX Runtime.

    OMP_NUM_THREADS=1 python scripts/int8_safety.py --out docs/int8_safety [--manifest ../shared/data/manifest.csv]
        [--emulate-avx2 /usr/bin/qemu-x86_64] [--compare docs/int8_safety.json]

Two int8 settings (unetgan/quantize.py): 8-bit weights, what a CPU with VNNI runs, and 7-bit weights
(`reduce_range`), what every other CPU runs because ONNX Runtime's 16-bit pairwise sums there cannot
saturate with them. Both are run on this machine: the 7-bit model computes the same integer sums on any
x86 CPU (none is clipped), so its masks here are the masks a CPU without VNNI gets; its speed is this CPU's.

Writes OUT.json and OUT.md with:
- the CPU (model name, instruction set, VNNI or not);
- Dice of each setting's masks against float32's (blood pool, myocardium) and against the truth, on
  phantom studies of the two vendors the adapters translate, and with --manifest on the real dev data (the
  dev subjects of scripts/choice_cv.py: Philips through `segment`, Siemens and GE through their adapters);
- seconds per image of each network and of a whole phantom study, on one thread;
- with --emulate-avx2 (qemu-user, Debian's qemu-user package): both networks' outputs in each setting on an
  emulated AMD EPYC Rome (AVX2, no VNNI: ONNX Runtime picks its kernels from the CPUID the emulator answers)
  against this CPU's, which shows the saturation of 8-bit weights there and none with 7-bit ones.
- with --compare: this run's 7-bit Dice figures against those of a report made on another CPU (the same
  integers give the same figures: run it on a CPU without VNNI against the report of one with VNNI).
Nothing here is a test: the speed depends on the machine and its load (`load_average`).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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

VENDORS = ("Siemens", "GE")  # the vendors whose adapters translate
SOURCE_VENDOR = "Philips"  # segmented without translation (`segment`)
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
    """(LV-Unet, generator) of the vendor's adapter on float32 ONNX Runtime (settings None) or in int8; for the
    source vendor, what `segment` runs: the default segmenter and no generator."""
    name = "onnx" if settings is None else "onnx-int8"
    with int8_setting(settings):
        if vendor == SOURCE_VENDOR:
            return runtime.on_runtime(load_lvunet(), name), None
        generator = load_adapter(vendor)
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
    from choice_cv import dev_items

    rows, items = [], dev_items(str(manifest))
    for vendor in (SOURCE_VENDOR, *VENDORS):
        studies = [realistic_cine(item) for item in items if item.vendor == vendor]
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


def speed_rows(rounds: int = 7) -> list[dict]:
    """One thread: each network on a batch of 12 images of 128 x 128 (about a heart box), and a whole phantom
    study (translation, segmentation and the numpy stages around them). The settings take turns, round after
    round, and each keeps its best time: a shared machine's load falls on all of them alike."""
    study = make_study("Siemens", **PHANTOM)
    geometry = Geometry(tuple(study.spacing))
    x = torch.rand(12, 1, 128, 128)
    runs = {}
    for variant, settings in VARIANTS.items():
        lvunet, generator = networks("Siemens", settings)
        runs[variant] = {"lvunet": lambda n=lvunet: n(torch.cat([x] * n.config.in_channels, 1)),
                         "generator": lambda g=generator: g(x * 2 - 1),
                         "study": lambda n=lvunet, g=generator: adapt_and_segment(study.image, geometry, n, g)}
    best = {variant: dict.fromkeys(calls, float("inf")) for variant, calls in runs.items()}
    with torch.inference_mode():
        for _ in range(1 + rounds):  # the first round warms up
            for variant, calls in runs.items():
                for name, call in calls.items():
                    started = time.perf_counter()
                    call()
                    best[variant][name] = min(best[variant][name], time.perf_counter() - started)
    rows = [{"variant": variant, "lvunet_ms_per_image": 1000 * b["lvunet"] / 12, "generator_ms_per_image":
             1000 * b["generator"] / 12, "study_s": b["study"], "study_images": int(np.prod(study.image.shape[:2]))}
            for variant, b in best.items()]
    for row in rows:
        print(row, flush=True)
    return rows


def emulated_rows(qemu: Path, cpu: str = "EPYC-Rome") -> list[dict]:
    """Both networks' float32, 8-bit and 7-bit models on the same inputs (the test's phantom Siemens study,
    about a heart box) on this CPU and on the emulated one: how far each setting's outputs move there."""
    generator = load_adapter("Siemens")
    lvunet = load_lvunet(paired_segmenter(generator))
    study = make_study("Siemens", seed=4, n_phases=2, n_slices=6, matrix=160)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, module, channels, prepare in (
                ("lvunet", lvunet, lvunet.config.in_channels, runtime._lvunet_input(lvunet)),
                ("generator", runtime._Convolutions(generator), generator.config.in_channels,
                 runtime._generator_input(generator))):
            model = runtime.exported_model(module, channels)
            (folder / f"{name}.{FLOAT32}.onnx").write_bytes(model)
            for settings in (quantize.FULL_RANGE, quantize.SATURATION_SAFE):
                (folder / f"{name}.{settings.name}.onnx").write_bytes(quantize.quantized_model(model, prepare, settings))
            x = np.concatenate([prepare(frame, tuple(study.spacing)).numpy() for frame in study.image])
            h, w = x.shape[-2] // 2, x.shape[-1] // 2
            np.save(folder / f"{name}.input.npy", np.ascontiguousarray(x[..., h - 64: h + 64, w - 64: w + 64]))
        script = str(Path(__file__).with_name("onnx_outputs.py"))
        subprocess.run([sys.executable, script, tmp, "here"], check=True)
        subprocess.run([str(qemu), "-cpu", cpu, sys.executable, script, tmp, "emulated"], check=True,
                       stderr=subprocess.DEVNULL)  # the emulator lists every CPUID feature it leaves out

        def output(network, setting, tag):
            return np.load(folder / f"{network}.{setting}.{tag}.out.npy")

        for setting in (quantize.FULL_RANGE.name, quantize.SATURATION_SAFE.name):
            row = {"setting": setting, "emulated_cpu": cpu}
            for tag in ("here", "emulated"):
                labels, reference = (output("lvunet", s, tag).argmax(1) for s in (setting, FLOAT32))
                row[f"lvunet_against_float32_{tag}"] = agreement(labels, reference)
                translated, plain = output("generator", setting, tag), output("generator", FLOAT32, tag)
                row[f"generator_difference_{tag}"] = float(np.abs(translated - plain).mean() / np.ptp(plain))
            for network in ("lvunet", "generator"):
                row[f"{network}_max_difference_emulated_vs_here"] = float(
                    np.abs(output(network, setting, "emulated") - output(network, setting, "here")).max())
            rows.append(row)
            print(row, flush=True)
    return rows


def compared(report: dict, other_json: Path) -> dict:
    """The largest difference between this report's 7-bit Dice figures and another CPU's report's."""
    import json

    other = json.loads(other_json.read_text())
    seven_bit = [name for name, settings in VARIANTS.items() if settings is quantize.SATURATION_SAFE]

    def figures(r):
        return {(key, x["vendor"], against, structure): x[against][structure]
                for key in ("phantom", "real") for x in r.get(key, []) if x["variant"] in seven_bit
                for against in ("against_float32", "against_truth") for structure in ("blood_pool", "myocardium")}

    ours, theirs = figures(report), figures(other)
    if not ours or set(ours) != set(theirs):
        raise SystemExit(f"{other_json}: its 7-bit rows are not those of this run (other data or options)")
    return {"report": str(other_json), "cpu": other["cpu"], "rows": len(ours) // 4,
            "largest_difference": max(abs(ours[k] - theirs[k]) for k in ours)}


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
             "integers as this one and gets the masks below. int8 (`--runtime auto` on x86 CPUs with AVX2 or "
             "newer, and `--runtime onnx-int8`) uses 8-bit weights with VNNI and 7-bit weights without; other CPUs "
             "run float32 by default.", ""]
    for title, key in (("Phantom studies", "phantom"), ("Real dev data", "real")):
        if key not in r:
            continue
        extra = (f" ({PHANTOM['n_phases']} phases x {PHANTOM['n_slices']} slices, {PHANTOM['matrix']}-pixel matrix, "
                 f"seed {PHANTOM['seed']})" if key == "phantom" else
                 " (the dev subjects: Philips through `segment`, Siemens and GE through their adapters; mean over the "
                 "volumes)")
        lines += [f"## {title}{extra}", "",
                  "| vendor | networks | Dice against float32's masks: blood pool | myocardium | Dice against the truth: "
                  "blood pool | myocardium |", "|---|---|---|---|---|---|"]
        lines += [f"| {x['vendor']}{' (' + str(x['volumes']) + ' volumes)' if 'volumes' in x else ''} | {x['variant']} | "
                  f"{x['against_float32']['blood_pool']:.4f} | {x['against_float32']['myocardium']:.4f} | "
                  f"{x['against_truth']['blood_pool']:.4f} | {x['against_truth']['myocardium']:.4f} |" for x in r[key]]
        lines.append("")
        if key == "real":  # what `auto` costs without VNNI: the 7-bit model's mean Dice against float32's
            float32 = {x["vendor"]: x["against_truth"]["mean"] for x in r[key] if x["variant"] == FLOAT32}
            seven_bit = [x for x in r[key] if VARIANTS[x["variant"]] is quantize.SATURATION_SAFE]
            lines += ["Mean Dice (blood pool and myocardium) of the 7-bit models, what `--runtime auto` runs on CPUs "
                      "without VNNI, minus float32's: " + ", ".join(
                          f"{x['vendor']} {x['against_truth']['mean'] - float32[x['vendor']]:+.4f}" for x in seven_bit)
                      + ".", ""]
    if "emulated" in r:
        e = r["emulated"]
        lines += [f"## The same models on an emulated CPU without VNNI ({e[0]['emulated_cpu']}: AVX2)", "",
                  "qemu-user answers CPUID as that CPU, so ONNX Runtime runs its AVX2 integer kernels there. Inputs: "
                  "the test's phantom Siemens study (2 phases x 6 slices), 128 x 128 about the heart, one thread. "
                  "LV-Unet: Dice of the argmax masks against float32's on the same CPU; generator: mean absolute "
                  "difference from float32's output over its range.", "",
                  "| int8 weights | LV-Unet Dice vs float32 here: blood pool, myocardium | emulated | generator "
                  "difference here | emulated | largest output difference emulated vs here: LV-Unet | generator |",
                  "|---|---|---|---|---|---|---|"]
        for x in e:
            here, emulated = x["lvunet_against_float32_here"], x["lvunet_against_float32_emulated"]
            lines.append(f"| {x['setting']} | {here['blood_pool']:.4f}, {here['myocardium']:.4f} | "
                         f"{emulated['blood_pool']:.4f}, {emulated['myocardium']:.4f} | {x['generator_difference_here']:.4f} | "
                         f"{x['generator_difference_emulated']:.4f} | {x['lvunet_max_difference_emulated_vs_here']:.3g} | "
                         f"{x['generator_max_difference_emulated_vs_here']:.3g} |")
        lines.append("")
    if "compared" in r:
        c = r["compared"]
        same = "identical" if c["largest_difference"] == 0 else f"different (by up to {c['largest_difference']:.4f})"
        lines += [f"## Against the report made on {c['cpu']['model']} ({c['cpu']['instruction_set']}, "
                  f"{'with' if c['cpu']['vnni'] else 'without'} VNNI)", "",
                  f"The 7-bit models' Dice figures above ({c['rows']} rows, phantom and real) against the same rows of "
                  f"[{c['report']}]({Path(c['report']).name}): **{same}**. " + (
                      "The two CPUs compute the same integers with 7-bit weights." if c["largest_difference"] == 0
                      else ""), ""]
    timing = ("A CPU without VNNI runs the 7-bit model with its own integer instructions (the pairwise 16-bit sums "
              "above): the masks above are its masks, but its time is not measured here." if cpu["vnni"] else
              "This CPU has no VNNI: its 7-bit times below are what `--runtime auto` runs here; the 8-bit rows above "
              "show what the 16-bit pairwise sums do to full-range weights, which `auto` never uses here.")
    lines += [f"## Speed on one thread, on this CPU ({cpu['model']}, {vnni})", "", timing, "",
              "| networks | LV-Unet (ms per 128^2 image) | generator (ms per 128^2 image) | phantom study (s) | images/s |",
              "|---|---|---|---|---|"]
    lines += [f"| {x['variant']} | {x['lvunet_ms_per_image']:.1f} | {x['generator_ms_per_image']:.1f} | {x['study_s']:.2f} | "
              f"{x['study_images'] / x['study_s']:.1f} |" for x in r["speed"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/int8_safety"), help="writes OUT.json and OUT.md")
    parser.add_argument("--manifest", type=Path, help="the real labelled data (dev_labelled) as well")
    parser.add_argument("--emulate-avx2", type=Path, metavar="QEMU",
                        help="qemu-x86_64 (qemu-user): also run the models on an emulated CPU without VNNI")
    parser.add_argument("--compare", type=Path, metavar="REPORT_JSON",
                        help="a report of this script made on another CPU: are its 7-bit Dice figures the same?")
    args = parser.parse_args()
    import onnxruntime

    torch.set_num_threads(1)  # one ONNX Runtime session of one thread per network
    report = {"command": " ".join(["python", *sys.argv]), "cpu": runtime.cpu_description(), "cores": os.cpu_count(),
              "onnxruntime": onnxruntime.__version__, "load_average": os.getloadavg(), "phantom": phantom_rows()}
    if args.manifest:
        report["real"] = real_rows(args.manifest)
    if args.emulate_avx2:
        report["emulated"] = emulated_rows(args.emulate_avx2)
    if args.compare:
        report["compared"] = compared(report, args.compare)
    report["speed"] = speed_rows()
    write_report(args.out.parent, args.out.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
