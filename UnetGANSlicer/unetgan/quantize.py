"""8-bit versions of the networks for ONNX Runtime (`--runtime onnx-int8`), calibrated on the phantom.

ONNX Runtime's static quantization (per-channel int8 weights, uint8 activations, QDQ format) runs the
convolutions on the CPU's integer dot-product instructions (AVX-512 VNNI / AVX-VNNI), 1.6-2.5x faster than
float32 on this project's machines; the Dice change it causes is measured on the real dev data
(docs/benchmarks.md) before it is used by default.

On x86 CPUs without VNNI (AVX2 or AVX-512 alone) ONNX Runtime multiplies uint8 by int8 with an instruction
that adds each pair of products into 16 bits and saturates: with full-range weights a sum over 32767 is
clipped (255 x 127 x 2 = 64770), and the masks moved by up to 7 % on such a CPU. ONNX Runtime's
quantization guide gives the remedy used there: `reduce_range`, weights in 7 bits (-64..64), so a pair
sums to at most 255 x 64 x 2 = 32640 and nothing is clipped (SATURATION_SAFE; runtime.int8_settings()
chooses). The two kinds of model are cached under different keys.

Activation ranges come from images the project makes itself, so no patient data is involved and the result
is reproducible: two phantom frames of every vendor profile (phantom/), prepared as the networks see them
(the generator's inputs after its own histogram matching). Calibration takes a few seconds, so the
quantized model is kept in a cache folder, keyed by the float32 model's bytes and the versions that made it,
beside the calibration images.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

# bump when the calibration images or the quantization settings change: cached models are then remade
CALIBRATION_VERSION = 1
# bump when the rewrite of the quantized graph (_pad_quantized_tensors) changes
GRAPH_VERSION = 2
CALIBRATION_SEED = 7
CALIBRATION_SLICES = 8  # per frame, base to apex
CALIBRATION_BATCH = 4


@dataclasses.dataclass(frozen=True)
class Int8Settings:
    """How the weights are stored: per channel, in the full int8 range or in 7 bits (`reduce_range`)."""

    reduce_range: bool = False

    @property
    def name(self) -> str:
        """Part of the cache key: a model made for one setting is never read for the other."""
        return "u8s7-per-channel" if self.reduce_range else "u8s8-per-channel"


FULL_RANGE = Int8Settings()  # CPUs with VNNI: exact 32-bit sums, all 8 bits of the weights
SATURATION_SAFE = Int8Settings(reduce_range=True)  # every other CPU


def cache_folder() -> Path:
    """$UNETGAN_CACHE, else $XDG_CACHE_HOME/unetgan, else ~/.cache/unetgan."""
    if os.environ.get("UNETGAN_CACHE"):
        return Path(os.environ["UNETGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unetgan"


@functools.cache
def phantom_frames() -> tuple[tuple[np.ndarray, tuple], ...]:
    """The end-diastolic and end-systolic frames (Z, Y, X) and their spacing per vendor profile: the
    calibration images, simulated once (a few seconds) and kept in the cache folder."""
    stored = cache_folder() / f"calibration-v{CALIBRATION_VERSION}.npz"
    if stored.is_file():
        with np.load(stored) as arrays:
            count = len(arrays.files) // 2
            return tuple((arrays[f"frame{i}"], tuple(arrays[f"spacing{i}"])) for i in range(count))
    from .phantom.profiles import VENDORS
    from .phantom.study import make_study

    frames = []
    for vendor in VENDORS:
        study = make_study(vendor, seed=CALIBRATION_SEED, n_phases=2, n_slices=CALIBRATION_SLICES)
        frames += [(study.image[t], tuple(study.spacing)) for t in (study.ed_frame, study.es_frame)]
    _write_atomically(stored, lambda f: np.savez(f, **{k: v for i, (frame, spacing) in enumerate(frames)
                                                       for k, v in ((f"frame{i}", frame), (f"spacing{i}", spacing))}))
    return tuple(frames)


def _write_atomically(path: Path, write) -> None:
    """write(file object) into path, whole or not at all: two processes filling the cache at once both
    leave a whole file. A cache that cannot be written (a read-only home, a full disk) only costs the next
    process the calibration again: it is logged, never raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
            try:
                write(part)
            except BaseException:
                os.unlink(part.name)
                raise
        os.replace(part.name, path)
    except OSError as err:
        logging.getLogger(__name__).warning("could not keep %s in the cache folder (%s); set UNETGAN_CACHE to a "
                                            "writable folder to calibrate once", path.name, err)


def calibration_batches(prepare) -> list[np.ndarray]:
    """Network inputs (N, C, H, W) float32 in batches: prepare(frame, spacing) -> network-input tensor."""
    slices = np.concatenate([prepare(frame, spacing).numpy() for frame, spacing in phantom_frames()])
    return [slices[i : i + CALIBRATION_BATCH] for i in range(0, len(slices), CALIBRATION_BATCH)]


def cache_key(model_bytes: bytes, settings: Int8Settings) -> str:
    """The float32 model's bytes, the quantization settings and the versions that make the int8 model."""
    import onnxruntime

    made_by = f"{onnxruntime.__version__}/{CALIBRATION_VERSION}/{GRAPH_VERSION}/{settings.name}"
    return hashlib.sha256(model_bytes + made_by.encode()).hexdigest()[:32]


def quantized_model(model_bytes: bytes, prepare, settings: Int8Settings = FULL_RANGE) -> bytes:
    """The int8 ONNX model of a float32 one (its bytes), from the cache or calibrated now."""
    cached = cache_folder() / f"{cache_key(model_bytes, settings)}.int8.onnx"
    if cached.is_file():
        return cached.read_bytes()
    quantized = _quantize(model_bytes, calibration_batches(prepare), settings)
    _write_atomically(cached, lambda part: part.write(quantized))
    return quantized


def _quantize(model_bytes: bytes, batches: list[np.ndarray], settings: Int8Settings = FULL_RANGE) -> bytes:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.remaining = iter(batches)

        def get_next(self):
            batch = next(self.remaining, None)
            return None if batch is None else {"x": batch}

    # the quantizer logs a root-logger warning per 1-D constant it leaves per-tensor (instance-norm scales):
    # dozens of lines a user cannot act on, so they go to the debug level
    quiet = _RootWarningsToDebug()
    logging.getLogger().addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plain, prepared, quantized = (Path(tmp) / n for n in ("plain.onnx", "prepared.onnx", "int8.onnx"))
            plain.write_bytes(model_bytes)
            quant_pre_process(plain, prepared)  # shape inference and graph fusions first, as ONNX Runtime advises
            quantize_static(prepared, quantized, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=settings.reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
            return _pad_quantized_tensors(quantized.read_bytes())
    finally:
        logging.getLogger().removeFilter(quiet)


def _pad_quantized_tensors(model_bytes: bytes) -> bytes:
    """Reflection padding on the 8-bit tensors instead of the float ones.

    The quantizer wraps every Pad in DequantizeLinear -> Pad -> QuantizeLinear with the same scale and zero
    point on both sides, and ONNX Runtime keeps that sandwich (it drops Q/DQ pairs around Transpose or
    MaxPool, not around Pad): the generator's 16 reflection pads then spent a quarter of its time converting
    whole feature maps to float and back. Padding copies values, so padding the 8-bit tensor gives exactly
    the same numbers; this rewires each such Pad to read the DequantizeLinear's input and write the
    QuantizeLinear's output, and drops them (the DequantizeLinear only where nothing else reads it)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {name: node for node in graph.node for name in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def same_parameters(a, b) -> bool:
        return len(a.input) == len(b.input) and all(
            x in constants and y in constants and np.array_equal(constants[x], constants[y])
            for x, y in zip(a.input[1:3], b.input[1:3], strict=True))

    def copies_values(pad) -> bool:  # a constant pad's fill value is in float units: not for the 8-bit tensor
        mode = next((a.s.decode() for a in pad.attribute if a.name == "mode"), "constant")
        return mode in ("reflect", "edge")

    dropped = set()
    for pad in [n for n in graph.node if n.op_type == "Pad" and copies_values(n)]:
        before, after = producer.get(pad.input[0]), consumers.get(pad.output[0], [])
        if (before is None or before.op_type != "DequantizeLinear" or len(after) != 1
                or after[0].op_type != "QuantizeLinear" or not same_parameters(before, after[0])
                or any(o.name == after[0].output[0] for o in graph.output)):
            continue
        pad.input[0], pad.output[0] = before.input[0], after[0].output[0]
        dropped.add(id(after[0]))
        if len(consumers[before.output[0]]) == 1:  # else the float tensor still feeds a residual sum
            dropped.add(id(before))
    kept = [n for n in graph.node if id(n) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    return model.SerializeToString()


class _RootWarningsToDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.name == "root" and "out-of-range for weight" in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True
