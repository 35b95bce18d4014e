"""`unetgan` command line: one subcommand per job; user errors become one `ERROR:` line and exit code 2."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .errors import Cancelled, InputError, user_error
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


def _progress_printer(enabled: bool, stage: str):
    """`PROGRESS done total stage` lines on stdout, the contract the MRML layer parses."""
    if not enabled:
        return None

    def report(done: int, total: int) -> None:
        print(f"PROGRESS {done} {total} {stage}", flush=True)

    return report


RUNTIME_ARGS = ("--runtime",)
RUNTIME_OPTIONS = {"default": "auto", "choices": ["auto", "torch", "onnx", "onnx-int8"],  # runtime.RUNTIMES (no torch import here)
                   "help": "where the networks run: onnx (ONNX Runtime, faster on CPUs), onnx-int8 (ONNX Runtime in "
                           "8 bits, calibrated on the phantom: faster again, mean Dice within 0.002 on the dev data), torch "
                           "(the reference), or auto (onnx-int8 on a CPU with VNNI instructions, else onnx; torch on a "
                           "GPU or without onnxruntime)"}


TTA_ARGS = ("--tta",)
TTA_OPTIONS = {"default": DEFAULT_TTA, "choices": list(TTA_FLIPS),
               "help": "test-time augmentation of the LV-Unet: none (one pass; the default segmenter was trained "
                       "to give in one pass what four flips give), flip4 (its logits averaged over the four in-plane "
                       "flips: 4x its time), rot180 (the image and its half-turn: 2x), flip (the left-right mirror: "
                       "2x) (default: %(default)s)"}


def _segment(args) -> int:
    from .pipeline import segment_file

    measurements = segment_file(args.input, args.output, model=args.model, device=args.device,
                                overwrite=args.overwrite, progress=_progress_printer(args.progress, "segment"),
                                whole_field=args.whole_field, series_uid=args.series, runtime=args.runtime, tta=args.tta)
    _print_measurements(measurements)
    return 0


def _adapt_segment(args) -> int:
    from .dicom_outputs import is_dicom_input
    from .pipeline import adapt_segment_file

    adapter = args.adapter or ("auto" if is_dicom_input(args.input) else "none")  # auto: the default for DICOM
    measurements = adapt_segment_file(args.input, args.output, adapter=adapter, model=args.model, device=args.device,
                                      overwrite=args.overwrite, progress=_progress_printer(args.progress, "adapt-segment"),
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
        print(f"EDV {measurements['edv_ml']:.1f} mL (frame {measurements['ed_frame']}), "
              f"ESV {measurements['esv_ml']:.1f} mL (frame {measurements['es_frame']}), "
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


def _add_inference_commands(sub):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("input", help="3D volume or 4D cine (.nii.gz, .nrrd, .mha) or a DICOM folder")
    common.add_argument("--model", help="LV-Unet: registry name or .safetensors file (default: the one the adapter "
                        "was trained with, else the shipped clean model)")
    common.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"])
    common.add_argument("--overwrite", action="store_true", help="replace existing output files")
    common.add_argument("--progress", action="store_true", help="print 'PROGRESS done total stage' lines")
    common.add_argument("--series", metavar="UID", help="DICOM study: the SeriesInstanceUID of the short-axis cine "
                        "(default: found from orientation, phases, slices and description)")
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


def _image_paths(args, vendor, split, folder, exclude=()) -> list[Path]:
    """The images of one side of adapter training: a folder's, or a manifest's rows of a vendor and split."""
    from .training.datasets import unlabelled_volume_files

    if folder:
        return unlabelled_volume_files(Path(folder))
    if not args.manifest:
        raise InputError("give --manifest (with vendor and split) or a folder of images for each side")
    from .io.manifest import read_manifest

    items = [item for item in read_manifest(args.manifest, [vendor], split) if item.subject not in exclude]
    if not items:
        raise InputError(f"no {vendor} images left in {args.manifest} for split(s) {split}")
    return [item.image for item in items]


def _train_adapter(args) -> int:
    from .registry import load_lvunet
    from .training.datasets import adapter_training_slices
    from .distributed import join
    from .training.train_adapter import AdapterConfig, train_adapter

    preset = AdapterConfig.paper if args.config == "paper" else AdapterConfig.fast
    overrides = {k: v for k, v in {"iterations": args.iterations, "seed": args.seed, "device": args.device,
                                  "time_limit_s": None if args.time_limit_min is None else args.time_limit_min * 60,
                                  "cycle_loss": args.cycle_loss, "use_feature_loss": False if args.no_feature_loss else None,
                                  "filters": args.filters, "n_blocks": args.blocks, "lambda_unet": args.lambda_unet}.items() if v is not None}
    config = preset(**overrides)
    source_paths = _image_paths(args, args.source_vendor, args.source_split, args.source_dir)
    target_paths = _image_paths(args, args.target_vendor, args.target_split, args.target_dir, args.target_exclude or ())
    source, target, extra = adapter_training_slices(source_paths, target_paths, args.histogram_match)
    # the segmenter whose features guided training is the one to segment the translated images with
    extra["segmenter"] = args.lvunet or None
    if args.target_exclude:
        extra["target_excluded_subjects"] = sorted(args.target_exclude)
    main_rank = join(config.device).is_main  # under torchrun, rank 0 reports
    if main_rank:
        print(f"{source.shape[0]} source ({args.source_vendor}) and {target.shape[0]} target ({args.target_vendor}) slices",
              flush=True)
    progress = None
    if args.progress:
        def progress(iteration, total, losses):
            print(f"PROGRESS {iteration} {total} train-adapter", flush=True)
    result = train_adapter(source, target, load_lvunet(args.lvunet), config, args.output,
                           progress=progress, resume=True if args.resume else None, sample_dir=args.samples,
                           source_vendor=args.source_vendor, target_vendor=args.target_vendor, extra_metadata=extra)
    if main_rank:
        print(json.dumps({"adapter": str(result.adapter_path), "iterations": result.iterations,
                          "best_iteration": result.best_iteration, "best_score": result.best_score,
                          "identity_score": result.identity_score, "seconds": round(result.seconds)}))
    return 0


def _add_image_sides(p) -> None:
    """The two vendors' images an adapter learns from (read by _image_paths)."""
    p.add_argument("--manifest", help="manifest for --source-vendor/--target-vendor selections")
    p.add_argument("--source-vendor", default="Philips")
    p.add_argument("--source-split", action="append")
    p.add_argument("--source-dir", help="folder of source-vendor images instead of the manifest")
    p.add_argument("--target-vendor", required=True)
    p.add_argument("--target-split", action="append")
    p.add_argument("--target-dir", help="folder of target-vendor images (NIfTI/NRRD/DICOM) instead of the manifest")


def _add_train_adapter(sub):
    p = sub.add_parser("train-adapter", help="train a Unet-GAN adapter from unlabelled images of two vendors")
    _add_image_sides(p)
    p.add_argument("--target-exclude", action="append", metavar="SUBJECT",
                   help="leave this manifest subject out of the target images (for held-out checks); repeatable")
    p.add_argument("--lvunet", help="the frozen source LV-Unet (registry name or file; default: shipped clean model)")
    p.add_argument("-o", "--output", required=True, help="adapter file (.safetensors); training state goes beside it")
    p.add_argument("--config", choices=["fast", "paper"], default="fast")
    p.add_argument("--iterations", type=int)
    p.add_argument("--time-limit-min", type=float, help="stop after this many minutes (then evaluate and save)")
    p.add_argument("--cycle-loss", choices=["ssim", "l1"], help="ablation: plain L1 cycle loss instead of SSIM")
    p.add_argument("--no-feature-loss", action="store_true", help="ablation: without the Unet feature loss")
    p.add_argument("--histogram-match", action="store_true",
                   help="match target images to the source histogram before the generator (also at inference)")
    p.add_argument("--lambda-unet", type=float, help="weight of the Unet feature loss (paper: 15)")
    p.add_argument("--filters", type=int)
    p.add_argument("--blocks", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--samples", help="folder for sample images at each evaluation")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--progress", action="store_true", help="print 'PROGRESS done total stage' lines")
    p.set_defaults(func=_train_adapter)


def _distill_adapter(args) -> int:
    import torch

    from .inference import adapter_slices
    from .registry import find_model, load_adapter
    from .training.datasets import unlabelled_frames
    from .training.distill_adapter import DistillConfig, distill_adapter

    entry = find_model(args.teacher, "adapter")
    teacher = load_adapter(args.teacher)
    paths = (_image_paths(args, args.source_vendor, args.source_split, args.source_dir)
             + _image_paths(args, args.target_vendor, args.target_split, args.target_dir))
    # what the teacher sees at inference, in the [-1, 1] it works in
    slices = torch.cat([adapter_slices(frame, spacing, teacher) for frame, spacing in unlabelled_frames(paths)]) * 2 - 1
    config = DistillConfig(**{k: v for k, v in {"filters": args.filters, "n_blocks": args.blocks, "steps": args.steps,
                                                "batch": args.batch, "seed": args.seed,
                                                "edge_kernel": args.edge_kernel}.items() if v is not None})
    result = distill_adapter(teacher, slices, config, Path(args.output), entry.name, entry.sha256,
                             log=lambda message: print(message, flush=True))
    print(json.dumps(result))
    return 0


def _add_distill_adapter(sub):
    p = sub.add_parser("distill-adapter", help="train a smaller adapter that reproduces a trained one's translations")
    p.add_argument("--teacher", required=True, help="the trained adapter (registry name or .safetensors file)")
    _add_image_sides(p)
    p.add_argument("-o", "--output", required=True, help="student adapter file (.safetensors); its checkpoint goes beside it")
    p.add_argument("--filters", type=int, help="student filters (default 8)")
    p.add_argument("--blocks", type=int, help="student residual blocks (default 4)")
    p.add_argument("--edge-kernel", type=int, help="kernel of the student's first and last convolutions (default 3)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--seed", type=int)
    p.set_defaults(func=_distill_adapter)


def _pair_adapter(args) -> int:
    from .registry import pair_adapter

    sha = pair_adapter(args.adapter, args.segmenter, Path(args.output))
    print(f"{args.output}: {args.adapter}'s weights, segmented by {args.segmenter}; sha256 {sha}")
    return 0


def _add_pair_adapter(sub):
    p = sub.add_parser("pair-adapter", help="copy an adapter with another LV-Unet to segment its translations")
    p.add_argument("adapter", help="registry name, target vendor or .safetensors file")
    p.add_argument("--segmenter", required=True, help="the LV-Unet (registry name or file) for its translations")
    p.add_argument("-o", "--output", required=True, help="the new adapter file (.safetensors)")
    p.set_defaults(func=_pair_adapter)


def _pseudo_label(args) -> int:
    from .histogram import load_reference
    from .methods import SOURCE_HISTOGRAM
    from .registry import load_adapter, load_lvunet
    from .training.pseudo_labels import pseudo_label

    generator = load_adapter(args.adapter) if args.adapter else None
    reference = load_reference(SOURCE_HISTOGRAM) if args.histogram_match else None
    summary = pseudo_label(args.manifest, args.vendor, args.split, load_lvunet(args.model), generator, Path(args.output),
                           histogram_reference=reference)
    print(f"kept {summary['kept']} of {summary['total']} volumes; manifest: {Path(args.output) / 'manifest.csv'}")
    return 0


def _add_pseudo_label(sub):
    p = sub.add_parser("pseudo-label", help="self-training: label unlabelled target volumes, keep the plausible ones")
    p.add_argument("--manifest", required=True)
    p.add_argument("--vendor", required=True)
    p.add_argument("--split", action="append", required=True)
    p.add_argument("--model", required=True, help="LV-Unet: registry name or .safetensors file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--adapter", help="translate with this adapter first")
    group.add_argument("--histogram-match", action="store_true", help="histogram-match to the source vendor first")
    p.add_argument("-o", "--output", required=True, help="folder for labels/, manifest.csv and pseudo_labels.json")
    p.set_defaults(func=_pseudo_label)


def _register(args) -> int:
    from .registry import register_model

    entry = register_model(Path(args.file), args.name, args.kind, args.made_by, args.source_vendor, args.target_vendor,
                           args.description, registry=args.registry, copy=not args.in_place, first=args.first)
    print(f"registered {entry.name} ({entry.kind}) {entry.file} sha256 {entry.sha256}")
    return 0


def _add_register(sub):
    p = sub.add_parser("register", help="add a model file to the registry (copied beside models.json, with its SHA256)")
    p.add_argument("file")
    p.add_argument("--name", required=True)
    p.add_argument("--kind", required=True, choices=["segmenter", "adapter"])
    p.add_argument("--made-by", required=True, help="the exact command that produced the file")
    p.add_argument("--source-vendor")
    p.add_argument("--target-vendor")
    p.add_argument("--description", default="")
    p.add_argument("--registry", help="models.json to update (default: $UNETGAN_REGISTRY or the bundled one)")
    p.add_argument("--in-place", action="store_true", help="reference the file where it is instead of copying it")
    p.add_argument("--first", action="store_true",
                   help="list it before the others of its kind: the default segmenter, or the adapter "
                        "--adapter VENDOR picks")
    p.set_defaults(func=_register)


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
    try:
        from .phantom import cli as phantom_cli
    except ImportError:  # the phantom package is optional for the other commands
        return
    phantom_cli.add_parser(sub)


def _add_web(sub):
    try:
        from UnetGANSlicerWeb import cli as web_cli
    except ImportError:  # the web page needs trame-slicer; the backend does not
        return
    web_cli.add_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetgan", description="Unet-GAN vendor adaptation for cardiac cine MRI")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_unet(sub)
    _add_inference_commands(sub)
    _add_train_adapter(sub)
    _add_distill_adapter(sub)
    _add_pair_adapter(sub)
    _add_register(sub)
    _add_pseudo_label(sub)
    _add_batch(sub)
    _add_phantom(sub)
    _add_web(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (InputError, Cancelled, KeyboardInterrupt, OSError) as err:
        code, message = user_error(err)
        print(f"ERROR: {message}", file=sys.stderr)
        return code
