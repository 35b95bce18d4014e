"""An identity adapter's JSON file from an adapter whose generator is the identity (its last convolution all
zeros: no trained checkpoint beat the untranslated image), so that the adapter ships without weights.

    python scripts/recipes/identity_adapter.py ADAPTER.safetensors -o UnetGANSlicer/Resources/Models/adapter_ge_identity.json

The JSON keeps the adapter's metadata (histogram reference, paired segmenter, training run, criterion) and
the name and SHA256 of the file it was taken from; `unetgan.networks.generator.load_identity_adapter` gives
the same translations as the weights did.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unetgan.networks.generator import load_generator
from unetgan.weights import sha256_of


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapter", type=Path, help="the adapter's .safetensors file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the identity adapter's .json file")
    args = parser.parse_args(argv)
    generator = load_generator(args.adapter)
    if not generator.is_identity():
        print(f"ERROR: {args.adapter.name} is not the identity (its last convolution has non-zero weights)",
              file=sys.stderr)
        return 1
    metadata = {key: value for key, value in generator.metadata.items() if key != "architecture"}
    metadata.update(identity=True, made_from={"file": args.adapter.name, "sha256": sha256_of(args.adapter)})
    args.output.write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
