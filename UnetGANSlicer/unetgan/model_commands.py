"""The command line's commands that make, pair and register models: `train-adapter`, `distill-adapter`,
`pair-adapter`, `register` and `pseudo-label` (`cli.py` adds them to its parser)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .progress import progress_printer


def add_model_commands(sub) -> None:
    _add_train_adapter(sub)
    _add_distill_adapter(sub)
    _add_pair_adapter(sub)
    _add_register(sub)
    _add_pseudo_label(sub)


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
    result = train_adapter(source, target, load_lvunet(args.lvunet), config, args.output,
                           progress=progress_printer(args.progress, "train-adapter"),
                           resume=True if args.resume else None, sample_dir=args.samples,
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
    p.add_argument("--target-exclude", action="append", metavar="SUBJECT",
                   help="leave this manifest subject out of the target images (for held-out checks); repeatable")


def _add_train_adapter(sub):
    p = sub.add_parser("train-adapter", help="train a Unet-GAN adapter from unlabelled images of two vendors")
    _add_image_sides(p)
    p.add_argument("--lvunet", help="the frozen source LV-Unet (registry name or file; default: the registry's default segmenter)")
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
    sides = [(args.source_vendor, _image_paths(args, args.source_vendor, args.source_split, args.source_dir)),
             (args.target_vendor, _image_paths(args, args.target_vendor, args.target_split, args.target_dir,
                                               args.target_exclude or ()))]
    # what the teacher sees at inference, in the [-1, 1] it works in
    per_side = [torch.cat([adapter_slices(frame, spacing, teacher) for frame, spacing in unlabelled_frames(paths)])
                for _, paths in sides]
    print(" and ".join(f"{len(s)} {vendor} slices" for (vendor, _), s in zip(sides, per_side)) + " to distil on", flush=True)
    slices = torch.cat(per_side) * 2 - 1
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
