"""`make demo`: the whole method on the built-in multi-vendor phantom, in a few minutes on 2 CPU cores.

1. Simulate phantom studies of a source vendor (Philips) and a target vendor (Siemens).
2. Train a small LV-Unet on the labelled phantom Philips volumes.
3. Train a small Unet-GAN adapter on unlabelled phantom Siemens + Philips images (targets
   histogram-matched to the source first, as the shipped adapters are).
4. Print the three-scenario table (clean Unet, histogram matching, Unet-GAN) on held-out
   phantom Siemens volumes and write the side-by-side figure.
5. Adapt & segment a whole phantom Siemens cine file as a user would (`unetgan adapt-segment`),
   print its measurements (EDV, ESV, EF, mass) and write an overlay PNG.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from unetgan.evaluation import format_table
from unetgan.evaluate_run import evaluate_manifest
from unetgan.figures import before_after_row, comparison_rows, mid_lv_slice
from unetgan.histogram import reference_from, save_reference
from unetgan.io.images import read_image
from unetgan.io.manifest import load_item, read_manifest
from unetgan.measurements import frame_index
from unetgan.methods import make_segmenter
from unetgan.phantom import write_dataset
from unetgan.pipeline import adapt_segment_file
from unetgan.registry import load_lvunet
from unetgan.training.datasets import adapter_training_slices, labelled_volumes
from unetgan.training.train_adapter import AdapterConfig, train_adapter
from unetgan.training.train_unet import UnetTrainConfig, train_unet


def step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    torch.manual_seed(args.seed)
    started = time.time()

    t = step("1/5 simulating phantom Philips (source) and Siemens (target) studies")
    manifest = write_dataset(out / "phantom", vendors=("Philips", "Siemens"), subjects=6, seed=args.seed,
                             n_phases=8, n_slices=8, dev_subjects=2)
    print(f"   {manifest} ({time.time() - t:.0f} s)")

    t = step("2/5 training a small LV-Unet on phantom Philips (labelled)")
    volumes = labelled_volumes(manifest, ["Philips"], ["train_labelled"], progress=False)
    unet_config = UnetTrainConfig(widths=(8, 16, 32, 64), crop=96, batch=8, epochs=6, steps_per_epoch=30,
                                  lr=3e-3, val_subjects=1, seed=args.seed)
    result = train_unet(volumes, unet_config, out / "lvunet", progress=False, log=lambda m: print("   " + m))
    lvunet_file = out / "lvunet" / "best.safetensors"
    histogram_file = out / "lvunet" / "source_histogram.json"
    save_reference(reference_from([v.image.array for v in volumes]), histogram_file, "Philips")
    print(f"   best validation Dice {result['best_val_dice']:.3f} ({time.time() - t:.0f} s)")

    t = step("3/5 training a small Unet-GAN adapter Siemens -> Philips (no Siemens labels)")
    source, target, extra = adapter_training_slices(
        [i.image for i in read_manifest(manifest, ["Philips"], ["train_labelled"])],
        [i.image for i in read_manifest(manifest, ["Siemens"], ["train_unlabelled"])], histogram_match=True, progress=False)
    adapter_config = AdapterConfig.fast(iterations=200, eval_every=100, time_limit_s=None, seed=args.seed)
    adapter = train_adapter(source, target, load_lvunet(lvunet_file), adapter_config,
                            out / "adapter" / "siemens_to_philips.safetensors", progress=lambda *a: None,
                            source_vendor="Philips", target_vendor="Siemens", extra_metadata=extra)
    print(f"   {adapter.iterations} iterations, best at {adapter.best_iteration} ({time.time() - t:.0f} s)")

    t = step("4/5 three scenarios on held-out phantom Siemens volumes (their labels are used only here)")
    tables = {}
    for method in ("clean", "histmatch", "unetgan"):
        report = evaluate_manifest(manifest, ["Siemens"], ["dev_labelled"], method, model=str(lvunet_file),
                                   adapter=str(adapter.adapter_path), histogram=histogram_file, progress=False, quiet=True)
        tables[method] = report["summary"]["Siemens"]
        print(format_table(report["summary"], f"   method: {method}"))
    (out / "scenarios.json").write_text(json.dumps(tables, indent=1))
    figure_rows = []
    clean = make_segmenter("clean", model=str(lvunet_file))
    adapted = make_segmenter("unetgan", model=str(lvunet_file), adapter=str(adapter.adapter_path))
    for item in read_manifest(manifest, ["Siemens"], ["dev_labelled"])[:2]:
        figure_rows.append(before_after_row(load_item(item)[0], clean, adapted))
    figure = comparison_rows(figure_rows, out / "side_by_side.png", "Phantom Siemens: clean Unet vs Unet-GAN")
    print(f"   figure: {figure} ({time.time() - t:.0f} s)")

    t = step("5/5 adapt & segment a whole phantom Siemens cine file, as `unetgan adapt-segment` does")
    cine = sorted((out / "phantom" / "siemens").glob("*_cine.nii.gz"))[-1]  # a dev subject: not used for training
    measurements = adapt_segment_file(cine, out / "adapt_segment", adapter=str(adapter.adapter_path),
                                      model=str(lvunet_file), overwrite=True)
    print(f"   input {cine}")
    print(f"   EDV {measurements['edv_ml']} mL, ESV {measurements['esv_ml']} mL, EF {measurements['ef_percent']} %, "
          f"myocardial mass {measurements['myocardial_mass_ed_g']} g")
    for warning in measurements["warnings"]:
        print(f"   warning: {warning}")
    image, labels = read_image(cine), read_image(out / "adapt_segment" / "labelmap.nrrd")
    translated = read_image(out / "adapt_segment" / "translated.nrrd")
    ed, es = frame_index(measurements, "ed"), frame_index(measurements, "es")
    rows = []
    for name, frame in (("ED", ed), ("ES", es)):
        z = mid_lv_slice(labels.array[frame])
        rows.append({"name": f"{name} (frame {frame + 1})", "original": image.array[frame, z], "translated": translated.array[frame, z],
                     "before": None, "after": labels.array[frame, z]})
    overlay_png = comparison_rows(rows, out / "overlay.png", "Adapt & Segment on a phantom Siemens cine")
    print(f"   outputs in {out / 'adapt_segment'}, overlay {overlay_png} ({time.time() - t:.0f} s)")
    print(f"\ndemo finished in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
