"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

Four flips raised the shipped pipeline's mean Dice on the real dev data by 0.006 (Philips), 0.006 (Siemens)
and 0.012 (GE; myocardium 0.740 -> 0.756) for 4x the LV-Unet's time (docs/results.md); `flip` (the left-right
mirror, 2x) gets about two thirds of that.

The clinical numbers (EDV, ESV, EF, ED mass) come from two frames of a cine, end-diastole and end-systole:
`flip4-ed-es` segments every frame once, then the two frames the measurements pick again with the four flips
(on a 300-image cine 2.7 s less per click than `flip4`). It is not the default: on the Sunnybrook cines the
contoured ED and ES frames were not the ones the measurements picked in 3 of 6 cases, and those masks are the
one-pass ones (GE mean Dice 0.830 against 0.842 with `flip4`, docs/models.md)."""

TTA_FLIPS = {"none": ((),), "flip": ((), (-1,)), "flip4": ((), (-1,), (-2,), (-2, -1))}
# a setting: (the flips of every frame, those of the end-diastolic and end-systolic frames)
TTA_SETTINGS = {"flip4": ("flip4", "flip4"), "flip": ("flip", "flip"), "flip4-ed-es": ("none", "flip4"),
                "none": ("none", "none")}
DEFAULT_TTA = "flip4"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_SETTINGS; else InputError saying which are."""
    if name not in TTA_SETTINGS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_SETTINGS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same)
TTA_LABELS = {"flip4": "Four flips (most accurate, 4x the segmenter's time)", "flip": "Left-right flip (2x)",
              "flip4-ed-es": "Four flips on the ED and ES frames only (their numbers as with four flips)",
              "none": "None (fastest)"}
