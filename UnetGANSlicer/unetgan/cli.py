"""`unetgan` command line: one subcommand per job; user errors become one `ERROR:` line and exit code 2."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .errors import Cancelled, InputError, user_error
from .model_commands import add_model_commands
from .progress import progress_printer
from .tta import DEFAULT_TTA, TTA_FLIPS

EXIT_SOME_FAILED = 1  # `batch`: the other studies succeeded


def _train_unet(args) -> int:
    from .training.datasets import labelled_volumes
    from .distributed import join
    from .training.train_unet import UnetTrainConfig, train_unet

    preset = UnetTrainConfig.paper if args.config == "paper" else UnetTrainConfig.fast
    overrides = {f.name: getattr(args, f.name) for f in fields(UnetTrainConfig)
                 if getattr(args, f.name, None) is not None}
    config = preset(**overrides)
    volumes = labelled_volumes(args.manifest, args.vendor, args.split, args.label_convention)
    histograms = None
    if args.histogram_target_vendor:
        from .training.appearance import TargetHistograms
        from .training.datasets import prepared_volumes

        targets = labelled_volumes(args.manifest, [args.histogram_target_vendor], args.histogram_target_split)
        histograms = TargetHistograms.from_volumes(prepared_volumes(targets))
        print(f"histogram-matching augmentation toward {len(targets)} {args.histogram_target_vendor} volumes")
    elif config.target_histograms > 0:
        raise InputError("--target-histograms needs --histogram-target-vendor (and --histogram-target-split)")
    pseudo = labelled_volumes(args.pseudo_manifest, progress=False) if args.pseudo_manifest else None
    time_limit = None if args.time_limit_min is None else args.time_limit_min * 60
    result = train_unet(volumes, config, Path(args.output), resume=not args.restart, time_limit_s=time_limit,
                        target_histograms=histograms, pseudo_volumes=pseudo)
    if join().is_main:  # under torchrun: one report, from the rank that wrote the files
        print(json.dumps({"best_val_dice": result["best_val_dice"], "validation_subjects": result["validation_subjects"]}))
    return 0


def _add_train_unet(sub):
    p = sub.add_parser("train-unet", help="train the LV-Unet on labelled source-vendor volumes")
    p.add_argument("--manifest", required=True)
    p.add_argument("--vendor", action="append", help="vendor(s) to train on (repeatable)")
    p.add_argument("--split", action="append", help="manifest split(s) to use (repeatable)")
    p.add_argument("--label-convention", default="mnms", choices=["mnms", "acdc"])
    p.add_argument("-o", "--output", required=True, help="folder for checkpoints (best.safetensors, last.safetensors)")
    p.add_argument("--config", choices=["fast", "paper"], default="fast")
    p.add_argument("--method", choices=["clean", "noisy", "augment", "robust"])
    p.add_argument("--gin", type=float, help="probability of random-convolution (GIN) appearance augmentation per sample")
    p.add_argument("--target-histograms", dest="target_histograms", type=float,
                   help="probability of matching a sample to a random target-vendor volume's histogram")
    p.add_argument("--rematch", type=float,
                   help="probability of mapping an augmented sample back onto its own original histogram, as inference "
                        "maps other vendors onto the source histogram (default 0)")
    p.add_argument("--histogram-target-vendor", help="unlabelled target vendor whose histograms --target-histograms uses")
    p.add_argument("--histogram-target-split", action="append", help="manifest split(s) of those target volumes")
    p.add_argument("--widths", type=lambda v: tuple(int(x) for x in v.split(",")), help="channels per level, e.g. 16,32,64,128")
    p.add_argument("--checkpoint-minutes", dest="checkpoint_minutes", type=float, help="minutes between checkpoints (default 3)")
    p.add_argument("--time-limit-min", type=float, help="stop after this many minutes at a checkpoint; rerun to resume")
    p.add_argument("--pseudo-manifest", help="self-training: manifest of pseudo-labelled target volumes (unetgan pseudo-label)")
    p.add_argument("--pseudo-fraction", dest="pseudo_fraction", type=float, help="share of each batch from them (default 0.5)")
    p.add_argument("--init-from", dest="init_from", help="start from these LV-Unet weights (.safetensors) instead of random")
    p.add_argument("--schedule", choices=["onecycle", "constant"], help="learning-rate schedule (default onecycle)")
    p.add_argument("--context-slices", dest="context_slices", type=int,
                   help="through-plane context: neighbour slices on either side the network also sees (default 0; "
                        "--init-from a one-slice network widens it, starting from what it computed)")
    p.add_argument("--distill-from", dest="distill_from",
                   help="TTA distillation: also learn this LV-Unet's (.safetensors) class probabilities averaged over "
                        "the four flips, so one pass gives what four gave")
    p.add_argument("--distill-weight", dest="distill_weight", type=float,
                   help="weight of the distillation term against the labels' Dice + cross-entropy (default 1)")
    p.add_argument("--average-every", dest="average_every", type=int,
                   help="weight averaging (SWA): every N steps the weights join a running average, written each epoch "
                        "as average.safetensors (use with --schedule constant)")
    _add_emphasis_options(p)
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps-per-epoch", dest="steps_per_epoch", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--val-subjects", dest="val_subjects", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--shards", type=int, help="seeded sub-batches per step (one process with --batch N*B --shards N "
                   "sees what N torchrun processes with --batch B see)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="auto: this process's GPU where there is one")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints in the output folder")
    p.set_defaults(func=_train_unet)


def _add_emphasis_options(p):
    """train-unet: hearts unlike the average, other acquisition protocols, a portable copy of the checkpoints."""
    p.add_argument("--phantom-fraction", dest="phantom_fraction", type=float,
                   help="share of each batch from labelled phantom dilated, hypertrophic and infarcted hearts "
                        "(Philips look, varied protocols; default 0)")
    p.add_argument("--phantom-subjects", dest="phantom_subjects", type=int, help="how many phantom hearts (default 36)")
    p.add_argument("--sick-emphasis", dest="sick_emphasis", type=float,
                   help="draw the training volumes with the thickest walls, largest ED or smallest ES cavities "
                        "(a fifth each) and slices with a tiny cavity 1 + this many times as often (default 0)")
    p.add_argument("--partial-volume", dest="partial_volume", type=float,
                   help="probability of blending a sample with its neighbour slice (thicker slices; default 0)")
    p.add_argument("--zoom", type=float, help="probability of showing the heart at another size (default 0)")
    p.add_argument("--zoom-range", dest="zoom_range", type=lambda v: tuple(float(x) for x in v.split(",")),
                   help="smallest,largest zoom factor (default 0.75,1.6)")
    p.add_argument("--low-resolution", dest="low_resolution", type=float,
                   help="probability of an acquired pixel of 0.7-2.0 mm (detail lost; default 0)")
    p.add_argument("--off-centre", dest="off_centre", type=float,
                   help="probability of a crop with the heart far from its centre (default 0)")
    p.add_argument("--translated-source", dest="translated_source", type=float,
                   help="image-level adaptation: probability of showing a source sample in the target vendor's look, "
                        "through --source-translator (default 0)")
    p.add_argument("--source-translator", dest="source_translator",
                   help="a source -> target generator (.safetensors; research/recipes/target_generator.py extracts one "
                        "from an adapter's training checkpoint)")
    p.add_argument("--export-dir", dest="export_dir",
                   help="also copy the checkpoint there as safetensors (no pickle) every --export-minutes; a run "
                        "folder without a checkpoint resumes from that copy")
    p.add_argument("--export-minutes", dest="export_minutes", type=float, help="minutes between copies (default 15)")


RUNTIME_ARGS = ("--runtime",)
RUNTIME_OPTIONS = {"default": "auto", "choices": ["auto", "torch", "onnx", "onnx-int8"],  # runtime.RUNTIMES (no torch import here)
                   "help": "where the networks run: onnx (ONNX Runtime, faster on CPUs), onnx-int8 (ONNX Runtime in "
                           "8 bits, calibrated on the phantom: faster again, mean Dice within 0.002 on the dev data), torch "
                           "(the reference), or auto (onnx-int8 on x86 CPUs with AVX2 or newer, 7-bit weights where VNNI is "
                           "missing; else onnx; torch on a GPU or without onnxruntime)"}


TTA_ARGS = ("--tta",)
TTA_OPTIONS = {"default": DEFAULT_TTA, "choices": list(TTA_FLIPS),
               "help": "test-time augmentation of the LV-Unet: none (one pass; the default segmenter was trained "
                       "to give in one pass what four flips give), flip4 (its logits averaged over the four in-plane "
                       "flips: 4x its time), rot180 (the image and its half-turn: 2x), flip (the left-right mirror: "
                       "2x) (default: %(default)s)"}


def _segment(args) -> int:
    from .pipeline import segment_file

    measurements = segment_file(args.input, args.output, model=args.model, device=args.device,
                                overwrite=args.overwrite, progress=progress_printer(args.progress, "segment"),
                                whole_field=args.whole_field, series_uid=args.series, runtime=args.runtime, tta=args.tta)
    _print_measurements(measurements)
    return 0


def _adapt_segment(args) -> int:
    from .dicom_outputs import is_dicom_input
    from .pipeline import adapt_segment_file

    adapter = args.adapter or ("auto" if is_dicom_input(args.input) else "none")  # auto: the default for DICOM
    measurements = adapt_segment_file(args.input, args.output, adapter=adapter, model=args.model, device=args.device,
                                      overwrite=args.overwrite, progress=progress_printer(args.progress, "adapt-segment"),
                                      whole_field=args.whole_field, series_uid=args.series, runtime=args.runtime,
                                      tta=args.tta)
    _print_measurements(measurements)
    return 0


def _print_measurements(measurements: dict) -> None:
    frames = measurements["frames"]
    said = measurements.get("input") or {}
    if said.get("series"):
        print(f"series: {said['series']}")
    if said.get("adapter_choice"):
        print(f"adapter: {said['adapter_choice']}")
    if measurements.get("ef_percent") is not None:
        print(f"EDV {measurements['edv_ml']:.1f} mL (frame {measurements['ed_frame_number']}), "
              f"ESV {measurements['esv_ml']:.1f} mL (frame {measurements['es_frame_number']}), "
              f"SV {measurements['sv_ml']:.1f} mL, EF {measurements['ef_percent']:.1f} %, "
              f"myocardial mass (ED) {measurements['myocardial_mass_ed_g']:.1f} g")
    else:
        f = frames[0]
        print(f"blood pool {f['blood_pool_ml']:.1f} mL, myocardium {f['myocardium_ml']:.1f} mL, mass {f['myocardial_mass_g']:.1f} g")
    for warning in measurements.get("warnings", []):
        print(f"WARNING: {warning}", file=sys.stderr)


def _evaluate(args) -> int:
    from .evaluate_run import evaluate_manifest

    evaluate_manifest(args.manifest, args.vendor, args.split, args.method, model=args.model, adapter=args.adapter,
                      json_path=args.json, convention=args.label_convention, device=args.device, subjects=args.subject,
                      runtime=args.runtime, tta=args.tta)
    return 0


def add_inference_commands(sub):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("input", help="3D volume or 4D cine (.nii.gz, .nrrd, .mha) or a DICOM folder")
    common.add_argument("--model", help="LV-Unet: registry name or .safetensors file (default: the one the adapter "
                        "was trained with, else the shipped clean model)")
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"])
    common.add_argument("--overwrite", action="store_true", help="replace existing output files")
    common.add_argument("--progress", action="store_true", help="print 'PROGRESS done total stage' lines")
    common.add_argument("--series", metavar="UID", action="append",
                        help="DICOM study: the SeriesInstanceUID of the short-axis cine (default: found from orientation, "
                        "phases, slices and description); several (repeated, or separated by commas): one series per "
                        "slice position, joined into one cine")
    common.add_argument("--whole-field", action="store_true",
                        help="run the networks on the whole field in every frame (about 4x slower on cines; by default "
                             "frames after the first are processed in a box around the LV found in the first)")
    common.add_argument(*RUNTIME_ARGS, **RUNTIME_OPTIONS)
    common.add_argument(*TTA_ARGS, **TTA_OPTIONS)
    p = sub.add_parser("segment", parents=[common], help="segment LV blood pool and myocardium, measure volumes and EF")
    p.add_argument("-o", "--output", required=True, help="output labelmap (.nrrd, .nii.gz); measurements go beside it")
    p.set_defaults(func=_segment)
    p = sub.add_parser("adapt-segment", parents=[common], help="translate to the source vendor's look, then segment")
    p.add_argument("-o", "--output", required=True, help="output folder: translated.nrrd, labelmap.nrrd, measurements.json/.csv"
                   "; for DICOM input also segmentation.seg.dcm, measurements.sr.dcm, report.pdf")
    p.add_argument("--adapter", help="auto (from the DICOM Manufacturer, else the label-free check), target vendor "
                   "(Siemens, GE), registry name, .safetensors file, or none (default: auto for DICOM input, else none)")
    p.set_defaults(func=_adapt_segment)
    p = sub.add_parser("evaluate", help="Dice and EF agreement per vendor on a labelled manifest")
    p.add_argument("--manifest", required=True)
    p.add_argument("--vendor", action="append")
    p.add_argument("--split", action="append")
    p.add_argument("--subject", action="append", help="only these subjects (repeatable)")
    p.add_argument("--method", default="default", choices=["default", "clean", "noisy", "augment", "robust", "histmatch", "unetgan"],
                   help="default: what `unetgan segment` does; unetgan: what `adapt-segment --adapter A` does")
    p.add_argument("--model")
    p.add_argument("--adapter")
    p.add_argument("--label-convention", default="mnms", choices=["mnms", "acdc"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"])
    p.add_argument("--json", help="write the summary and per-volume Dice here")
    p.add_argument(*RUNTIME_ARGS, **RUNTIME_OPTIONS)
    p.add_argument(*TTA_ARGS, **TTA_OPTIONS)
    p.set_defaults(func=_evaluate)


def _batch(args) -> int:
    from .batch import StudyOptions, run_batch

    options = StudyOptions(adapter=args.adapter, model=args.model, device=args.device, whole_field=args.whole_field,
                           runtime=args.runtime, tta=args.tta)
    result = run_batch(args.inputs, args.output, options, workers=args.workers, scheduler=args.scheduler,
                       overwrite=args.overwrite)
    for row in result.failed:
        print(f"FAILED {row['study']}: {row['reason']}", file=sys.stderr)
    print(f"{len(result.rows)} studies: {len(result.rows) - len(result.failed)} ok ({result.skipped} done before), "
          f"{len(result.failed)} failed; summary: {result.summary}")
    return EXIT_SOME_FAILED if result.failed else 0


def _add_batch(sub):
    p = sub.add_parser("batch", help="adapt-segment every study of a folder or CSV list, on local workers or a Dask cluster")
    p.add_argument("inputs", help="folder (each image file or DICOM folder below it is a study) or CSV with an 'input' column")
    p.add_argument("-o", "--output", required=True, help="output folder: <study>/ with adapt-segment's outputs, summary.csv")
    p.add_argument("--adapter", help="as for adapt-segment: auto, vendor, registry name, file or none, for every study "
                   "(default: auto for DICOM studies, none for image files)")
    p.add_argument("--model", help="LV-Unet: registry name or .safetensors file (default: the adapter's own)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes; each gets cores/N torch threads")
    p.add_argument("--scheduler", help="address of a running dask.distributed scheduler (tcp://host:8786) to send the work to")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"])
    p.add_argument("--whole-field", action="store_true", help="as for adapt-segment")
    p.add_argument(*RUNTIME_ARGS, **RUNTIME_OPTIONS)
    p.add_argument(*TTA_ARGS, **TTA_OPTIONS)
    p.add_argument("--overwrite", action="store_true", help="redo studies whose outputs are complete too")
    p.set_defaults(func=_batch)


def _add_phantom(sub):
    from .phantom import cli as phantom_cli

    phantom_cli.add_parser(sub)


COMMANDS_GROUP = "unetgan.commands"  # entry points: other packages' commands (the web page's `web`)
# commands another package provides, and how to get them when it is not installed
OPTIONAL_COMMANDS = {"web": "the web page is not installed: pip install 'unetgan-slicer[web]'"}


def _add_unavailable(sub, name: str, reason: str) -> None:
    """A command that says, as its one ERROR line, why it cannot run here."""
    def unavailable(args) -> int:
        print(f"ERROR: unetgan {name}: {reason}", file=sys.stderr)
        return 1

    p = sub.add_parser(name, help=f"(not available: {reason})", add_help=False)
    p.set_defaults(func=unavailable, takes_any_arguments=True)


def _add_commands_of_other_packages(sub):
    """Commands registered under the `unetgan.commands` entry point group: each is a function that adds its
    subparser (the web page registers `web` this way, so the backend never imports a front end)."""
    from importlib.metadata import entry_points

    added = set()
    for entry in entry_points(group=COMMANDS_GROUP):
        if entry.name in added:
            continue
        try:
            add_parser = entry.load()
        except ImportError as err:  # the package is there but cannot be imported
            _add_unavailable(sub, entry.name, f"{entry.value} cannot be imported ({err})")
        else:
            add_parser(sub)
        added.add(entry.name)
    for name, reason in OPTIONAL_COMMANDS.items():
        if name not in added:
            _add_unavailable(sub, name, reason)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetgan", description="Unet-GAN vendor adaptation for cardiac cine MRI")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_unet(sub)
    add_inference_commands(sub)
    add_model_commands(sub)
    _add_batch(sub)
    _add_phantom(sub)
    _add_commands_of_other_packages(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.func(args)
    except (InputError, Cancelled, KeyboardInterrupt, OSError) as err:
        code, message = user_error(err)
        print(f"ERROR: {message}", file=sys.stderr)
        return code
