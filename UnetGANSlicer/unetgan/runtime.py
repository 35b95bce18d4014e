"""Where the networks run at inference: torch (the reference) or ONNX Runtime.

On this project's 2-core AMD EPYC machines ONNX Runtime ran both networks 1.3-1.6x faster than torch
for the same weights, with outputs equal to about 1e-6 (docs/benchmarks.md measures the time and the
Dice change on the real dev data). `auto` picks ONNX Runtime on a CPU when the package is installed,
else torch; a GPU always runs torch. Training always uses torch.

The network is exported to ONNX in memory when it is loaded (a fraction of a second; nothing is
written to disk), from the same module the torch runtime would run.
"""
from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from .errors import InputError

RUNTIMES = ("auto", "torch", "onnx")


def onnx_available() -> bool:
    """ONNX Runtime to run the networks and onnx for torch's exporter to write them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(requested: str, device: torch.device | str) -> str:
    """"torch" or "onnx" for this request and device."""
    if requested not in RUNTIMES:
        raise InputError(f"unknown runtime {requested!r}; choose from {', '.join(RUNTIMES)}")
    on_cpu = torch.device(device).type == "cpu"
    if requested == "onnx" and not on_cpu:
        raise InputError("--runtime onnx runs on the CPU only; use --runtime torch (or auto) with --device cuda")
    if requested == "onnx" and not onnx_available():
        raise InputError("--runtime onnx needs the onnxruntime and onnx packages (pip install onnxruntime onnx); or use --runtime torch")
    if requested == "auto":
        return "onnx" if on_cpu and onnx_available() else "torch"
    return requested


class OnnxModule(nn.Module):
    """A torch module's forward pass, exported to ONNX and run by ONNX Runtime (float32, CPU).

    Batch, height and width stay dynamic: one session serves the whole field and every heart-box size."""

    def __init__(self, module: nn.Module, channels: int = 1):
        super().__init__()
        import onnxruntime

        buffer = io.BytesIO()
        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings():  # the exporter's deprecation and tracing notices
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), torch.zeros(1, channels, 64, 64), buffer, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": axes, "y": axes}, opset_version=17, dynamo=False)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the process's share of the cores, as torch has
        options.inter_op_num_threads = 1
        # no busy-waiting between runs: the numpy and torch stages between two network calls need the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # activations are freed after each run instead of kept in an arena: a large study's peak memory stays
        # that of the torch runtime (the arena held ~0.5 GB more; it was 5-15% faster per network call)
        options.enable_cpu_mem_arena = False
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"x": array})[0])


class _Convolutions(nn.Module):
    """A generator without its last step (the residual sum and tanh, which stay in torch)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.body, self.head = generator.body, generator.head

    def forward(self, x):
        return self.head(self.body(x))


class _OnnxNetwork(nn.Module):
    """A torch network (kept as `reference`: weights, config, metadata) whose convolutions run on ONNX Runtime."""

    def __init__(self, network: nn.Module, exported: nn.Module, channels: int = 1):
        super().__init__()
        self.reference = network
        self.config, self.metadata = network.config, getattr(network, "metadata", None)
        self.onnx = OnnxModule(exported, channels)


class OnnxLVUnet(_OnnxNetwork):
    def __init__(self, network: nn.Module):
        super().__init__(network, network)

    def forward(self, x):
        return self.onnx(x)


class OnnxGenerator(_OnnxNetwork):
    def __init__(self, generator: nn.Module):
        super().__init__(generator, _Convolutions(generator), generator.config.in_channels)

    def forward(self, x):
        self.reference.check_size(x)
        return self.reference.output(x, self.onnx(x))

    def is_identity(self) -> bool:
        return self.reference.is_identity()

    def identity_output(self, x):
        return self.reference.identity_output(x)


def on_runtime(network: nn.Module | None, runtime: str) -> nn.Module | None:
    """The network as the resolved runtime ("torch" or "onnx") runs it."""
    if network is None or runtime == "torch":
        return network
    from .networks.generator import ResnetGenerator

    if isinstance(network, ResnetGenerator):
        return network if network.is_identity() else OnnxGenerator(network)
    return OnnxLVUnet(network)
