"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

The default is the four flips: on the real dev data they raised the shipped pipeline's mean Dice by
0.006 (Philips), 0.006 (Siemens) and 0.012 (GE; myocardium 0.740 -> 0.756) for 4x the LV-Unet's time
(docs/results.md); `flip` (the left-right mirror, 2x) gets about two thirds of that, `none` is the fastest."""

TTA_FLIPS = {"none": ((),), "flip": ((), (-1,)), "flip4": ((), (-1,), (-2,), (-2, -1))}
DEFAULT_TTA = "flip4"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_FLIPS; else InputError saying which are."""
    if name not in TTA_FLIPS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_FLIPS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same)
TTA_LABELS = {"flip4": "Four flips (most accurate, 4x the segmenter's time)", "flip": "Left-right flip (2x)",
              "none": "None (fastest)"}
