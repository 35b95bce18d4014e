"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

The default is none: one pass. Each option is measured against it on the dev subjects, cross-validated, in
docs/choice_cv.md (`make results`); docs/models.md ('How each shipped choice was made') says why one pass stays
the default although the half-turn gains a little Dice: it doubles the segmenter's share of a click. The options:
`flip4` (the four in-plane flips, 4x the segmenter's time), `rot180` (the image and its half-turn, 2x), `flip`
(the left-right mirror, 2x)."""

TTA_FLIPS = {"none": ((),), "flip4": ((), (-1,), (-2,), (-2, -1)), "rot180": ((), (-2, -1)), "flip": ((), (-1,))}
DEFAULT_TTA = "none"


def check_tta(name: str) -> str:
    """name, if it is a setting of TTA_FLIPS; else InputError saying which are."""
    if name not in TTA_FLIPS:
        from .errors import InputError

        raise InputError(f"unknown test-time augmentation {name!r}; choose from {', '.join(TTA_FLIPS)}")
    return name

# what the Slicer panel and the web page offer (the command line's --tta help says the same), the default first
TTA_LABELS = {"none": "None (one pass: the default segmenter learnt the four flips)",
              "flip4": "Four flips (4x the segmenter's time)",
              "rot180": "Half turn (the image and its 180-degree rotation, 2x)", "flip": "Left-right flip (2x)"}
