"""Test-time augmentation of the LV-Unet: which in-plane flips have their logits averaged (no torch here:
the command line's options import it at start-up).

The default is none: one pass. `lvunet-soup` (docs/models.md), an earlier default, is a weight average
of continuations of `lvunet-robust` that include two trained to give in one pass what four flips give; in one
pass it matches `lvunet-robust` with four flips, the default before it, at a quarter of the segmenter's time.
The default segmenter, `lvunet-soup2`, is a soup of two continuations of it. On the real dev data
(`unetgan evaluate`, int8, end-slice clean-up; docs/results.md):

| mean Dice (myocardium) | Philips, `segment` | Siemens, `--adapter Siemens` | GE, `--adapter GE` | GE, held-out adapters |
|---|---|---|---|---|
| `lvunet-soup2`, none (default) | 0.9010 (0.8709) | 0.8819 (0.8430) | 0.8468 (0.7666) | 0.8443 (0.7640) |
| `lvunet-soup2`, flip4 | 0.9026 (0.8746) | 0.8759 (0.8420) | 0.8506 (0.7688) | - |
| `lvunet-soup`, none | 0.8934 (0.8642) | 0.8707 (0.8350) | 0.8530 (0.7726) | 0.8489 (0.7672) |
| `lvunet-robust`, flip4 (an earlier default) | 0.8940 (0.8650) | 0.8718 (0.8363) | 0.8419 (0.7562) | 0.8399 (0.7545) |
| `lvunet-robust`, none | 0.8872 (0.8581) | 0.8721 (0.8350) | 0.8283 (0.7371) | - |

The other settings stay for any segmenter: `flip4` (the four flips, 4x the segmenter's time), `rot180` (the
image and its half-turn, 2x), `flip` (the left-right mirror, 2x). With `lvunet-robust`, rot180 measured 0.0009
(Philips) to 0.0068 (GE, held-out adapters) below flip4, flip 0.0038 below on Philips."""

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
