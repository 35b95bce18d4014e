"""`make bench`: how fast Adapt & Segment is, where the time goes, and what each speed-up costs in Dice.

    python scripts/benchmark.py --out docs/benchmarks [--device cpu|cuda] [--manifest ../shared/data/manifest.csv]

Writes <out>.json and <out>.md. One run measures, on the same machine:
- the machine's peak (dense matmul and convolution GFLOP/s, fp32 and bf16);
- each network's FLOPs per image and achieved GFLOP/s: ours and the reference-size ones
  (CycleGAN's ResNet generator with 64 filters and 9 blocks; a 2D U-Net of the original
  64-1024 widths, MONAI's BasicUNet);
- Adapt & Segment of a synthetic 300-image cine (25 phases x 12 slices, 192 x 192), end to
  end and per stage, for our pipeline (boxed and whole-field) and for the reference networks;
- peak memory (RSS) for the 300- and a 1000-image cine, each in a fresh process;
- adapter training: seconds per iteration, and the time to the shipped adapters' chosen
  checkpoints;
- with --manifest: the Dice change every speed-up causes on the real dev data.
Nothing here is a test: figures depend on the machine and its load (see `load_average`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark_report import FLIP4, HEART_BOX, ONNX_FP32, ROBUST_FLIP4, SHIPPED, UNOPTIMISED, markdown
from report_files import write_report  # scripts/ is on the path when a script runs
from unetgan.inference import adapt_and_segment, pick_device
from unetgan.networks.generator import GeneratorConfig, build_generator
from unetgan.phantom import make_study, write_study
from unetgan.pipeline import adapt_segment_file
from unetgan.networks.lvunet import with_tta
from unetgan.registry import find_model, load_adapter, load_lvunet, paired_segmenter
from unetgan.runtime import cpu_description, on_runtime, onnx_available
from unetgan.timing import Stopwatch

SIDE = 192
CINE_300 = (25, 12)  # phases x slices
CINE_1000 = (50, 20)
ADAPTER = "Siemens"


# -- machine --------------------------------------------------------------------------------------

def machine() -> dict:
    flags = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni"]
    described = cpu_description()  # the int8 figures depend on it: VNNI or not, and the int8 setting used
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "isa": {f: f in flags for f in wanted}, "instruction_set": described["instruction_set"],
            "vnni": described["vnni"], "int8_weights": described["int8_weights"], "load_average": os.getloadavg(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _timed(fn, device, min_seconds=1.0) -> float:
    """Seconds per call: one warm-up, then repeats until min_seconds."""
    fn()
    _sync(device)
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        _sync(device)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def peak(device) -> dict:
    """The best dense matmul and 3x3 convolution throughput we can measure: the ceiling for our networks.

    The maximum over a few shapes and both memory layouts; bf16 with small sizes only (without bf16
    instructions it is emulated and ~300x slower)."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype)[6:]
        best = 0.0
        for n in ((1024, 2048) if dtype == torch.float32 else (512,)):
            a = torch.randn(n, n, device=device, dtype=dtype)
            best = max(best, 2 * n**3 / _timed(lambda: a @ a, device) / 1e9)
        out[f"matmul_{name}_gflops"] = best
        best = 0.0
        shapes = ((64, 96), (128, 48), (256, 24)) if dtype == torch.float32 else ((64, 24),)
        for channels, side in shapes:
            for layout in (torch.channels_last, torch.contiguous_format):
                x = torch.randn(16, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=layout)
                conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype).to(memory_format=layout)
                best = max(best, 2 * 16 * channels**2 * 9 * side**2 / _timed(lambda: conv(x), device) / 1e9)
        out[f"conv3x3_{name}_gflops"] = best
    return out


# -- networks ----------------------------------------------------------------------------------------

def reference_generator():
    """CycleGAN's ResNet generator at the reference size (64 filters, 9 blocks), random weights."""
    return build_generator(GeneratorConfig(filters=64, n_blocks=9, residual_output=False)).eval()


def reference_unet():
    """A 2D U-Net of the original paper's widths (64 ... 1024), random weights."""
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=3, features=(64, 128, 256, 512, 1024, 64)).eval()


def flops_per_image(network, side=SIDE) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        network(torch.zeros(1, 1, side, side))
    return float(counter.get_total_flops())


@torch.inference_mode()
def network_rows(networks: dict, device, conv_peak: float, sides=(SIDE, 96), batch=12) -> list[dict]:
    rows = []
    for name, network in networks.items():
        network.to(device)
        for side in sides:
            x = torch.rand(batch, 1, side, side, device=device).contiguous(memory_format=torch.channels_last)
            seconds = _timed(lambda: network(x), device, min_seconds=2.0) / batch
            flops = flops_per_image(network.cpu(), side)
            network.to(device)
            rows.append({"network": name, "side": side, "gflop_per_image": flops / 1e9,
                         "parameters_m": sum(p.numel() for p in network.parameters()) / 1e6,
                         "ms_per_image": 1000 * seconds, "gflops_achieved": flops / seconds / 1e9,
                         "fraction_of_conv_peak": flops / seconds / 1e9 / conv_peak})
    return rows


# -- end to end ----------------------------------------------------------------------------------------

def write_cine(folder: Path, phases: int, slices: int) -> Path:
    study = make_study("Siemens", seed=11, n_phases=phases, n_slices=slices, matrix=SIDE)
    return write_study(study, folder, fmt="nifti", name=f"cine_{phases * slices}")["cine"]


def end_to_end(cine: Path, device, whole_field: bool, runtime: str = "auto") -> dict:
    """Our pipeline on the cine file, as `unetgan adapt-segment` runs it (after a warm-up run)."""
    with tempfile.TemporaryDirectory() as tmp:
        adapt_segment_file(cine, Path(tmp) / "warm", ADAPTER, device=str(device), whole_field=whole_field,
                           runtime=runtime)
        stopwatch = Stopwatch()
        started = time.perf_counter()
        with stopwatch.stage("load models"):
            load_lvunet(paired_segmenter(load_adapter(ADAPTER)))
        adapt_segment_file(cine, Path(tmp) / "out", ADAPTER, device=str(device), whole_field=whole_field,
                           stopwatch=stopwatch, runtime=runtime)
        wall = time.perf_counter() - started
    return {"wall_s": wall, "stages_s": dict(stopwatch.seconds)}


def reference_end_to_end(cine: Path, device, frames: int = 1) -> dict:
    """The reference-size networks on the whole field; networks timed on `frames` frames and scaled to the
    cine (they dominate; the other stages are as ours)."""
    from unetgan.io.images import read_image

    image = read_image(cine)
    generator, unet = reference_generator().to(device), reference_unet().to(device)
    stopwatch = Stopwatch()
    adapt_and_segment(image.frames[:1], image.geometry, unet, generator, device, whole_field=True)  # warm-up
    adapt_and_segment(image.frames[:frames], image.geometry, unet, generator, device, whole_field=True,
                      stopwatch=stopwatch)
    scale = image.frames.shape[0] / frames
    stages = {k: v * scale for k, v in stopwatch.seconds.items()}
    return {"stages_s": stages, "network_s": stages.get("translate", 0) + stages.get("segment", 0),
            "timed_frames": frames}


CHILD_PEAK = """
import sys, tempfile, pathlib
from unetgan.pipeline import adapt_segment_file
from unetgan.inference import pick_device
from unetgan.registry import ModelCache, paired_segmenter
from unetgan.runtime import resolve_runtime

def high_water_mb():  # VmHWM is this process's own peak (ru_maxrss survives exec and reports the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

models = ModelCache()  # loaded as a worker loads them (on the default runtime) before its first study
runtime = resolve_runtime("auto", pick_device(sys.argv[3]))
models.lvunet(paired_segmenter(models.adapter(sys.argv[2], runtime)), runtime)
base = high_water_mb()
adapt_segment_file(sys.argv[1], pathlib.Path(tempfile.mkdtemp()) / "o", sys.argv[2], device=sys.argv[3], models=models)
print(base, high_water_mb())
"""


def peak_rss(cine: Path, device) -> dict:
    """Peak resident memory (MB) of a fresh process running adapt-segment on the cine, and its resident
    memory before reading the input (Python, torch and the models)."""
    result = subprocess.run([sys.executable, "-c", CHILD_PEAK, str(cine), ADAPTER, str(device)],
                            capture_output=True, text=True, check=True)
    base, peak_mb = (float(x) for x in result.stdout.strip().splitlines()[-1].split())
    return {"baseline_rss_mb": base, "peak_rss_mb": peak_mb}


def memory_cases(folder: Path, cine_300: Path, huge: bool) -> list[tuple[Path, str]]:
    """(file, name) of the studies whose peak memory is measured, the large one only with `huge`."""
    cases = [(cine_300, "300-image cine"), (write_cine(folder, *CINE_1000), "1000-image cine")]
    if huge:
        study = make_study("Siemens", seed=11, n_phases=50, n_slices=20, matrix=512)
        cases.append((write_study(study, folder, fmt="nifti", name="huge")["cine"],
                      "large study (50 phases x 20 slices, 512-pixel matrix)"))
    return cases


def memory_rows(cases: list[tuple[Path, str]], device) -> list[dict]:
    from unetgan.io.images import read_image

    rows = []
    for path, name in cases:
        array = read_image(path).array
        row = {"case": name, "shape": list(array.shape), "dtype": str(array.dtype), "input_mb": array.nbytes / 2**20}
        del array
        row.update(peak_rss(path, device))
        row["peak_over_input"] = row["peak_rss_mb"] / row["input_mb"]
        row["above_baseline_over_input"] = (row["peak_rss_mb"] - row["baseline_rss_mb"]) / row["input_mb"]
        print(f"memory {name}: peak RSS {row['peak_rss_mb']:.0f} MB, baseline {row['baseline_rss_mb']:.0f} MB, "
              f"input {row['input_mb']:.0f} MB ({row['dtype']})", flush=True)
        rows.append(row)
    return rows


# -- adapter training -----------------------------------------------------------------------------------

def adapter_iteration_seconds(threads: int, iterations: int = 6) -> float:
    from unetgan.preprocess import prepare_volume
    from unetgan.training.train_adapter import AdapterConfig, _AdapterTraining

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        slices = {}
        for vendor in ("Philips", "Siemens"):
            study = make_study(vendor, seed=2, n_phases=2, n_slices=8, matrix=SIDE)
            slices[vendor] = torch.cat([prepare_volume(f, study.spacing)[0] for f in study.image])[:, 0].numpy()
        run = _AdapterTraining(slices["Philips"], slices["Siemens"], load_lvunet("lvunet-clean"),
                               AdapterConfig.fast(iterations=iterations + 2))
        run.step(0)
        started = time.perf_counter()
        for i in range(1, iterations + 1):
            run.step(i)
        return (time.perf_counter() - started) / iterations
    finally:
        torch.set_num_threads(previous)


def shipped_adapter_training() -> list[dict]:
    rows = []
    for vendor in ("Siemens", "GE"):
        generator = load_adapter(vendor)
        meta = generator.metadata
        rows.append({"adapter": find_model(vendor, "adapter").name, "chosen_iteration": meta.get("iteration"),
                     "iterations": (meta.get("training") or {}).get("iterations"),
                     "segmenter": paired_segmenter(generator) or "lvunet-clean"})
    return rows


# -- Dice per speed-up on real data ---------------------------------------------------------------------

def dice_per_speedup(manifest: Path, device, bf16: bool) -> list[dict]:
    """Mean Dice on the real dev data with and without each speed-up we use (or tried)."""
    from unetgan.evaluation import score_volume, summarise
    from unetgan.io.manifest import read_manifest

    variants = {UNOPTIMISED: {"whole_field": True}, HEART_BOX: {"whole_field": False}}
    if device.type == "cpu" and onnx_available():
        variants[ONNX_FP32] = {"whole_field": False, "runtime": "onnx"}
        variants[SHIPPED] = {"whole_field": False, "runtime": "onnx-int8"}
        variants[FLIP4] = {"whole_field": False, "runtime": "onnx-int8", "tta": "flip4"}
        variants[ROBUST_FLIP4] = {"whole_field": False, "runtime": "onnx-int8", "tta": "flip4", "model": "lvunet-robust"}
    if bf16:
        variants["whole field, bf16 autocast"] = {"whole_field": True, "bf16": True}
    rows = []
    for vendor in ("Siemens", "GE"):
        generator = load_adapter(vendor)
        network = load_lvunet(paired_segmenter(generator))
        studies = [realistic_cine(item) for item in read_manifest(manifest, [vendor], ["dev_labelled"], require_labels=True)]
        for name, options in variants.items():
            started, per_volume = time.perf_counter(), []
            runtime, tta = options.get("runtime", "torch"), options.get("tta", "none")
            segmenter = load_lvunet(options["model"]) if "model" in options else network
            options = {k: v for k, v in options.items() if k not in ("runtime", "tta", "model")}
            networks = with_tta(on_runtime(segmenter, runtime), tta), on_runtime(generator, runtime)
            for frames, geometry, scored in studies:
                result = adapt_and_segment(frames, geometry, *networks, device, **options)
                per_volume += [score_volume(volume, result.labels[t]) for t, volume in scored]
            summary = summarise(per_volume)[vendor]
            rows.append({"vendor": vendor, "variant": name, "mean_dice": summary["mean"]["mean"],
                         "blood_pool": summary["blood_pool"]["mean"], "myocardium": summary["myocardium"]["mean"],
                         "volumes": summary["n"], "seconds": time.perf_counter() - started})
    return rows


def realistic_cine(item):
    """(frames, geometry, [(frame index, labelled volume)]) as a user would run it: a whole DICOM cine in
    acquisition order (Sunnybrook), or the ED and ES volumes as a two-frame cine starting at ED (M&Ms)."""
    from unetgan.io.images import read_image
    from unetgan.io.manifest import load_item
    from unetgan.io.sunnybrook import cine_phase_names

    volumes = cine_phase_names(load_item(item))
    if Path(item.image).is_dir():
        cine = read_image(item.image)
        return cine.array, cine.geometry, [(v.image.meta["frame"], v) for v in volumes]
    volumes = sorted(volumes, key=lambda v: v.phase != "ED")
    frames = np.stack([v.image.array for v in volumes])
    return frames, volumes[0].image.geometry, list(enumerate(volumes))


# -- report -------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks", help="writes OUT.json and OUT.md")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--manifest", type=Path, help="real labelled data for the Dice-per-speed-up table")
    parser.add_argument("--reference-frames", type=int, default=1, help="frames the reference networks are timed on")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--bf16-dice", action="store_true",
                        help="also the Dice of bf16 autocast (slow where the CPU has no bf16 instructions)")
    parser.add_argument("--huge", action="store_true", help="also the 50 x 20 x 512 x 512 study's memory (about 5 min)")
    parser.add_argument("--memory-only", action="store_true",
                        help="measure the memory rows again and replace them in the existing OUT.json report")
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.memory_only:
        return remeasure_memory(Path(args.out), device, args.huge)
    torch.manual_seed(0)
    report: dict = {"command": " ".join(["python"] + sys.argv), "machine": machine()}
    print(json.dumps(report["machine"]), flush=True)

    report["peak"] = peak(device)
    print("peak", json.dumps(report["peak"]), flush=True)
    conv_peak = max(report["peak"]["conv3x3_float32_gflops"], report["peak"]["matmul_float32_gflops"])
    generator = load_adapter(ADAPTER)
    ours = {"generator (ours)": generator, "LV-Unet (ours)": load_lvunet(paired_segmenter(generator))}
    reference = {"generator 64/9 (reference)": reference_generator(), "U-Net 64-1024 (reference)": reference_unet()}
    report["networks"] = network_rows(ours, device, conv_peak) + network_rows(reference, device, conv_peak, sides=(SIDE,))
    for row in report["networks"]:
        print(f"{row['network']:28s} {row['side']:4d}  {row['gflop_per_image']:7.2f} GFLOP  {row['ms_per_image']:8.1f} ms/img"
              f"  {row['gflops_achieved']:6.1f} GFLOP/s ({100 * row['fraction_of_conv_peak']:.0f}% of the measured peak)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        cine = write_cine(Path(tmp), *CINE_300)
        images = CINE_300[0] * CINE_300[1]
        runs = {"ours, heart box (shipped)": end_to_end(cine, device, whole_field=False),
                "ours, heart box, fp32 ONNX Runtime": end_to_end(cine, device, whole_field=False, runtime="onnx"),
                "ours, heart box, torch runtime": end_to_end(cine, device, whole_field=False, runtime="torch"),
                "ours, whole field": end_to_end(cine, device, whole_field=True, runtime="torch")}
        ref = reference_end_to_end(cine, device, args.reference_frames)
        other = {k: v for k, v in runs["ours, whole field"]["stages_s"].items() if k not in ("translate", "segment")}
        runs["reference networks, whole field"] = {"wall_s": ref["network_s"] + sum(other.values()),
                                                   "stages_s": {**other, **{k: ref["stages_s"][k] for k in ("translate", "segment")}},
                                                   "note": f"networks timed on {ref['timed_frames']} frame(s), scaled"}
        for name, run in runs.items():
            run["images_per_s"] = images / run["wall_s"]
            print(f"{name:34s} {run['wall_s']:7.1f} s  {run['images_per_s']:6.1f} images/s  "
                  + ", ".join(f"{k} {v:.2f}" for k, v in run["stages_s"].items()), flush=True)
        report["cine_300"] = {"images": images, "shape": [*CINE_300, SIDE, SIDE], "runs": runs,
                              "speedup_vs_reference": runs["ours, heart box (shipped)"]["images_per_s"]
                              / runs["reference networks, whole field"]["images_per_s"]}
        if not args.skip_memory:
            report["memory"] = memory_rows(memory_cases(Path(tmp), cine, args.huge), device)

    report["adapter_training"] = {"seconds_per_iteration": {f"{t} thread(s)": adapter_iteration_seconds(t)
                                                           for t in (1, 2)},
                                  "shipped": shipped_adapter_training()}
    print("adapter training", json.dumps(report["adapter_training"]), flush=True)
    if args.manifest:
        report["dice_per_speedup"] = dice_per_speedup(args.manifest, device, args.bf16_dice)
        for row in report["dice_per_speedup"]:
            print(f"{row['vendor']:8s} {row['variant']:34s} mean Dice {row['mean_dice']:.4f} ({row['seconds']:.0f} s)",
                  flush=True)
    write_report(Path(args.out).parent, Path(args.out).name, report, markdown(report))
    return 0


def remeasure_memory(out: Path, device, huge: bool) -> int:
    """The memory rows again (after a change that affects memory only), the rest of the report kept; the
    report records both commands."""
    report = json.loads(out.with_suffix(".json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        report["memory"] = memory_rows(memory_cases(Path(tmp), write_cine(Path(tmp), *CINE_300), huge), device)
    report["memory_command"] = " ".join(["python"] + sys.argv)
    write_report(out.parent, out.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
