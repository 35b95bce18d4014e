"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

Four flips raised the shipped pipeline's mean Dice on the real dev data by 0.006 (Philips), 0.006 (Siemens)
and 0.012 (GE; myocardium 0.740 -> 0.756) for 4x the LV-Unet's time (docs/results.md); `flip` (the left-right
mirror, 2x) gets about two thirds of that. The clinical numbers (EDV, ESV, EF, ED mass) come from two frames
of a cine, end-diastole and end-systole, so the default spends the four flips there: every frame is segmented
once, then the two frames the measurements use are segmented again with the four flips (`flip4-ed-es`). On a
300-image cine that is 4 s less per click than four flips on every frame; the other frames' masks are
those of `none`."""

TTA_FLIPS = {"none": ((),), "flip": ((), (-1,)), "flip4": ((), (-1,), (-2,), (-2, -1))}
# a setting: (the flips of every frame, those of the end-diastolic and end-systolic frames)
TTA_SETTINGS = {"flip4-ed-es": ("none", "flip4"), "flip4": ("flip4", "flip4"), "flip": ("flip", "flip"),
                "none": ("none", "none")}
DEFAULT_TTA = "flip4-ed-es"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_SETTINGS; else InputError saying which are."""
    if name not in TTA_SETTINGS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_SETTINGS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same)
TTA_LABELS = {"flip4-ed-es": "Four flips on the ED and ES frames (the clinical numbers), none elsewhere",
              "flip4": "Four flips on every frame (4x the segmenter's time)", "flip": "Left-right flip (2x)",
              "none": "None (fastest)"}
