"""Segmentation, translation to the source vendor's look, and both together, on arrays.

Everything here works frame by frame (a frame is one 3D volume; on a CPU two at once), so memory stays
bounded by two frames whatever the length of the cine.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .errors import Cancelled, InputError
from .io.images import Geometry
from .histogram import match_to_reference
from .postprocess import clean_frame, keep_largest_component
from .preprocess import (CROP_SIZE, PERCENTILES, normalise_intensity, prepare_volume, prepare_volume_keeping_input,
                         with_neighbours)
from .timing import NO_STOPWATCH

BACKGROUND_FILL = (1.0, 0.0, 0.0)  # class probabilities outside the network's crop
CROP_EDGE_FADE = 16  # network pixels (24 mm) over which the translated view fades out at the crop's edge
# slices per network call: 8 keeps the activations of a 20-slice frame at 192 x 192 to ~150 MB
# (32 needed ~0.6 GB) for about 1% more time on a CPU
BATCH = 8
FRAMES_AT_ONCE = 2  # on a CPU (adapt_and_segment)
# larger frames go one at a time: a large study's peak memory (docs/benchmarks.md) holds one frame's temporaries
FRAMES_AT_ONCE_MAX_VOXELS = 4 * 2**20


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError("a GPU was requested but torch sees none; use --device cpu")
    return torch.device("cuda" if device == "gpu" else device)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


@torch.inference_mode()
def _run_batched(network: torch.nn.Module, slices: torch.Tensor, device, bf16: bool, batch: int) -> torch.Tensor:
    outputs = []
    for start in range(0, slices.shape[0], batch):
        chunk = slices[start : start + batch].to(device).contiguous(memory_format=torch.channels_last)
        with _autocast(device, bf16):
            # contiguous: later per-pixel reductions over channels are ~10x slower on channels_last
            outputs.append(network(chunk).float().cpu().contiguous())
    return torch.cat(outputs)


def class_labels(probabilities: torch.Tensor) -> torch.Tensor:
    """argmax over the 3 classes of (N, 3, H, W), ties to the lower class as argmax does; written out
    because torch's argmax over a short non-innermost dimension is ~20x slower on a CPU."""
    p0, p1, p2 = probabilities[:, 0], probabilities[:, 1], probabilities[:, 2]
    # the two winners exclude each other, so 1 * blood pool + 2 * myocardium is the label; a sum is ~5x
    # faster than two masked assignments
    blood_pool = (p1 > p0).logical_and_(p1 >= p2)
    myocardium = (p2 > p0).logical_and_(p2 > p1)
    return blood_pool.to(torch.uint8).add_(myocardium.to(torch.uint8), alpha=2)


@dataclass(frozen=True)
class HeartBox:
    """A box of the network's 192 x 192 grid that holds the LV with a margin (rows r0:r1, cols c0:c1)."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)

    @property
    def fraction(self) -> float:
        return (self.r1 - self.r0) * (self.c1 - self.c0) / float(CROP_SIZE * CROP_SIZE)


# 24 mm around the LV found in the first frame covers its motion over the cycle; sides are
# multiples of 16 because the LV-Unet pools three times and the generator downsamples twice
HEART_BOX_MARGIN_PX = 16
HEART_BOX_MULTIPLE = 16
HEART_BOX_MIN_PX = 96


def heart_box(network_labels: np.ndarray) -> HeartBox | None:
    """The box around the largest LV component of network-grid labels (Z, 192, 192), or None if there is
    no LV or the box would be nearly the whole field anyway."""
    lv = keep_largest_component((network_labels > 0).astype(np.uint8)) > 0
    if not lv.any():
        return None
    rows, cols = np.nonzero(lv.any(0))
    sides = []
    for low, high in ((rows.min(), rows.max() + 1), (cols.min(), cols.max() + 1)):
        size = max(HEART_BOX_MIN_PX, high - low + 2 * HEART_BOX_MARGIN_PX)
        size = min(CROP_SIZE, -(-size // HEART_BOX_MULTIPLE) * HEART_BOX_MULTIPLE)
        start = int(np.clip((low + high - size) // 2, 0, CROP_SIZE - size))
        sides.append((start, start + size))
    box = HeartBox(sides[0][0], sides[0][1], sides[1][0], sides[1][1])
    return None if box.fraction > 0.75 else box


def box_batch(batch: int, box: HeartBox | None) -> int:
    """Slices per network call in a box: as many as `batch` whole fields hold (the same memory per call). A
    frame's slices then go in one call, split between the ONNX Runtime sessions of the cores: with 2 heart
    boxes per session a box took 4.6 ms, with 4 3.1 ms, with 6 or more 2.7-2.9 ms (two cores, int8 LV-Unet,
    96 x 96; a 12-slice frame in calls of 8 had sessions of 4 and 2)."""
    if box is None:
        return batch
    return max(batch, batch * CROP_SIZE * CROP_SIZE // ((box.r1 - box.r0) * (box.c1 - box.c0)))


def _touches_border(labels: torch.Tensor, box: HeartBox, islands_dropped: bool = True) -> bool:
    """LV predicted on a box edge (that the field continues past): the heart may reach outside the box. When the
    clean-up drops stray islands (it keeps the largest LV component), only that component counts: an island on
    the edge is dropped either way, and redoing the frame on the whole field for it would only cost time."""
    if islands_dropped:
        labels = torch.from_numpy(keep_largest_component(labels.numpy()))
    edges = []
    if box.r0 > 0:
        edges.append(labels[:, 0, :])
    if box.r1 < CROP_SIZE:
        edges.append(labels[:, -1, :])
    if box.c0 > 0:
        edges.append(labels[:, :, 0])
    if box.c1 < CROP_SIZE:
        edges.append(labels[:, :, -1])
    return any(bool((edge > 0).any()) for edge in edges)


@dataclass
class FrameResult:
    labels: np.ndarray  # (Z, Y, X) uint8
    confidence: float  # mean max-probability over predicted LV pixels
    translated: np.ndarray | None = None  # (Z, Y, X) float32, input intensity units
    heart_box: HeartBox | None = None  # where the LV is, for the next frames of a cine (whole-field runs only)


def context_slices(model) -> int:
    """Neighbour slices on either side an LV-Unet sees as input channels (any wrapper of one: its config)."""
    config = getattr(model, "config", None)
    return config.context_slices if config is not None else 0


def _probabilities(model, slices, device, bf16, batch, box: HeartBox | None, stopwatch,
                   islands_dropped: bool = True) -> torch.Tensor | None:
    """Class probabilities from the LV-Unet: (N, 3, 192, 192), or with a box those of the box only (the
    network sees only the box; the rest is background). None when the box holds no LV or the LV reaches
    its edge (the heart may have left the box: the caller then runs the whole field)."""
    window = (slice(None), slice(None)) + (box.window if box is not None else (slice(None), slice(None)))
    with stopwatch.stage("segment"):
        logits = _run_batched(model, with_neighbours(slices, context_slices(model))[window], device, bf16,
                              box_batch(batch, box))
    with stopwatch.stage("restore"):
        probabilities = torch.softmax(logits, 1)
        if box is None:
            return probabilities
        labels = class_labels(probabilities)
        if not bool((labels > 0).any()) or _touches_border(labels, box, islands_dropped):
            return None
        return probabilities


def _labels_on_input_grid(probabilities, grid, postprocess: bool, stopwatch,
                          box: HeartBox | None = None) -> tuple[np.ndarray, float]:
    """Labels on the input grid and the confidence; with a box, probabilities are the box's and only the part
    of the input grid the box reaches is computed (elsewhere restoring the background gives background)."""
    with stopwatch.stage("restore"):
        fill = torch.tensor(BACKGROUND_FILL)
        if box is None:
            (rows, cols), restored = (slice(None), slice(None)), grid.restore(probabilities, fill=fill)
        else:
            (rows, cols), restored = grid.restore_window(probabilities, *box.window, fill=fill)
        labels = np.zeros((probabilities.shape[0],) + grid.shape, np.uint8)
        labels[:, rows, cols] = class_labels(restored).numpy()
        if postprocess:
            labels = clean_frame(labels)
        top = restored.amax(1).numpy()  # the winning class's probability (one temporary, not two)
        found = labels[:, rows, cols] > 0
        confidence = float(top[found].mean()) if found.any() else 0.0
    return labels, confidence


def segment_slices(model, slices: torch.Tensor, grid, device, bf16=False, batch=BATCH, postprocess=True,
                   stopwatch=NO_STOPWATCH):
    probabilities = _probabilities(model, slices, device, bf16, batch, None, stopwatch)
    return _labels_on_input_grid(probabilities, grid, postprocess, stopwatch)


def segment(volume: np.ndarray, spacing, model, device="cpu", bf16=False, batch=BATCH, postprocess=True) -> FrameResult:
    """Labels (1 blood pool, 2 myocardium) of a 3D volume (Z, Y, X), on its own grid."""
    device = pick_device(device) if isinstance(device, str) else device
    slices, grid = prepare_volume(volume, spacing)
    labels, confidence = segment_slices(model, slices, grid, device, bf16, batch, postprocess)
    return FrameResult(labels, confidence)


def translate_slices(generator, slices: torch.Tensor, device, bf16=False, batch=BATCH, stopwatch=NO_STOPWATCH) -> torch.Tensor:
    """Network slices in [0, 1] -> the source vendor's look, in [0, 1] (the generator works in [-1, 1]).

    Always the whole field: the translated image a radiologist compares with the original is one
    continuous translation, never a translated box pasted into something else."""
    with stopwatch.stage("translate"):
        if getattr(generator, "is_identity", lambda: False)():  # same values, none of the network's work
            translated = generator.identity_output(slices * 2 - 1)
        else:
            translated = _run_batched(generator, slices * 2 - 1, device, bf16, batch)
        return ((translated + 1) / 2).clamp_(0, 1)


def translate_to_source(volume: np.ndarray, spacing, generator, device="cpu", bf16=False, batch=BATCH) -> np.ndarray:
    """A target-vendor volume as the source vendor would show it, on the input grid and intensity range."""
    return adapt_and_segment_frame(volume, spacing, None, generator, device, bf16, batch).translated


def adapter_input(volume: np.ndarray, generator) -> np.ndarray:
    """What the adapter was trained on: the raw volume, or the volume histogram-matched to the source first
    (adapters trained with `--histogram-match` carry the source quantile function in their metadata)."""
    reference = (getattr(generator, "metadata", None) or {}).get("histogram_reference") if generator is not None else None
    return volume if reference is None else match_to_reference(volume, np.asarray(reference, dtype=np.float64))


def adapter_slices(volume: np.ndarray, spacing, generator) -> torch.Tensor:
    """Network slices (N, 1, 192, 192) in [0, 1] of what the adapter translates: its input after its own
    histogram matching (adapter_input), on the network grid."""
    return prepare_volume(adapter_input(volume, generator), spacing)[0]


def adapt_and_segment_frame(volume, spacing, model, generator, device="cpu", bf16=False, batch=BATCH, postprocess=True,
                            box: HeartBox | None = None, stopwatch=NO_STOPWATCH) -> FrameResult:
    """Translate (when a generator is given, always on the whole field) and segment one 3D volume.

    box: run the LV-Unet only in this part of the field (from an earlier frame's `heart_box`);
    if the LV reaches the box's edge, the frame is segmented again on the whole field."""
    device = pick_device(device) if isinstance(device, str) else device
    with stopwatch.stage("preprocess"):
        generator_input = adapter_input(volume, generator)
        slices, grid, normalised_input = prepare_volume_keeping_input(generator_input, spacing)
    slices_source = slices if generator is None else translate_slices(generator, slices, device, bf16, batch, stopwatch)
    result = FrameResult(np.zeros(volume.shape, np.uint8), 0.0)
    if model is not None:
        probabilities = _probabilities(model, slices_source, device, bf16, batch, box, stopwatch, postprocess)
        if probabilities is None:  # the heart left the box: segment this frame on the whole field
            box, probabilities = None, _probabilities(model, slices_source, device, bf16, batch, None, stopwatch)
        if box is None:
            with stopwatch.stage("restore"):
                result.heart_box = heart_box(class_labels(probabilities).numpy())
        result.labels, result.confidence = _labels_on_input_grid(probabilities, grid, postprocess, stopwatch, box)
    with stopwatch.stage("restore"):
        result.translated = _to_input_look(volume, slices_source, grid, generator is not None, generator_input,
                                           normalised_input)
    return result


def _to_input_look(volume, slices_source, grid, translated: bool, generator_input, normalised_input) -> np.ndarray:
    """The translated crop back on the input grid, in the input's intensity range. Outside the network's crop
    the generator's own input shows (normalised_input: the histogram-matched image, for adapters that match
    first, normalised as the crop the generator saw), so the translated view continues past the crop's edge
    instead of switching back to the untouched original."""
    if not translated:
        return np.asarray(volume, np.float32).copy()
    # large studies: every full-frame temporary here counts at the memory peak, so the blend and the
    # rescaling run in place (the same operations in the same order: the same values)
    low, high = np.percentile(np.asarray(volume, np.float32), PERCENTILES)
    image = grid.restore(slices_source, fill=0.0)[:, 0].numpy()
    coverage = crop_coverage(grid)  # the same for every frame of the grid: restored once
    blended = coverage * image
    outside = (1 - coverage) * normalised_input
    blended += outside
    del outside
    scaled = np.multiply(blended, high - low)  # float64, as the input's window is
    scaled += low
    return scaled.astype(np.float32)


@functools.lru_cache(maxsize=8)
def crop_coverage(grid) -> np.ndarray:
    """(rows, cols) weight of the network's crop on the input grid: 1 inside, 0 outside, and between them a
    band of CROP_EDGE_FADE network pixels where the translation fades into the generator's input, so that a
    field wider than the crop (over 288 mm) shows no step at the crop's edge."""
    ramp = ((torch.arange(grid.crop) + 0.5) / CROP_EDGE_FADE).clamp_(max=1)
    ramp = torch.minimum(ramp, ramp.flip(0))
    weights = torch.minimum(ramp[:, None], ramp[None, :])[None, None]
    coverage = grid.restore(weights, fill=0.0)[0, 0].clamp_(0, 1).numpy()
    coverage.setflags(write=False)  # shared by every caller
    return coverage


def _as_type(image: np.ndarray, dtype) -> np.ndarray:
    if not np.issubdtype(dtype, np.integer):
        return image
    info = np.iinfo(dtype)
    return np.clip(np.rint(image), info.min, info.max)


def frames_at_once(device: torch.device, frame_voxels: int) -> int:
    """How many of a cine's frames run at once: on a CPU up to FRAMES_AT_ONCE, never more than the process's share
    of the cores (a batch worker of one thread runs one frame at a time), and one for frames too large to hold twice."""
    if device.type != "cpu" or frame_voxels > FRAMES_AT_ONCE_MAX_VOXELS:
        return 1
    return max(1, min(FRAMES_AT_ONCE, torch.get_num_threads()))


@dataclass
class CineResult:
    labels: np.ndarray  # (T, Z, Y, X) uint8
    translated: np.ndarray  # (T, Z, Y, X) in the input's type (integer inputs stay integer), else float32
    confidence: list[float] = field(default_factory=list)


def adapt_and_segment(frames: np.ndarray, geometry: Geometry, model, generator=None, device="cpu", bf16=False,
                      batch=BATCH, progress: Callable[[int, int], None] | None = None,
                      cancel: Callable[[], bool] | None = None, whole_field: bool = False,
                      stopwatch=NO_STOPWATCH) -> CineResult:
    """Translate (when a generator is given) and segment every frame of a cine (T, Z, Y, X).

    The heart does not move across the frames of a cine (same slices, same grid), so once the LV has
    been found on the whole field of the first frame, the later frames run the LV-Unet only in a box
    around it (about a quarter of the field); `whole_field` turns this off. The translation always
    covers the whole field (one continuous image to compare with the original)."""
    if frames.ndim != 4:
        raise InputError(f"expected frames (T, Z, Y, X), got shape {frames.shape}")
    device = pick_device(device) if isinstance(device, str) else device
    labels = np.zeros(frames.shape, np.uint8)
    # the translated cine in the input's own type: an integer study stays integer (half the memory of float32)
    translated = np.zeros(frames.shape, frames.dtype if np.issubdtype(frames.dtype, np.integer) else np.float32)
    confidence = []
    spacing, box, count = geometry.spacing, None, frames.shape[0]

    def run(t: int, box: HeartBox | None) -> FrameResult:
        if cancel is not None and cancel():
            raise Cancelled("cancelled by the user")
        return adapt_and_segment_frame(frames[t], spacing, model, generator, device, bf16, batch, box=box,
                                       stopwatch=stopwatch)

    def keep(t: int, frame: FrameResult) -> None:
        labels[t], translated[t] = frame.labels, _as_type(frame.translated, translated.dtype)
        confidence.append(frame.confidence)
        if progress is not None:
            progress(t + 1, count)

    t = 0
    while t < count and box is None and not whole_field and model is not None:  # each frame may find the box
        frame = run(t, None)
        box = frame.heart_box
        keep(t, frame)
        t += 1
    # the later frames do not depend on each other: on a CPU two run at once, so that one frame's work outside
    # the networks (histogram matching, resampling back, clean-up: one core) overlaps the other's network calls
    at_once = frames_at_once(device, frames[0].size)
    with ThreadPoolExecutor(at_once, thread_name_prefix="frame") as pool:
        for t, frame in enumerate(pool.map(lambda t: run(t, box), range(t, count)), start=t):
            keep(t, frame)
    return CineResult(labels, translated, confidence)
