"""The vendor classifier that judges translations: it tells two looks apart, and a look it was not
trained to reject passes for the source."""
from __future__ import annotations

import numpy as np
import torch

from conftest import ring_study
from unetgan.preprocess import prepare_volume
from unetgan.vendor_check import balanced_accuracy, source_look_rate, train_vendor_classifier


def slices(seed: int, look: str) -> torch.Tensor:
    """Network slices of ring cines; the 'target' look has coarse speckle and a gamma, as another vendor might."""
    out = []
    for s in range(3):
        image, _, spacing = ring_study(n_frames=2, n_slices=4, size=120, spacing=(1.2, 1.2, 8.0), seed=seed + s)
        if look == "target":
            rng = np.random.default_rng(seed + 100 + s)
            speckle = np.kron(rng.normal(0, 40, (2, 4, 30, 30)), np.ones((1, 1, 4, 4))).astype(np.float32)
            image = np.clip(image + speckle, 0, None) ** 1.3
        out += [prepare_volume(frame, spacing)[0] for frame in image]
    return torch.cat(out)


def test_the_classifier_tells_the_looks_apart_and_passes_the_source_look(torch_threads):
    classifier = train_vendor_classifier(slices(0, "source"), slices(0, "target"), steps=120, batch=16, seed=0)
    held_out_source, held_out_target = slices(50, "source"), slices(50, "target")
    assert balanced_accuracy(classifier, held_out_source, held_out_target) > 0.9
    # a perfect translation: target anatomy shown in the source look
    translated = slices(80, "source")
    assert source_look_rate(classifier, translated) > 0.8
    assert abs(balanced_accuracy(classifier, held_out_source, translated) - 0.5) < 0.15
