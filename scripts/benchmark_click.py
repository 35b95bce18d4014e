"""Click-to-result: what a user waits for, from the Adapt & Segment click to the result in the scene.

    python scripts/benchmark_click.py --out docs/benchmarks_click [--clicks 3] [--dicom FOLDER --dicom-adapter GE]
        [--standin-manifest MANIFEST [--standin-subject ID ...]]
    python scripts/benchmark_click.py --out docs/benchmarks_click --render-only

For each cine (the phantom 300-image cine of scripts/benchmark.py; with --dicom a real DICOM cine,
never copied anywhere; with --standin-manifest a real-image Siemens cine that the Siemens adapter translates,
made in a temporary folder from one labelled Siemens subject's ED and ES volumes, see standin_cine),
measured on this machine under its present load (`load_average`):
- the cold command line: `python -m unetgan adapt-segment` in a fresh process (what every click
  cost before the warm worker: start, torch import, model loading, compressed NRRD both ways);
- the MRML layer's `adapt_and_segment` on a slicer-core scene with the cine loaded as a user loads
  it (UnetGANSlicerLib.loading.load_image): what the Slicer module's button and the web page call.
  The first click starts the session's warm worker; the later clicks reuse it. Each click is split
  into the layer's stages (scene to arrays, hand-off write/read, making the nodes) and the backend's
  (read, preprocess, translate, segment, restore, measure, write), the rest of "backend" being the
  protocol and, on the first click, the worker's start;
- with --reference: the same click with the reference-size networks' time in place of ours (timed on
  one frame and scaled, as scripts/benchmark.py does).
Nothing here is a test: figures depend on the machine and its load.

OUT.json keeps one report per CPU kind (model, instruction set, VNNI or not; cpu_label): a run replaces the
report of its own CPU kind and keeps the others, and OUT.md shows every kind, each row naming its CPU.
--render-only writes OUT.md from OUT.json without measuring.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "UnetGANSlicer"))

from report_files import write_report  # noqa: E402 - scripts/ is on the path when a script runs
from UnetGANSlicerLib import adapt_and_segment, context, loading, runner  # noqa: E402
from unetgan.inference import FRAMES_AT_ONCE  # noqa: E402
from unetgan.runtime import INSTRUCTION_SET_ENV, cpu_description, instruction_set, resolve_runtime  # noqa: E402
from unetgan.tta import DEFAULT_TTA  # noqa: E402
from unetgan.timing import Stopwatch  # noqa: E402

PHANTOM = (25, 12, 192)  # phases, slices, matrix: the 300-image cine of scripts/benchmark.py
NETWORK_STAGES = ("backend translate", "backend segment")
STANDIN_PHASES = 24  # a typical Siemens cine's phase count (M&Ms gives only the ED and ES volumes)
STANDIN_SPLIT = "dev_labelled"


def phantom_cine(folder: Path, phases: int, slices: int, matrix: int) -> Path:
    from unetgan.phantom import make_study, write_study

    study = make_study("Siemens", seed=11, n_phases=phases, n_slices=slices, matrix=matrix)
    return write_study(study, folder, fmt="nifti", name=f"cine_{phases * slices}")["cine"]


def cosine_cycle(phases: int):
    """ES weight per phase: 0 at phase 0 (ED), 1 at phase phases/2 (ES), back towards 0, smooth as a heart beats."""
    import numpy as np

    return (1.0 - np.cos(2.0 * np.pi * np.arange(phases) / phases)) / 2.0


def _standin_rows(manifest: Path) -> dict[str, dict[str, object]]:
    """The Siemens dev_labelled subjects with both an ED and an ES row, in sorted order: {subject: {phase: item}}."""
    from unetgan.io.manifest import read_manifest

    rows: dict[str, dict[str, object]] = {}
    for item in read_manifest(manifest, ["Siemens"], [STANDIN_SPLIT]):
        rows.setdefault(item.subject, {})[item.phase.upper()] = item
    return {name: rows[name] for name in sorted(rows) if {"ED", "ES"} <= set(rows[name])}


def typical_standin_subject(manifest: Path) -> str | None:
    """The subject whose ED volume has the median number of slices (the lower median; the first in sorted order
    among equals): a stand-in of a typical study's size, as the first in sorted order need not be."""
    from unetgan.io.manifest import load_item

    rows = _standin_rows(manifest)
    if not rows:
        return None
    slices = {name: load_item(phases["ED"])[0].image.array.shape[0] for name, phases in rows.items()}
    median = sorted(slices.values())[(len(slices) - 1) // 2]
    return next(name for name, count in slices.items() if count == median)


def standin_volumes(manifest: Path, subject: str | None = None):
    """(subject, ED image, ES image) of one Siemens dev_labelled subject: the named one, else the first in sorted order."""
    from unetgan.errors import InputError
    from unetgan.io.manifest import load_item

    rows = _standin_rows(manifest)
    complete = list(rows)
    if subject is None and not complete:
        raise InputError(f"{Path(manifest).name}: no Siemens {STANDIN_SPLIT} subject has both an ED and an ES row")
    chosen = subject if subject is not None else complete[0]
    if chosen not in complete:
        raise InputError(f"{Path(manifest).name}: no Siemens {STANDIN_SPLIT} subject {chosen!r} with ED and ES rows; "
                         f"choose from {', '.join(complete) or 'none'}")
    ed, es = (load_item(rows[chosen][phase])[0].image for phase in ("ED", "ES"))
    if ed.array.shape != es.array.shape:
        raise InputError(f"{chosen}: ED {ed.array.shape} and ES {es.array.shape} differ in shape; a cine needs one grid")
    return chosen, ed, es


def standin_cine(manifest: Path, folder: Path, subject: str | None = None, phases: int = STANDIN_PHASES) -> tuple[Path, str]:
    """A real-image Siemens cine of `phases` phases, ED -> ES -> ED (phase t blends the two volumes' pixels with
    cosine_cycle's weight; phase 0 is ED, phase phases/2 is ES), written as a 4D NIfTI with the ED volume's
    geometry. M&Ms ships only ED and ES volumes per subject: this is the nearest to a real Siemens cine that the
    data allow, with real intensities, noise and anatomy for the adapter to translate. Returns (path, subject)."""
    import numpy as np

    from unetgan.io.images import write_image

    chosen, ed, es = standin_volumes(manifest, subject)
    weights = cosine_cycle(phases)[:, None, None, None]
    frames = (1.0 - weights) * ed.array.astype(np.float32)[None] + weights * es.array.astype(np.float32)[None]
    dtype = ed.array.dtype
    if np.issubdtype(dtype, np.integer):  # keep the scanner's stored type: the reader sees what a user's file holds
        info = np.iinfo(dtype)
        frames = np.clip(np.rint(frames), info.min, info.max)
    else:
        dtype = np.float32
    path = write_image(frames.astype(dtype), ed.geometry, Path(folder) / f"standin_{chosen}_cine.nii.gz")
    return path, chosen


def cold_cli(path: Path, adapter: str, device: str) -> dict:
    """`unetgan adapt-segment` in a fresh process, as a shell user (or a click before the worker) runs it."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run(runner.backend_command(["adapt-segment", str(path), "-o", str(Path(out) / "o"),
                                                      "--adapter", adapter, "--device", device]),
                              env=runner.backend_environment(), capture_output=True, text=True)
        if done.returncode:  # the command's own message, not only its exit status
            raise SystemExit(f"unetgan adapt-segment {path.name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return {"wall_s": time.perf_counter() - started}


def worker_ready_s(pid: int, limit_s: float = 120.0) -> float:
    """Seconds until a freshly started worker has finished starting (imports, preloaded models): its CPU time
    stops growing."""
    import psutil

    process, started, last, still = psutil.Process(pid), time.perf_counter(), -1.0, 0
    while time.perf_counter() - started < limit_s:
        used = sum(process.cpu_times()[:2])
        still = still + 1 if used == last else 0
        if still >= 5:  # 0.5 s without a tick of CPU
            return time.perf_counter() - started - 0.5
        last = used
        time.sleep(0.1)
    return limit_s


def clicks(path: Path, adapter: str, device: str, count: int) -> tuple[list[dict], int, dict]:
    """`count` clicks through the MRML layer on the loaded cine, the first one with no worker running; then
    one click after the worker was started ahead, as entering the module or loading an image in the web page does."""
    logics = context.setup_standalone()
    scene = logics["scene"]
    try:
        loaded = loading.load_image(path, scene)
        images = loaded.n_frames * loaded.volume.GetImageData().GetDimensions()[2]
        runner.stop_all()  # the first click starts the worker, as a click right after opening Slicer would
        rows = [click(loaded.volume, adapter, device, images, number) for number in range(1, count + 1)]
        # the four flips: the default before lvunet-soup, an option since (4x the segmenter's time)
        rows.append(click(loaded.volume, adapter, device, images, "later, --tta flip4", tta="flip4"))
        runner.stop_all()
        ready = worker_ready_s(runner.start_worker())
        ahead = click(loaded.volume, adapter, device, images, "first, worker started ahead")
        ahead["worker_ready_s"] = ready
        print(f"  worker started ahead: ready after {ready:.1f} s", flush=True)
        return rows, images, ahead
    finally:
        runner.stop_all()
        scene.Clear(True)


def click(volume, adapter: str, device: str, images: int, number, tta: str | None = None) -> dict:
    stopwatch = Stopwatch()
    started = time.perf_counter()
    result = adapt_and_segment(volume, adapter=adapter, device=device, stopwatch=stopwatch, tta=tta)
    wall = time.perf_counter() - started
    # each click adds its own result nodes, as a user's clicks do (nothing is overwritten)
    print(f"  click {number}: {wall:.2f} s  " + ", ".join(f"{k} {v:.2f}" for k, v in stopwatch.seconds.items()),
          flush=True)
    return {"click": number, "wall_s": wall, "images_per_s": images / wall, "stages_s": dict(stopwatch.seconds),
            "frames": result.n_frames}


def memory_bandwidth_gb_s() -> float:
    """Copy bandwidth of this machine (read + write, best of 5 copies of 256 MB)."""
    import numpy as np

    source, target = np.ones(2**26, np.float32), np.empty(2**26, np.float32)
    best = min(_timed_copy(source, target) for _ in range(5))
    return 2 * source.nbytes / best / 1e9


def _timed_copy(source, target) -> float:
    import numpy as np

    started = time.perf_counter()
    np.copyto(target, source)
    return time.perf_counter() - started


def pixels_per_image(path: Path) -> int:
    from unetgan.io.images import read_image

    frames = read_image(path).frames
    return int(frames.shape[-1] * frames.shape[-2])


def reference_networks_s(path: Path, device: str) -> float:
    """Seconds the reference-size networks (scripts/benchmark.py) would take on the whole cine."""
    import torch

    from benchmark import reference_end_to_end

    return reference_end_to_end(path, torch.device(device), frames=1)["network_s"]


def measure(name: str, path: Path, adapter: str, device: str, count: int, reference: bool, **extra) -> dict:
    print(f"{name}: {path}", flush=True)
    row = {"cine": name, "adapter": adapter, **extra}
    row["cold_cli"] = cold_cli(path, adapter, device)
    print(f"  cold command line: {row['cold_cli']['wall_s']:.2f} s", flush=True)
    row["clicks"], row["images"], row["click_worker_ahead"] = clicks(path, adapter, device, count)
    row["float32_bytes"] = 4 * row["images"] * pixels_per_image(path)
    if reference:
        later = min(later_clicks(row["clicks"]) or row["clicks"][:1], key=lambda c: c["wall_s"])
        ours = sum(later["stages_s"].get(stage, 0.0) for stage in NETWORK_STAGES)
        row["reference_click_s"] = later["wall_s"] - ours + reference_networks_s(path, device)
        row["speedup_vs_reference"] = row["reference_click_s"] / later["wall_s"]
        print(f"  reference networks' click: {row['reference_click_s']:.1f} s", flush=True)
    return row


def later_clicks(clicks: list[dict]) -> list[dict]:
    """The numbered clicks after the first, with the default settings (the named ones, e.g. `--tta flip4`, aside)."""
    return [c for c in clicks[1:] if isinstance(c["click"], int)]


def detected_instruction_set() -> str:
    """The CPU's own instruction set, whatever $UNETGAN_INSTRUCTION_SET forces."""
    forced = os.environ.pop(INSTRUCTION_SET_ENV, None)
    try:
        return instruction_set.__wrapped__()  # the detection itself, not the cached (possibly forced) answer
    finally:
        if forced is not None:
            os.environ[INSTRUCTION_SET_ENV] = forced


def cpu_kind() -> dict:
    """This run's CPU (unetgan.runtime.cpu_description), with the forced instruction set and the detected one
    when $UNETGAN_INSTRUCTION_SET imitates another CPU's choices."""
    cpu = dict(cpu_description())
    forced = os.environ.get(INSTRUCTION_SET_ENV, "").strip().lower()
    if forced:
        cpu["forced_instruction_set"] = forced
        cpu["detected_instruction_set"] = detected_instruction_set()
    return cpu


def cpu_label(cpu: dict) -> str:
    """The CPU kind a report stands for: model, instruction set, VNNI or not. A forced instruction set is named
    as such with the CPU it ran on: its figures are that CPU's speed on the other CPU's code path, not a real
    CPU of that kind."""
    if not cpu.get("model"):
        return f"not recorded ({'VNNI' if cpu.get('vnni') else 'no VNNI'})"
    detected = cpu.get("detected_instruction_set")
    if cpu.get("forced_instruction_set") and detected and detected != cpu["instruction_set"]:
        host = "a VNNI CPU" if detected == "vnni" else f"a CPU detected as {detected}"
        return f"forced {cpu['instruction_set']} path on {cpu['model']} ({host})"
    return f"{cpu['model']} ({cpu['instruction_set']}, {'with' if cpu['vnni'] else 'without'} VNNI)"


def merge(existing: dict | None, report: dict) -> dict:
    """The reports by CPU kind with this run's report in place of its kind's (in its place, else last)."""
    reports = dict((existing or {}).get("reports", {}))
    reports[cpu_label(report["machine"]["cpu"])] = report
    return {"reports": reports}


def read_reports(path: Path) -> dict | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if "reports" not in data:
        raise SystemExit(f"{path}: not one report per CPU kind (no 'reports'); convert it before adding a run to it")
    return data


def targets(data: dict) -> list[str]:
    """The speed targets, each with the figure of each CPU kind's run and whether it is met."""
    rows = []
    for kind, report in data["reports"].items():
        for r in report["cines"]:
            later = later_clicks(r["clicks"]) or r["clicks"][:1]
            best = min(c["wall_s"] for c in later)
            rows.append((kind, f"{r['cine']} ({r['images']} images), later clicks (default: --tta {DEFAULT_TTA})",
                         f"{best:.1f} s", best <= 5.0, "<= 5 s"))
            for c in r["clicks"]:
                if not isinstance(c["click"], int):
                    rows.append((kind, f"{r['cine']}, {c['click']}", f"{c['wall_s']:.1f} s", c["wall_s"] <= 5.0, "<= 5 s"))
            if "speedup_vs_reference" in r:
                rows.append((kind, f"{r['cine']}, speed-up over the reference networks' click",
                             f"{r['speedup_vs_reference']:.0f}x", r["speedup_vs_reference"] >= 40, ">= 40x"))
    return ["| CPU | target | measured | goal | met |", "|---|---|---|---|---|"] + [
        f"| {kind} | {name} | {value} | {goal} | {'yes' if ok else '**no**'} |" for kind, name, value, ok, goal in rows]


def made_by(kind: str, report: dict) -> str:
    m = report["machine"]
    return (f"- **{kind}**: made by `{report['command']}`; {m['cores']} cores, load average at start "
            f"{', '.join(f'{x:.1f}' for x in m['load_average'])} (figures depend on the load); networks on "
            f"{report.get('runtime', 'torch')}.")


def markdown(data: dict) -> str:
    reports = data["reports"]
    cines = [r for report in reports.values() for r in report["cines"]]
    reference = any("reference_click_s" in r for r in cines)
    notes = []
    if any("subject" in r for r in cines):
        notes.append("The real Siemens stand-in is a real-image cine the Siemens adapter translates: one labelled "
                     f"M&Ms Siemens subject's ED and ES volumes (the data hold no other phases), blended into "
                     f"{STANDIN_PHASES} phases that go ED, ES, ED with cosine weights, with the volumes' geometry.")
    if any(kind.startswith("forced ") for kind in reports):
        notes.append(f"A `forced ... path` row ran with {INSTRUCTION_SET_ENV} set: the runtime made the choices it makes "
                     "on that kind of CPU (no VNNI: float32 ONNX by `auto`, 7-bit int8 weights) on the CPU named, "
                     "which is a different kind: its figures are that CPU's speed on the other code path, not a "
                     "measurement of a real CPU of that kind.")
    lines = ["# Click-to-result", "",
             "One report per CPU kind (model, instruction set, VNNI or not); a run replaces the report of its own "
             "CPU kind and keeps the others. Every row names the CPU it was measured on.", "",
             *(made_by(kind, report) for kind, report in reports.items()), "",
             "What a user waits for from the Adapt & Segment click to the result in the scene (MRML layer, "
             "slicer-core scene; the Slicer module and the web page call the same function). The first click "
             "here starts the session's warm worker itself (torch import, model loading), as a click right after "
             "Slicer opens with no module entered; entering the module (or loading an image in the web page) starts the worker "
             "ahead, with the shipped models loaded (`first click, worker ahead`, after the worker was ready); "
             "later clicks reuse the worker. The cold command line is `unetgan adapt-segment` in a fresh process, "
             "what each click cost before the worker." + "".join(" " + n for n in notes), "", *targets(data), "",
             "| CPU | cine | images | cold command line (s) | first click (s) | worker ready after (s) | first click, worker "
             "ahead (s) | later clicks (s) | images/s (best later) |" + (" reference networks' click (s) | speed-up |"
                                                                          if reference else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if reference else "")]
    for kind, report in reports.items():
        for r in report["cines"]:
            first, ahead = r["clicks"][0], r["click_worker_ahead"]
            later = later_clicks(r["clicks"])
            best = min(later, key=lambda c: c["wall_s"]) if later else first
            later_s = ", ".join(f"{c['wall_s']:.1f}" for c in later) or "-"
            line = (f"| {kind} | {r['cine']} | {r['images']} | {r['cold_cli']['wall_s']:.1f} | {first['wall_s']:.1f} | "
                    f"{ahead['worker_ready_s']:.1f} | {ahead['wall_s']:.1f} | {later_s} | {best['images_per_s']:.0f} |")
            if "reference_click_s" in r:
                line += f" {r['reference_click_s']:.0f} | {r['speedup_vs_reference']:.0f}x |"
            elif reference:
                line += " - | - |"
            lines.append(line)
    lines += ["", "## Stages of each click (seconds)", "",
              "Layer stages: scene to arrays, hand-off write (uncompressed NRRD), backend (the worker's job, "
              "its start on the first click included), hand-off read, nodes. `backend ...`: the worker's own "
              "split of that job.", ""]
    overlapping = [kind for kind, report in reports.items() if report.get("frames_at_once", 1) > 1]
    if overlapping:
        lines += [f"{', '.join(overlapping)}: after a cine's first frame two frames run at once (one frame's work "
                  "outside the networks overlaps the other's network calls), so the worker's stages add up to more "
                  "than its time.", ""]
    for kind, report in reports.items():
        bandwidth = report["memory_bandwidth_gb_s"]
        lines.append(f"Memory bandwidth, {kind}: the machine copies {bandwidth:.1f} GB/s (numpy, 256 MB); "
                     "reading a cine's float32 pixels once and writing them once costs "
                     + ", ".join(f"{r['cine']} {1000 * r['float32_bytes'] * 2 / bandwidth / 1e9:.0f} ms"
                                 for r in report["cines"]) + ".")
        lines.append("")
    lines += ["Every stage outside the networks takes far longer than that, so none is bound by memory "
              "bandwidth; they are bound by per-pixel arithmetic on one core (resampling, soft-max, connected "
              "components, percentiles) and by the two networks' FLOPs.", ""]
    clicks_all = [(kind, r, c) for kind, report in reports.items() for r in report["cines"]
                  for c in [*r["clicks"], r["click_worker_ahead"]]]
    stages = list(dict.fromkeys(k for _, _, c in clicks_all for k in c["stages_s"]))
    lines += ["| CPU | cine | click | wall | " + " | ".join(stages) + " |", "|---|---|---|---|" + "---|" * len(stages)]
    for kind, r, c in clicks_all:
        lines.append(f"| {kind} | {r['cine']} | {c['click']} | {c['wall_s']:.2f} | "
                     + " | ".join(f"{c['stages_s'].get(s, 0):.2f}" for s in stages) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks_click"), help="writes OUT.json and OUT.md")
    parser.add_argument("--render-only", action="store_true", help="write OUT.md from OUT.json; measure nothing")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--clicks", type=int, default=3, help="clicks per cine (the first starts the worker)")
    parser.add_argument("--phantom", type=lambda v: tuple(int(x) for x in v.split(",")), default=PHANTOM,
                        help="phases,slices,matrix of the phantom cine (default 25,12,192)")
    parser.add_argument("--dicom", type=Path, help="a real DICOM cine folder (read where it is, never copied)")
    parser.add_argument("--dicom-adapter", default="GE", help="its adapter (the module picks it from the Manufacturer)")
    parser.add_argument("--standin-manifest", type=Path,
                        help=f"a manifest: also a {STANDIN_PHASES}-phase real-image Siemens cine made from one "
                             f"Siemens {STANDIN_SPLIT} subject's ED and ES volumes (in a temporary folder)")
    parser.add_argument("--standin-subject", action="append",
                        help="that subject; repeat for several (default: the first in sorted order and the one with "
                             "the median number of slices, a typical study's size)")
    parser.add_argument("--reference", action="store_true", help="also the reference-size networks' click (slow)")
    args = parser.parse_args()
    json_path = args.out.parent / f"{args.out.name}.json"
    if args.render_only:
        data = read_reports(json_path)
        if data is None:
            raise SystemExit(f"{json_path} not found: nothing to render")
        write_report(args.out.parent, args.out.name, data, markdown(data))
        return 0
    existing = read_reports(json_path)  # before measuring: a file in another structure stops the run at once
    report = {"command": " ".join(["python", *sys.argv]),
              "machine": {"cpu": cpu_kind(), "cores": os.cpu_count(), "load_average": os.getloadavg()}, "cines": [],
              "runtime": resolve_runtime("auto", args.device), "memory_bandwidth_gb_s": memory_bandwidth_gb_s(),
              "frames_at_once": min(FRAMES_AT_ONCE, os.cpu_count() or 1) if args.device == "cpu" else 1}
    with tempfile.TemporaryDirectory() as tmp:
        phases, slices, matrix = args.phantom
        cine = phantom_cine(Path(tmp), phases, slices, matrix)
        report["cines"].append(measure(f"phantom Siemens {phases} x {slices} x {matrix}", cine, "Siemens",
                                       args.device, args.clicks, args.reference))
        if args.dicom:
            report["cines"].append(measure(f"DICOM {args.dicom.parent.name}", args.dicom, args.dicom_adapter,
                                           args.device, args.clicks, args.reference))
        subjects = args.standin_subject or ([None, typical_standin_subject(args.standin_manifest)]
                                            if args.standin_manifest else [])
        for wanted in dict.fromkeys(subjects):
            standin, subject = standin_cine(args.standin_manifest, Path(tmp), wanted)
            if any(c.get("subject") == subject for c in report["cines"]):
                continue  # the typical study is the first in sorted order: measured once
            report["cines"].append(measure(f"real Siemens stand-in ({subject} ED/ES, {STANDIN_PHASES} phases)", standin,
                                           "Siemens", args.device, args.clicks, args.reference, subject=subject,
                                           phases=STANDIN_PHASES, split=STANDIN_SPLIT))
    data = merge(existing, report)
    write_report(args.out.parent, args.out.name, data, markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
