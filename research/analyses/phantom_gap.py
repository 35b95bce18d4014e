"""Question: how large is the phantom's vendor gap for the LV-Unet? Answer: docs/phantom.md (domain gap).

Measure the phantom's domain gap: train the LV-Unet on phantom Philips, test on phantom Siemens and GE.

    OMP_NUM_THREADS=1 PYTHONPATH=UnetGANSlicer nice -n 10 python research/analyses/phantom_gap.py -o runs/phantom_gap

Uses the project's own pipeline (unetgan.training.train_unet with its fast config,
unetgan.inference.segment, unetgan.evaluation.dice_per_structure), on volumes simulated
in memory (no files). Philips subjects train (a few held out for validation by
train_unet), other Philips subjects are the in-domain test; Siemens and GE subjects are
the cross-vendor test, as is and after histogram matching to the Philips training
intensities (the simple baseline of the real-data check). Writes gap.json and gap.md
(Dice per vendor: blood pool, myocardium, mean) into the output folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "UnetGANSlicer"))
from unetgan.evaluation import dice_per_structure  # noqa: E402
from unetgan.inference import segment  # noqa: E402
from unetgan.io.images import Geometry, ImageData  # noqa: E402
from unetgan.io.manifest import LabelledVolume, convert_labels  # noqa: E402
from unetgan.networks.lvunet import LVUnet  # noqa: E402
from unetgan.phantom import make_study  # noqa: E402
from unetgan.registry import load_state, read_weights  # noqa: E402
from unetgan.training.train_unet import UnetTrainConfig, train_unet  # noqa: E402

STRUCTURES = ("blood_pool", "myocardium", "mean")


def subject_seed(seed: int, vendor: str, index: int) -> int:
    """The same derivation as write_dataset: distinct subjects per vendor and index."""
    return int(np.random.SeedSequence([seed, zlib.crc32(vendor.lower().encode()), index]).generate_state(1)[0])


def phantom_volumes(vendor: str, indices, seed: int, n_phases: int) -> list[LabelledVolume]:
    """ED and ES volumes of simulated subjects, labels in the project's convention (RV dropped)."""
    volumes = []
    for index in indices:
        study = make_study(vendor, seed=subject_seed(seed, vendor, index), n_phases=n_phases)
        geometry = Geometry(study.spacing, study.origin, study.direction)
        for phase, frame in (("ED", study.ed_frame), ("ES", study.es_frame)):
            volumes.append(LabelledVolume(
                subject=f"{vendor.lower()}{index:03d}", vendor=vendor, phase=phase,
                image=ImageData(study.image[frame], geometry), labels=convert_labels(study.labels[frame], "mnms")))
    return volumes


def _normalised(volume: np.ndarray) -> np.ndarray:
    low, high = np.percentile(volume, [1, 99])
    return (volume - low) / max(high - low, 1e-6)


def histogram_match(volume: np.ndarray, reference_quantiles: np.ndarray) -> np.ndarray:
    """Map a volume's (percentile-normalised) intensity quantiles onto the reference ones."""
    levels = np.linspace(0, 1, reference_quantiles.size)
    normalised = _normalised(volume)
    return np.interp(normalised, np.quantile(normalised, levels), reference_quantiles).astype(np.float32)


def evaluate(model, volumes: list[LabelledVolume], transform=None) -> dict:
    per_volume = []
    for volume in volumes:
        array = volume.image.array if transform is None else transform(volume.image.array)
        result = segment(array, volume.image.geometry.spacing, model, "cpu")
        per_volume.append(dice_per_structure(result.labels, volume.labels))
    return {key: {"mean": float(np.nanmean([d[key] for d in per_volume])),
                  "sd": float(np.nanstd([d[key] for d in per_volume], ddof=1))} for key in STRUCTURES} | {"n": len(per_volume)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/phantom_gap"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-subjects", type=int, default=24, help="Philips subjects for training (incl. validation)")
    parser.add_argument("--val-subjects", type=int, default=4)
    parser.add_argument("--test-subjects", type=int, default=8, help="test subjects per vendor")
    parser.add_argument("--phases", type=int, default=10, help="phases simulated per study (ED/ES are used)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.output.mkdir(parents=True, exist_ok=True)
    log = lambda message: print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: E731

    started = time.time()
    train = phantom_volumes("Philips", range(args.train_subjects), args.seed, args.phases)
    test_range = range(args.train_subjects, args.train_subjects + args.test_subjects)
    tests = {vendor: phantom_volumes(vendor, test_range if vendor == "Philips" else range(args.test_subjects),
                                     args.seed, args.phases)
             for vendor in ("Philips", "Siemens", "GE")}
    log(f"simulated {len(train)} training and {sum(map(len, tests.values()))} test volumes in {time.time() - started:.0f} s")

    config = UnetTrainConfig.fast(epochs=args.epochs, steps_per_epoch=args.steps, val_subjects=args.val_subjects, seed=args.seed)
    trained = time.time()
    summary = train_unet(train, config, args.output / "unet", resume=False, progress=False, log=log)
    log(f"trained in {time.time() - trained:.0f} s, best validation Dice {summary['best_val_dice']:.3f}")
    tensors, _ = read_weights(args.output / "unet" / "best.safetensors")
    model = load_state(LVUnet(config.network_config()), tensors, "best.safetensors")

    reference = np.concatenate([_normalised(v.image.array).ravel() for v in train])
    reference_quantiles = np.quantile(reference, np.linspace(0, 1, 256))
    results = {}
    for vendor, volumes in tests.items():
        results[vendor] = evaluate(model, volumes)
        if vendor != "Philips":
            results[f"{vendor} (histogram matched)"] = evaluate(model, volumes, lambda a: histogram_match(a, reference_quantiles))
        log(f"{vendor}: mean Dice {results[vendor]['mean']['mean']:.3f}")

    report = {"command": " ".join(sys.argv), "train_config": vars(config) | {"widths": list(config.widths)},
              "train_subjects": args.train_subjects, "val_subjects": args.val_subjects, "test_subjects": args.test_subjects,
              "best_val_dice": summary["best_val_dice"], "seconds": time.time() - started, "results": results}
    (args.output / "gap.json").write_text(json.dumps(report, indent=1, default=str))
    lines = ["| test set | n volumes | blood pool | myocardium | mean |", "|---|---|---|---|---|"]
    for name, r in results.items():
        cells = " | ".join(f"{r[k]['mean']:.3f} ± {r[k]['sd']:.3f}" for k in STRUCTURES)
        lines.append(f"| {name} | {r['n']} | {cells} |")
    (args.output / "gap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
