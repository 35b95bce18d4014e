"""Cines are processed in a box around the heart after the first frame: same masks, less work."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from unetgan import inference
from unetgan.errors import Cancelled

from unetgan.evaluation import dice
from unetgan.inference import CROP_SIZE, HEART_BOX_MARGIN_PX, adapt_and_segment, heart_box
from unetgan.io.images import Geometry
from unetgan.phantom import make_study
from unetgan.registry import load_adapter, load_lvunet
from unetgan.timing import Stopwatch


def test_heart_box_holds_the_lv_with_a_margin_in_multiples_of_16():
    labels = np.zeros((4, CROP_SIZE, CROP_SIZE), np.uint8)
    labels[1:3, 60:101, 80:111] = 1
    labels[1:3, 70:90, 90:100] = 2
    labels[0, 5, 5] = 1  # a stray island does not stretch the box
    box = heart_box(labels)
    assert box.r0 <= 60 - HEART_BOX_MARGIN_PX and box.r1 >= 101 + HEART_BOX_MARGIN_PX
    assert box.c0 <= 80 - HEART_BOX_MARGIN_PX and box.c1 >= 111 + HEART_BOX_MARGIN_PX
    assert (box.r1 - box.r0) % 16 == 0 and (box.c1 - box.c0) % 16 == 0 and box.c1 - box.c0 >= 96
    assert 0 < box.fraction < 0.3


def test_no_box_without_an_lv_or_when_it_would_cover_the_field():
    labels = np.zeros((2, CROP_SIZE, CROP_SIZE), np.uint8)
    assert heart_box(labels) is None
    labels[:, 10:180, 10:180] = 1
    assert heart_box(labels) is None
    labels[:] = 0
    labels[:, 0:30, 0:30] = 2  # at the field's corner: the box is clipped to the field
    box = heart_box(labels)
    assert box.r0 == 0 and box.c0 == 0 and box.r1 == 96


@pytest.fixture(scope="module")
def shipped():
    return load_lvunet("lvunet-clean"), load_adapter("Siemens")


@pytest.fixture(scope="module")
def siemens_cine():
    study = make_study("Siemens", seed=3, n_phases=4, n_slices=4)
    return study.image, Geometry(spacing=study.spacing, origin=study.origin, direction=study.direction)


def test_boxed_cine_gives_the_whole_field_masks_with_less_network_work(shipped, siemens_cine):
    network, adapter = shipped
    frames, geometry = siemens_cine
    runs = {}
    for whole_field in (True, False):
        seen, batches = [], []

        def record(module, args, seen=seen, batches=batches):
            seen.append(tuple(args[0].shape[-2:]))
            batches.append(args[0].shape[0])

        hook = network.register_forward_pre_hook(record)
        try:
            runs[whole_field] = adapt_and_segment(frames, geometry, network, adapter, "cpu", whole_field=whole_field,
                                                  stopwatch=Stopwatch(), batch=2), seen
            boxed_batches = batches
        finally:
            hook.remove()
    (whole, whole_sizes), (boxed, boxed_sizes) = runs[True], runs[False]
    assert all((whole.labels[t] == 1).sum() > 100 for t in range(4)), "the shipped model should find the LV"
    for t in range(4):
        assert dice(boxed.labels[t] > 0, whole.labels[t] > 0) > 0.97
    # the LV-Unet saw the whole field once, then only the box
    assert whole_sizes == [(CROP_SIZE, CROP_SIZE)] * 8  # 4 slices per frame, 2 per call
    assert boxed_sizes[:2] == [(CROP_SIZE, CROP_SIZE)] * 2 and all(h * w < 0.5 * CROP_SIZE**2 for h, w in boxed_sizes[2:])
    # a box's slices go in fewer, larger calls than the whole field's (the same pixels per call at most):
    # each later frame's 4 slices in one call
    assert boxed_batches == [2, 2, 4, 4, 4]
    # the translation is the whole field's, identical with or without the box: one continuous image, no seam
    assert np.array_equal(boxed.translated, whole.translated)
    assert not np.allclose(boxed.translated[1], frames[1])


def test_a_heart_that_leaves_the_box_is_redone_on_the_whole_field(shipped, siemens_cine):
    network, adapter = shipped
    frames, geometry = siemens_cine
    moved = np.stack([frames[0], np.roll(frames[0], 70, axis=-1)])
    boxed = adapt_and_segment(moved, geometry, network, adapter, "cpu")
    whole = adapt_and_segment(moved, geometry, network, adapter, "cpu", whole_field=True)
    assert (whole.labels[1] > 0).sum() > 100
    assert dice(boxed.labels[1] > 0, whole.labels[1] > 0) > 0.99


def test_only_the_heart_on_a_box_edge_sends_a_frame_to_the_whole_field():
    """A stray LV island on the box's edge is dropped by the clean-up (it keeps the largest LV component), so it
    does not send the frame back to the whole field; the heart itself on the edge does, and so does any LV on
    the edge when the clean-up is off (the islands then stay in the result)."""
    box = inference.HeartBox(48, 144, 48, 144)
    labels = torch.zeros((3, 96, 96), dtype=torch.uint8)
    labels[:, 30:60, 30:60] = 1  # the heart, inside the box
    labels[1, 0:4, 80:84] = 2  # an island on the top edge
    assert not inference._touches_border(labels, box)
    assert inference._touches_border(labels, box, islands_dropped=False)
    labels[:, 30:60, 60:96] = 1  # the heart reaches the right edge
    assert inference._touches_border(labels, box)

def test_later_frames_run_two_at_once_with_the_same_results_in_order(shipped, siemens_cine, monkeypatch):
    network, adapter = shipped
    frames, geometry = siemens_cine
    threads = {}
    frame_step = inference.adapt_and_segment_frame

    def recorded(volume, *args, box=None, **kwargs):
        threads.setdefault(box is None, set()).add(threading.current_thread().name)
        threading.Event().wait(0.05)  # so that both threads take frames even if one is quick
        return frame_step(volume, *args, box=box, **kwargs)

    runs = {}
    threads_before = torch.get_num_threads()
    # (frames at once, the process's threads, the largest frame two may hold) -> frames that run at once
    for at_once, cores, largest, expected in ((1, 2, None, 1), (2, 2, None, 2), (2, 1, None, 1),
                                              (2, 2, frames[0].size - 1, 1)):
        monkeypatch.setattr(inference, "FRAMES_AT_ONCE", at_once)
        torch.set_num_threads(cores)  # one thread (a batch worker's share): one frame at a time
        if largest is not None:  # frames larger than this go one at a time (memory)
            monkeypatch.setattr(inference, "FRAMES_AT_ONCE_MAX_VOXELS", largest)
        monkeypatch.setattr(inference, "adapt_and_segment_frame", recorded)
        threads.clear()
        done = []
        try:
            result = adapt_and_segment(frames, geometry, network, adapter, "cpu",
                                       progress=lambda t, n: done.append((t, n)))
        finally:
            torch.set_num_threads(threads_before)
        assert done == [(t, 4) for t in range(1, 5)]  # progress in frame order, once per frame
        assert len(threads[True]) == 1  # the first frame (it finds the box) alone
        assert len(threads[False]) == expected  # the later frames, with the box, on this many threads
        runs[expected] = runs.get(expected) or result
    one, two = runs[1], runs[2]
    np.testing.assert_array_equal(two.labels, one.labels)
    np.testing.assert_array_equal(two.translated, one.translated)
    assert two.confidence == one.confidence


@pytest.fixture
def two_threads():
    """The process's share of the cores is two threads (the suite runs with one), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_cancel_stops_frames_running_two_at_once(shipped, siemens_cine, two_threads):
    network, adapter = shipped
    frames, geometry = siemens_cine
    done = []
    assert inference.frames_at_once(torch.device("cpu"), frames[0].size) == 2
    with pytest.raises(Cancelled):
        adapt_and_segment(np.concatenate([frames] * 3), geometry, network, adapter, "cpu",
                          progress=lambda t, n: done.append(t), cancel=lambda: len(done) >= 2)
    assert 2 <= done[-1] < 12  # stopped soon after the request, not after all 12 frames


def test_class_labels_is_argmax_over_the_three_classes_ties_included():
    import torch

    from unetgan.inference import class_labels

    generator = torch.Generator().manual_seed(0)
    probabilities = torch.rand(3, 3, 20, 20, generator=generator).round(decimals=1)  # many ties
    assert torch.equal(class_labels(probabilities), probabilities.argmax(1).to(torch.uint8))
