"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

The default, `rot180`, averages the image's logits with those of the image turned by half a turn (both axes
flipped): 2x the LV-Unet's time. The four flips (`flip4`, 4x) were the default until session 7; against them,
on the real dev data with the shipped models (docs/models.md), the two-pass settings measured:

| mean Dice (myocardium) | Philips, `segment` | Siemens, `--adapter Siemens` | GE, `--adapter GE` |
|---|---|---|---|
| flip4 | 0.8940 | 0.8718 | 0.8419 (0.7562) |
| rot180 | 0.8931 | 0.8688 | 0.8386 (0.7528) |
| flip (left-right) | 0.8902 | 0.8768 | 0.8373 (0.7495) |
| up-down (not offered) | - | - | 0.8356 (0.7496) |

rot180 was chosen on those figures (each within 0.005 of flip4, GE myocardium still above 0.75) for half the
segmenter's time: a click on a 300-image cine is about 2 s shorter. `none` is the fastest (0.006-0.012 below
flip4)."""

TTA_FLIPS = {"rot180": ((), (-2, -1)), "flip4": ((), (-1,), (-2,), (-2, -1)), "flip": ((), (-1,)), "none": ((),)}
DEFAULT_TTA = "rot180"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_FLIPS; else InputError saying which are."""
    if name not in TTA_FLIPS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_FLIPS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same), the default first
TTA_LABELS = {"rot180": "Half turn (the image and its 180-degree rotation, 2x the segmenter's time)",
              "flip4": "Four flips (most accurate, 4x)", "flip": "Left-right flip (2x)", "none": "None (fastest)"}
