"""Average the weights of LV-Unets of one training lineage (a "model soup", Wortsman et al., ICML 2022) and
write the mix as a .safetensors file (docs/models.md).

    python scripts/recipes/soup_lvunet.py A.safetensors[:WEIGHT] B.safetensors[:WEIGHT] ... -o MIX.safetensors \
        [--remeasure-bn --manifest ../shared/data/manifest.csv]

Every floating-point tensor is the weighted mean of the ingredients' (weights default to 1 and are
normalised to sum to 1: `A:0.75 B:0.25` is three quarters A), BatchNorm statistics included; the first
ingredient's architecture holds, and a one-slice ingredient of a context network's mix (`--context-slices`) is
widened first, its neighbour kernels at zero; with
--remeasure-bn the BatchNorm statistics are measured again on 100 training batches of the robust recipe (the
Philips training subjects outside the validation ones, Siemens target histograms), as the weight averaging of
`train-unet --average-every` does. The metadata is the first ingredient's, plus what was mixed.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "UnetGANSlicer"))

from unetgan.networks.lvunet import load_lvunet_file, widen_to_context  # noqa: E402
from unetgan.training.weight_average import soup  # noqa: E402
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


def ingredient(text: str) -> tuple[str, float]:
    """`FILE` or `FILE:WEIGHT`."""
    path, colon, weight = text.rpartition(":")
    if not colon or not re.fullmatch(r"\d+(\.\d*)?", weight):
        return text, 1.0
    if float(weight) == 0:
        raise argparse.ArgumentTypeError(f"the weight of {path} must be positive")
    return path, float(weight)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ingredients", nargs="+", type=ingredient, metavar="FILE[:WEIGHT]")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--remeasure-bn", action="store_true")
    parser.add_argument("--manifest", help="for --remeasure-bn")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths, weights = zip(*args.ingredients)
    read = [read_weights(Path(path)) for path in paths]
    metadata = read[0][1]
    model = load_lvunet_file(paths[0])
    # a one-slice ingredient joins a context network's mix widened (its neighbour kernels at zero)
    states = [widen_to_context(state, model.config.in_channels) for state, _ in read]
    model = load_state(model, soup(states, list(weights)), "the mix")
    if args.remeasure_bn:
        from torch.optim.swa_utils import update_bn

        update_bn(robust_recipe_batches(args.manifest, metadata["validation_subjects"], 100), model.train())
    model.eval()
    note = " + ".join(f"{weight / sum(weights):.4g} x {path}" for path, weight in args.ingredients) + (
        ", BatchNorm re-measured" if args.remeasure_bn else "")
    # the first ingredient's architecture, split and recipe hold for the mix; its own step and score do not
    kept = {k: v for k, v in metadata.items() if k not in ("val_dice", "epoch", "step")}
    write_weights(model, Path(args.output), {**kept, "soup": note})
    print(f"wrote {args.output}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
