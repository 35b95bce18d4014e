"""Make lvunet-soup2 the default segmenter and pair the shipped adapters with it.

    python scripts/recipes/register_lvunet_soup2.py     # after scripts/recipes/make_lvunet_soup2.sh

Registers runs/lvunet_soup2.safetensors first among the segmenters and pairs every adapter the product or
docs/results.md uses with it (scripts/recipes/register_default_segmenter.py).
"""
from register_default_segmenter import register_soup

if __name__ == "__main__":
    register_soup(
        "lvunet-soup2", "runs/lvunet_soup2.safetensors",
        ("runs/unet_context_control/last.safetensors", "runs/unet_soup_generic/last.safetensors"),
        "scripts/recipes/make_lvunet_soup2.sh",
        "the uniform weight average of two continuations of lvunet-soup on the Philips labels, made by "
        "CONTEXT=0 scripts/recipes/train_context_unet.sh and VARIANT=generic scripts/recipes/train_soup_continuation.sh",
        "Second soup LV-Unet: the weight average of two continuations of lvunet-soup (with and without "
        "histogram matching toward Siemens); one pass",
        "scripts/recipes/register_lvunet_soup2.py")
