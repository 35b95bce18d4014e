"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

The default is the four flips (`flip4`, 4x the LV-Unet's time). `rot180` averages the image's logits with
those of the image turned by half a turn (both axes flipped): 2x. Against the four flips, on the real dev
data with the shipped models (docs/models.md), the two-pass settings measured:

| mean Dice (myocardium) | Philips, `segment` | Siemens, `--adapter Siemens` | GE, `--adapter GE` |
|---|---|---|---|
| flip4 | 0.8940 | 0.8718 | 0.8419 (0.7562) |
| rot180 | 0.8931 | 0.8688 | 0.8386 (0.7528) |
| flip (left-right) | 0.8902 | 0.8768 | 0.8373 (0.7495) |
| up-down (not offered) | - | - | 0.8356 (0.7496) |

rot180 is the best two-pass setting there, for half the segmenter's time (a click on a 300-image cine about
2 s shorter); it is not the default because `make results` measured it 0.0068 below flip4 on GE with the
adapters that never saw the patient (myocardium 0.746, under issue #12's 0.75) and 0.012 below on GE
without an adapter. `none` is the fastest (0.006-0.012 below flip4)."""

TTA_FLIPS = {"flip4": ((), (-1,), (-2,), (-2, -1)), "rot180": ((), (-2, -1)), "flip": ((), (-1,)), "none": ((),)}
DEFAULT_TTA = "flip4"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_FLIPS; else InputError saying which are."""
    if name not in TTA_FLIPS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_FLIPS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same), the default first
TTA_LABELS = {"flip4": "Four flips (most accurate, 4x the segmenter's time)",
              "rot180": "Half turn (the image and its 180-degree rotation, 2x)", "flip": "Left-right flip (2x)",
              "none": "None (fastest)"}
