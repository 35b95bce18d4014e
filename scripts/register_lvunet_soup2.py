"""Make lvunet-soup2 the default segmenter and pair the shipped adapters with it (session 10, issue #12).

    python scripts/register_lvunet_soup2.py     # after scripts/make_lvunet_soup2.sh

Registers runs/lvunet_soup2.safetensors first among the segmenters and pairs every adapter the product or
docs/results.md uses with it (scripts/register_default_segmenter.py).
"""
from __future__ import annotations

import sys

from register_default_segmenter import ROOT, register_default
from unetgan.weights import sha256_of

SOUP = "runs/lvunet_soup2.safetensors"
INGREDIENTS = ("runs/unet_context_control/last.safetensors", "runs/unet_soup_generic/last.safetensors")


def main() -> int:
    register_default(
        "lvunet-soup2", SOUP,
        "scripts/make_lvunet_soup2.sh (= python scripts/soup_lvunet.py " + " ".join(INGREDIENTS) + f" -o {SOUP}: "
        "the uniform weight average of two continuations of lvunet-soup on the Philips labels, made by "
        "CONTEXT=0 scripts/train_context_unet.sh and VARIANT=generic scripts/train_soup_continuation.sh; "
        "ingredient SHA256 " + ", ".join(sha256_of(ROOT / path) for path in INGREDIENTS) + ")",
        "Second soup LV-Unet: the weight average of two continuations of lvunet-soup (with and without "
        "histogram matching toward Siemens); one pass",
        "scripts/register_lvunet_soup2.py", 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
