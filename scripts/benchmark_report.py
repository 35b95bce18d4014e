"""docs/benchmarks.md from docs/benchmarks.json: the report of `scripts/benchmark.py`, rendered apart from the
measuring so that a report can be written again from its JSON alone."""
from __future__ import annotations

# the variants of the Dice-per-speed-up table, as benchmarks.json names them
UNOPTIMISED = "whole field, fp32, torch (unoptimised)"
HEART_BOX = "heart box, fp32, torch"
ONNX_FP32 = "heart box, fp32, ONNX Runtime"
SHIPPED = "heart box, int8, ONNX Runtime (the shipped runtime on VNNI CPUs; one pass, the default)"
# test-time augmentation (tta.py) on the shipped runtime; the rows above run without it
FLIP4 = "heart box, int8, ONNX Runtime, --tta flip4"
# an earlier default: lvunet-robust with the four flips, which the soups give in one pass (4x faster)
ROBUST_FLIP4 = "lvunet-robust, heart box, int8, ONNX Runtime, --tta flip4 (an earlier default)"


def cpu_line(m: dict) -> str:
    """The CPU as the report names it: model, VNNI or not (older reports recorded only some flags)."""
    if "vnni" not in m:
        flags = [k for k, v in m["isa"].items() if v]
        implied = (", but its avx512_bf16 comes only on CPUs that have AVX-512 VNNI too: AMD Zen 4 and later, Intel "
                   "Cooper Lake and later" if "avx512_bf16" in flags else "")
        return f"{m['cpu']} with {', '.join(flags)}; VNNI not recorded{implied}"
    return (f"{m['cpu']}, {'with' if m['vnni'] else 'without'} VNNI (instruction set {m['instruction_set']}; int8 weights "
            f"{m['int8_weights']})")


def targets(r: dict) -> list[str]:
    """The speed, memory and accuracy targets, each with the figure measured here and whether it is met."""
    shipped = r["cine_300"]["runs"]["ours, heart box (shipped)"]
    rows = [("300-image cine, end to end (warm, in-process)", f"{shipped['wall_s']:.1f} s", shipped["wall_s"] < 8, "< 8 s"),
            ("throughput", f"{shipped['images_per_s']:.1f} images/s", shipped["images_per_s"] >= 40, ">= 40 images/s"),
            ("speed-up over the reference networks", f"{r['cine_300']['speedup_vs_reference']:.1f}x",
             r["cine_300"]["speedup_vs_reference"] >= 10, ">= 10x")]
    for x in r.get("memory", []):
        if x["case"].startswith("1000"):
            rows.append(("peak memory, 1000-image cine", f"{x['peak_rss_mb']:.0f} MB", x["peak_rss_mb"] < 2048, "< 2 GB"))
        if x["case"].startswith("large"):
            rows.append(("peak memory, large study, above the baseline / input", f"{x['above_baseline_over_input']:.1f}x",
                         x["above_baseline_over_input"] <= 3.0, "about 3x (<= 3.0x)"))
    dice = {(d["vendor"], d["variant"]): d["mean_dice"] for d in r.get("dice_per_speedup", [])}
    for vendor in ("Siemens", "GE"):
        base, box, fp32, int8 = (dice.get((vendor, v)) for v in (UNOPTIMISED, HEART_BOX, ONNX_FP32, SHIPPED))
        if base is not None and box is not None:
            rows.append((f"Dice change of the heart box, {vendor}", f"{box - base:+.4f}", abs(box - base) <= 0.005,
                         "within 0.005"))
        for name, after, before in (("ONNX Runtime", fp32, box), ("int8 (against fp32 ONNX Runtime)", int8, fp32)):
            if after is not None and before is not None:
                rows.append((f"Dice change of {name}, {vendor}", f"{after - before:+.4f}",
                             abs(after - before) <= 0.005, "within 0.005"))
        # not a numerical shortcut but another network, one pass instead of four: it may gain, it must not lose
        earlier_default = dice.get((vendor, ROBUST_FLIP4))
        if int8 is not None and earlier_default is not None:
            rows.append((f"Dice change of the default segmenter's one pass against lvunet-robust's four flips (an earlier "
                         f"default), {vendor}", f"{int8 - earlier_default:+.4f}",
                         int8 - earlier_default >= -0.005, "no loss over 0.005"))
    return ["| target | measured | goal | met |", "|---|---|---|---|"] + [
        f"| {name} | {value} | {goal} | {'yes' if ok else '**no**'} |" for name, value, ok, goal in rows]


def markdown(r: dict) -> str:
    m, p = r["machine"], r["peak"]
    lines = ["# Benchmarks", "", f"Made by `{r['command']}` (`make bench`). Machine: {cpu_line(m)}; {m['cores']} cores, "
             f"torch {m['torch']} with {m['torch_threads']} threads; "
             f"load average at start {', '.join(f'{x:.1f}' for x in m['load_average'])}"
             + (f"; GPU {m['cuda']}" if m["cuda"] else "") + ".", "",
             "## Targets", "", *targets(r), "",
             "## The machine's peak", "", "| kernel | fp32 GFLOP/s | bf16 GFLOP/s |", "|---|---|---|",
             f"| dense matmul (best of 1024^3, 2048^3; bf16 512^3) | {p['matmul_float32_gflops']:.0f} | {p['matmul_bfloat16_gflops']:.1f} |",
             f"| 3x3 convolution (best of 64-256 channels, 24-96 px, both layouts) | {p['conv3x3_float32_gflops']:.0f} | {p['conv3x3_bfloat16_gflops']:.1f} |",
             "", "## Networks (per image, batch of 12)", "",
             "| network | input | GFLOP | parameters (M) | ms | GFLOP/s | of the fp32 peak |", "|---|---|---|---|---|---|---|"]
    for n in r["networks"]:
        lines.append(f"| {n['network']} | {n['side']}^2 | {n['gflop_per_image']:.2f} | {n['parameters_m']:.2f} | "
                     f"{n['ms_per_image']:.1f} | {n['gflops_achieved']:.0f} | {100 * n['fraction_of_conv_peak']:.0f}% |")
    c = r["cine_300"]
    stages = sorted({k for run in c["runs"].values() for k in run["stages_s"]})
    lines += ["", f"## Adapt & Segment of a {c['images']}-image cine ({' x '.join(map(str, c['shape']))}), warm, in-process", "",
              "In this process, after a warm-up run: no process start, torch already imported; the model files read "
              "and hashed again (from the page cache), the file in and the files out (compressed NRRD) included. What "
              "a user waits for, from the click to the result in the scene (first and later clicks) and the cold "
              "command line: [benchmarks_click.md](benchmarks_click.md).", "",
              "| run | wall (s) | images/s | " + " | ".join(stages) + " |", "|---|---|---|" + "---|" * len(stages)]
    for name, run in c["runs"].items():
        lines.append(f"| {name} | {run['wall_s']:.1f} | {run['images_per_s']:.1f} | "
                     + " | ".join(f"{run['stages_s'].get(s, 0):.2f}" for s in stages) + " |")
    shipped = c["runs"]["ours, heart box (shipped)"]
    network_s = shipped["stages_s"].get("translate", 0) + shipped["stages_s"].get("segment", 0)
    lines += ["", f"Speed-up of the shipped pipeline over the reference networks: **{c['speedup_vs_reference']:.1f}x**. "
              "Stages in seconds; the reference networks were timed on part of the cine and scaled "
              "(its other stages are ours).", "",
              f"Where the shipped run's time goes: the two networks take {network_s:.1f} s "
              f"({100 * network_s / shipped['wall_s']:.0f}% of the wall time), running near the measured peak (table "
              "above); the rest is numpy/SimpleITK work on one core (histogram matching, resampling, restoring the "
              "labels to the input grid, writing compressed NRRD), far from any FLOP limit and bound by memory "
              "traffic.", ""]
    if "memory" in r:
        lines += ["## Peak memory (fresh process, RSS)", "",
                  "Baseline: the process after importing torch and loading the models on the default runtime (as a "
                  "worker has them before its first study), before reading the input."
                  + (f" Measured again by `{r['memory_command']}`." if r.get("memory_command") else ""), "",
                  "| case | shape | input in memory (MB) | baseline (MB) | peak RSS (MB) | peak / input | (peak - baseline) / input |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {x['case']} | {' x '.join(map(str, x['shape']))} {x['dtype']} | {x['input_mb']:.0f} | "
                  f"{x['baseline_rss_mb']:.0f} | {x['peak_rss_mb']:.0f} | {x['peak_over_input']:.1f} | "
                  f"{x['above_baseline_over_input']:.1f} |" for x in r["memory"]]
        lines.append("")
    a = r["adapter_training"]
    lines += ["## Adapter training (fast config)", ""]
    lines += [f"- {k}: {v:.2f} s per iteration" for k, v in a["seconds_per_iteration"].items()]
    one = a["seconds_per_iteration"]["1 thread(s)"]
    for s in a["shipped"]:
        if s["chosen_iteration"]:
            lines.append(f"- `{s['adapter']}` (segmenter `{s['segmenter']}`): chosen checkpoint at iteration "
                         f"{s['chosen_iteration']} of {s['iterations']}: about {s['chosen_iteration'] * one / 60:.0f} min "
                         f"on one thread to reach it")
    if "dice_per_speedup" in r:
        lines += ["", "## Dice per speed-up on the real dev data", "",
                  f"The int8 rows were run on {cpu_line(m)}. On a CPU without VNNI int8 runs with 7-bit weights, "
                  "which cannot saturate there; their masks and speed: [int8_safety.md](int8_safety.md), and measured on a CPU "
                  "without VNNI: [int8_safety_avx2.md](int8_safety_avx2.md).", "",
                  "| vendor | variant | volumes | mean Dice | blood pool | myocardium | seconds |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {d['vendor']} | {d['variant']} | {d['volumes']} | {d['mean_dice']:.4f} | {d['blood_pool']:.4f} | "
                  f"{d['myocardium']:.4f} | {d['seconds']:.0f} |" for d in r["dice_per_speedup"]]
    return "\n".join(lines) + "\n"
