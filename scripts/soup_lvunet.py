"""Interpolate the weights of two LV-Unets of one training lineage (a "model soup", Wortsman et al., ICML 2022)
and write the mix as a .safetensors file (issue #12, docs/models.md: tried, not shipped).

    python scripts/soup_lvunet.py --share-first 0.75 FIRST.safetensors SECOND.safetensors -o MIX.safetensors \
        [--remeasure-bn --manifest ../shared/data/manifest.csv]

Every floating-point tensor is share * FIRST + (1 - share) * SECOND, BatchNorm statistics included; with
--remeasure-bn the BatchNorm statistics are measured again on 100 training batches of the robust recipe (the
Philips training subjects outside the validation ones, Siemens target histograms), as the weight averaging of
`train-unet --average-every` does. The metadata is FIRST's, plus what was mixed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "UnetGANSlicer"))

from unetgan.networks.lvunet import load_lvunet_file  # noqa: E402
from unetgan.weights import load_state, read_weights, write_weights  # noqa: E402


def robust_recipe_batches(manifest: str, validation: list[str], count: int):
    """Training batches as `train-unet --method robust --gin 0.3 --target-histograms 0.3` (Siemens) draws them."""
    from unetgan.training.appearance import TargetHistograms
    from unetgan.training.datasets import labelled_volumes, prepared_volumes, slices_of
    from unetgan.training.train_unet import CropSampler, UnetTrainConfig

    config = UnetTrainConfig.fast(method="robust", gin=0.3, target_histograms=0.3, val_subjects=10, seed=0)
    volumes = labelled_volumes(manifest, ["Philips"], ["train_labelled"], progress=False)
    train = slices_of([v for v in volumes if v.subject not in set(validation)])
    targets = labelled_volumes(manifest, ["Siemens"], ["train_unlabelled"], progress=False)
    sampler = CropSampler(train, config, TargetHistograms.from_volumes(prepared_volumes(targets)))
    return (sampler.batch_tensors(10**9 + i)[0] for i in range(count))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--share-first", type=float, required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--remeasure-bn", action="store_true")
    parser.add_argument("--manifest", help="for --remeasure-bn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    first, metadata = read_weights(Path(args.first))
    second, _ = read_weights(Path(args.second))
    share = args.share_first
    mixed = {k: (share * v.double() + (1 - share) * second[k].double()).to(v.dtype) if v.is_floating_point() else v
             for k, v in first.items()}
    model = load_state(load_lvunet_file(args.first), mixed, "the mix")
    if args.remeasure_bn:
        from torch.optim.swa_utils import update_bn

        update_bn(robust_recipe_batches(args.manifest, metadata["validation_subjects"], 100), model.train())
    model.eval()
    note = f"{share} x {args.first} + {1 - share} x {args.second}" + (", BatchNorm re-measured" if args.remeasure_bn else "")
    write_weights(model, Path(args.output), {**metadata, "soup": note})
    print(f"wrote {args.output}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
