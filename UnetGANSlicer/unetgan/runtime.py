"""Where the networks run at inference: torch (the reference), ONNX Runtime, or ONNX Runtime in int8.

On this project's 2-core AMD EPYC machines (with AVX-512 VNNI) ONNX Runtime ran the networks up to 1.6x
faster than torch for the same weights, with outputs equal to about 1e-6; in int8 (quantize.py) the LV-Unet
ran another 2.5x and the generator 1.6-2x faster; what int8 changes in the mean Dice on the real dev data, and on
which CPU, is measured in docs/benchmarks.md and docs/int8_safety.md.
`auto` picks int8 ONNX Runtime on x86 CPUs with AVX2 or newer, float32 ONNX Runtime on other CPUs (torch when
the package is missing); a GPU always runs torch. Training always uses torch. int8 on a CPU with 8-bit
dot-product instructions (VNNI) uses 8-bit weights; without VNNI, 7-bit weights (quantize.SATURATION_SAFE),
which ONNX Runtime's 16-bit pairwise sums there cannot saturate: such a CPU then computes the same integers as a
VNNI one would with those weights, and their masks are within a few thousandths of float32's Dice on the dev
data (docs/int8_safety.md, which also runs them on an emulated AVX2 CPU).

The network is exported to ONNX in memory when it is loaded (a fraction of a second), from the same
module the torch runtime would run; only the int8 model is kept on disk (a cache: calibration takes
seconds).
"""
from __future__ import annotations

import functools
import io
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from .errors import InputError

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
ONNX_RUNTIMES = ("onnx", "onnx-int8")


def onnx_available() -> bool:
    """ONNX Runtime to run the networks and onnx for torch's exporter to write them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


INSTRUCTION_SETS = ("vnni", "avx512", "avx2", "other")
INSTRUCTION_SET_ENV = "UNETGAN_INSTRUCTION_SET"


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read().split("\n\n", 1)[0]
    except OSError:
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def _cpu_flags() -> set[str]:
    """The CPU's feature flags in /proc/cpuinfo's spelling (avx2, avx512bw, avx512_vnni, avx_vnni)."""
    flags = _cpuinfo().get("flags")
    if flags is not None:
        return set(flags.split())
    # macOS, Windows: numpy's own run-time detection (CPUID), spelled the other way; the table is numpy's
    # private one, so if it moves the answer is "other" (float32 by default, 7-bit weights in int8: safe)
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return set()
    spelling = {"AVX2": "avx2", "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni"}
    return {ours for theirs, ours in spelling.items() if __cpu_features__.get(theirs)}


@functools.cache
def instruction_set() -> str:
    """The CPU's widest instructions for ONNX Runtime's 8-bit convolutions, one of INSTRUCTION_SETS.

    "vnni" (AVX-512 VNNI or AVX-VNNI): 8-bit products summed in 32 bits, fast and exact. "avx512" and "avx2"
    without VNNI: the products are summed pairwise in 16 bits and can saturate (ONNX Runtime's quantization
    guide), so the weights are quantized in 7 bits there (int8_settings). "other": neither (older x86, Arm).
    `$UNETGAN_INSTRUCTION_SET` overrides the detection (a virtual machine may report instructions its host
    lacks; a benchmark may imitate another CPU's choice of runtime)."""
    forced = os.environ.get(INSTRUCTION_SET_ENV, "").strip().lower()
    if forced:
        if forced not in INSTRUCTION_SETS:
            raise InputError(f"{INSTRUCTION_SET_ENV}={forced!r} is not one of {', '.join(INSTRUCTION_SETS)}")
        return forced
    flags = _cpu_flags()
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "vnni"
    if "avx512bw" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


def integer_dot_product() -> bool:
    """Whether the CPU has the 8-bit dot-product instructions (VNNI) that sum 8-bit products in 32 bits: int8 uses
    full-range weights there (int8_settings)."""
    return instruction_set() == "vnni"


def int8_by_default() -> bool:
    """Whether `auto` runs int8: on x86 CPUs with ONNX Runtime's integer kernels (AVX2 and newer), in 7-bit
    weights where VNNI is missing; elsewhere float32."""
    return instruction_set() in ("vnni", "avx512", "avx2")


def int8_settings():
    """The quantization for this CPU: full-range 8-bit weights with VNNI, 7-bit weights (ONNX Runtime's
    reduce_range, which cannot saturate) on every other CPU."""
    from .quantize import FULL_RANGE, SATURATION_SAFE

    return FULL_RANGE if integer_dot_product() else SATURATION_SAFE


def cpu_description() -> dict[str, str | bool]:
    """The CPU a figure was measured on: its model name, instruction set, VNNI or not, and the int8 setting."""
    import platform

    name = _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown"
    return {"model": name, "instruction_set": instruction_set(), "vnni": integer_dot_product(),
            "int8_weights": int8_settings().name}


def resolve_runtime(requested: str, device: torch.device | str) -> str:
    """"torch", "onnx" or "onnx-int8" for this request and device."""
    if requested not in RUNTIMES:
        raise InputError(f"unknown runtime {requested!r}; choose from {', '.join(RUNTIMES)}")
    on_cpu = torch.device(device).type == "cpu"
    if requested in ONNX_RUNTIMES and not on_cpu:
        raise InputError(f"--runtime {requested} runs on the CPU only; use --runtime torch (or auto) with --device cuda")
    if requested in ONNX_RUNTIMES and not onnx_available():
        raise InputError(f"--runtime {requested} needs the onnxruntime and onnx packages (pip install onnxruntime onnx); "
                         "or use --runtime torch")
    if requested == "auto":
        if not (on_cpu and onnx_available()):
            return "torch"
        return "onnx-int8" if int8_by_default() else "onnx"
    return requested


def exported_model(module: nn.Module, channels: int = 1) -> bytes:
    """The module's float32 ONNX model (input "x", output "y"; batch, height and width dynamic)."""
    buffer = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the exporter's deprecation and tracing notices
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), torch.zeros(1, channels, 64, 64), buffer, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": axes, "y": axes}, opset_version=17, dynamo=False)
    return buffer.getvalue()


class OnnxModule(nn.Module):
    """A torch module's forward pass, exported to ONNX and run by ONNX Runtime (CPU).

    Batch, height and width stay dynamic: one model serves the whole field and every heart-box size.
    calibration: prepare(frame, spacing) -> the module's input for an image; given, the model runs in int8
    (quantize.py). With n threads, n one-thread sessions each run a share of the batch at once: the
    networks' small convolutions scale poorly inside one session (the generator ran 1.5x faster on
    2 cores this way; the LV-Unet about the same)."""

    def __init__(self, module: nn.Module, channels: int = 1, calibration=None):
        super().__init__()
        import onnxruntime

        model = exported_model(module, channels)
        if calibration is not None:
            from .quantize import quantized_model

            model = quantized_model(model, calibration, int8_settings())
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        # no busy-waiting between runs: the numpy and torch stages between two network calls need the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # activations are freed after each run instead of kept in an arena: a large study's peak memory stays
        # that of the torch runtime (the arena held ~0.5 GB more; it was 5-15% faster per network call)
        options.enable_cpu_mem_arena = False
        self.sessions = [onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
                         for _ in range(max(1, torch.get_num_threads()))]  # the process's share of the cores
        self._pool, self._pool_lock = None, threading.Lock()  # two frames may run at once (inference.py)

    def _run(self, session, array: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": array})[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        shares = np.array_split(array, max(1, min(len(self.sessions), len(array))))
        if len(shares) == 1:
            return torch.from_numpy(self._run(self.sessions[0], array))
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self.sessions), thread_name_prefix="onnx")
        # ONNX Runtime releases the GIL while it runs, so the shares run on separate cores
        return torch.from_numpy(np.concatenate(list(self._pool.map(self._run, self.sessions, shares))))


class _Convolutions(nn.Module):
    """A generator without its last step (the residual sum and tanh, which stay in torch)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.body, self.head = generator.body, generator.head

    def forward(self, x):
        return self.head(self.body(x))


def _lvunet_input(network):
    def prepare(frame, spacing):
        from .preprocess import prepare_volume, with_neighbours

        return with_neighbours(prepare_volume(frame, spacing)[0], network.config.context_slices)

    return prepare


def _generator_input(generator):
    def prepare(frame, spacing):
        from .inference import adapter_slices

        return adapter_slices(frame, spacing, generator) * 2 - 1  # the generator works in [-1, 1]

    return prepare


class _OnnxNetwork(nn.Module):
    """A torch network (kept as `reference`: weights, config, metadata) whose convolutions run on ONNX Runtime."""

    def __init__(self, network: nn.Module, exported: nn.Module, channels: int = 1, calibration=None):
        super().__init__()
        self.reference = network
        self.config, self.metadata = network.config, getattr(network, "metadata", None)
        self.onnx = OnnxModule(exported, channels, calibration)


class OnnxLVUnet(_OnnxNetwork):
    def __init__(self, network: nn.Module, int8: bool = False):
        super().__init__(network, network, network.config.in_channels, _lvunet_input(network) if int8 else None)

    def forward(self, x):
        return self.onnx(x)


class OnnxGenerator(_OnnxNetwork):
    def __init__(self, generator: nn.Module, int8: bool = False):
        super().__init__(generator, _Convolutions(generator), generator.config.in_channels,
                         _generator_input(generator) if int8 else None)

    def forward(self, x):
        self.reference.check_size(x)
        return self.reference.output(x, self.onnx(x))

    def is_identity(self) -> bool:
        return self.reference.is_identity()

    def identity_output(self, x):
        return self.reference.identity_output(x)


def on_runtime(network: nn.Module | None, runtime: str) -> nn.Module | None:
    """The network as the resolved runtime ("torch", "onnx" or "onnx-int8") runs it."""
    if network is None or runtime == "torch":
        return network
    from .networks.generator import ResnetGenerator

    int8 = runtime == "onnx-int8"
    if isinstance(network, ResnetGenerator):
        return network if network.is_identity() else OnnxGenerator(network, int8)
    return OnnxLVUnet(network, int8)
