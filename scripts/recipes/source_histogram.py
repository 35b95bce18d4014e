"""Write Resources/Models/source_histogram.json: the mean quantile function of the source
vendor's normalised training volumes (the LV-Unet's training subjects only), used by
`--method histmatch`. Statistics, not images.

    python scripts/recipes/source_histogram.py --manifest ../shared/data/manifest.csv
"""
import argparse

from unetgan.histogram import reference_from, save_reference
from unetgan.registry import MODELS_DIR, load_lvunet
from unetgan.training.datasets import labelled_volumes

parser = argparse.ArgumentParser()
parser.add_argument("--manifest", required=True)
parser.add_argument("--vendor", default="Philips")
parser.add_argument("--split", default="train_labelled")
args = parser.parse_args()
volumes = labelled_volumes(args.manifest, [args.vendor], [args.split], progress=False)
held_out = set(load_lvunet("lvunet-clean").metadata["validation_subjects"])
training = [v.image.array for v in volumes if v.subject not in held_out]
save_reference(reference_from(training), MODELS_DIR / "source_histogram.json", args.vendor)
print(f"source histogram from {len(training)} {args.vendor} volumes")
