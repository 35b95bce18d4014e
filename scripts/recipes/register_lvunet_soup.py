"""Make lvunet-soup the default segmenter and pair the shipped adapters with it.

    python scripts/recipes/register_lvunet_soup.py      # after scripts/recipes/make_lvunet_soup.sh

Registers runs/lvunet_soup.safetensors first among the segmenters and pairs every adapter the product or
docs/results.md uses with it (scripts/recipes/register_default_segmenter.py).
"""
from register_default_segmenter import register_soup

if __name__ == "__main__":
    register_soup(
        "lvunet-soup", "runs/lvunet_soup.safetensors",
        ("runs/unet_tta_distilled_generic/last.safetensors", "runs/unet_tta_distilled_gentle/last.safetensors",
         "runs/unet_robust_averaged/average.safetensors"),
        "scripts/recipes/make_lvunet_soup.sh",
        "the uniform weight average of three continuations of lvunet-robust, made by VARIANT=generic "
        "scripts/recipes/train_tta_distilled_unet.sh, VARIANT=gentle scripts/recipes/train_tta_distilled_unet.sh and "
        "scripts/recipes/train_robust_unet_averaged.sh --epochs 5 after scripts/recipes/train_robust_unet_continued.sh",
        "Soup LV-Unet: the weight average of three continuations of lvunet-robust (two taught its "
        "four-flip output, one weight-averaged); in one pass as good as lvunet-robust with four flips",
        "scripts/recipes/register_lvunet_soup.py")
