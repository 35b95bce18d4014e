"""CycleGAN ResNet generator (Johnson et al. 2016 / Zhu et al. 2017), adapted.

Layout: c7s1-F, d2F, d4F (stride-2 downsamplings), ``n_blocks`` residual
blocks at 4F, u2F, uF, c7s1-1, tanh. Instance norm, reflection padding.

Differences from the reference CycleGAN generator, and why:

- The upsamplings are ``Upsample(x2) + 3x3 conv`` instead of transposed
  convolutions: transposed convolutions with stride 2 and kernel 3 overlap
  unevenly and leave checkerboard artifacts (Odena et al., Distill 2016),
  which a segmentation network downstream may read as texture.
- Optional ``residual_output``: the network predicts a change to its input,
  ``y = tanh(atanh(x') + head(h))`` with ``x'`` the input clamped to
  [-0.995, 0.995], and the last convolution starts at zero. An untrained
  generator is then (almost exactly) the identity, so training starts from
  "the target image as it is" rather than from noise. Vendor translation
  is mostly an intensity/texture change on fixed anatomy, so this start is
  already close; it lets a short CPU budget be spent on the change itself.
  ``atanh`` keeps the output inside (-1, 1) for any residual.

- Optional ``edge_kernel``: the first and last convolutions' kernel (7 in the reference). On 8-bit ONNX
  Runtime the last one (one output channel at full resolution) took 40% of a small generator's time; the
  distilled Siemens adapter (training/distill_adapter.py) uses 3.

Images are (N, C, H, W) in [-1, 1]; H and W must be divisible by 4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..weights import load_state, read_weights, write_weights

# Keeps atanh finite for inputs at exactly +-1 (the clamp only touches the
# extreme 0.25 % of the intensity range).
_INPUT_CLAMP = 0.995


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator from its saved weights."""

    in_channels: int = 1
    out_channels: int = 1
    filters: int = 64
    n_blocks: int = 9
    upsample_mode: str = "nearest"  # "nearest" | "bilinear"
    residual_output: bool = False
    edge_kernel: int = 7  # the first and last convolutions' kernel (the reference's c7s1)


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    pad = kernel // 2
    layers: list[nn.Module] = []
    if stride == 1 and pad > 0:
        layers += [nn.ReflectionPad2d(pad), nn.Conv2d(c_in, c_out, kernel, bias=True)]
    else:
        # Stride-2 downsampling: the reference pads with zeros here.
        layers += [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, bias=True)]
    layers += [nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]
    return layers


class ResidualBlock(nn.Module):
    """Two 3x3 reflection-padded convs with instance norm and a skip."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator; see the module docstring."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        filters: int = 64,
        n_blocks: int = 9,
        upsample_mode: str = "nearest",
        residual_output: bool = False,
        edge_kernel: int = 7,
    ):
        super().__init__()
        if upsample_mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample_mode must be 'nearest' or 'bilinear', not {upsample_mode!r}")
        if residual_output and in_channels != out_channels:
            raise ValueError("residual_output needs in_channels == out_channels")
        if edge_kernel % 2 == 0:
            raise ValueError(f"edge_kernel must be odd (a centred kernel), not {edge_kernel}")
        self.config = GeneratorConfig(in_channels, out_channels, filters, n_blocks, upsample_mode, residual_output,
                                      edge_kernel)

        f = filters
        layers: list[nn.Module] = []
        layers += _conv_norm_relu(in_channels, f, edge_kernel)
        layers += _conv_norm_relu(f, 2 * f, 3, stride=2)
        layers += _conv_norm_relu(2 * f, 4 * f, 3, stride=2)
        layers += [ResidualBlock(4 * f) for _ in range(n_blocks)]
        for c_in, c_out in ((4 * f, 2 * f), (2 * f, f)):
            align = None if upsample_mode == "nearest" else False
            layers += [nn.Upsample(scale_factor=2, mode=upsample_mode, align_corners=align)]
            layers += _conv_norm_relu(c_in, c_out, 3)
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.ReflectionPad2d(edge_kernel // 2), nn.Conv2d(f, out_channels, edge_kernel))
        if residual_output:
            nn.init.zeros_(self.head[1].weight)
            nn.init.zeros_(self.head[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x)
        return self.output(x, self.head(self.body(x)))

    @staticmethod
    def check_size(x: torch.Tensor) -> None:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"generator input height and width must be divisible by 4, got {tuple(x.shape[-2:])}")

    def output(self, x: torch.Tensor, head_output: torch.Tensor) -> torch.Tensor:
        """The image from the last convolution's output (split from forward so that another runtime can run
        the convolutions and this finishes as torch does)."""
        if self.config.residual_output:
            base = torch.atanh(x.clamp(-_INPUT_CLAMP, _INPUT_CLAMP))
            head_output = head_output + base.to(head_output.dtype)
        return torch.tanh(head_output)


    def is_identity(self) -> bool:
        """True for a residual generator whose last convolution is all zeros (an untrained one, shipped when no
        trained checkpoint beat it): its output is then its input clamped to +-0.995, whatever the body computes."""
        return self.config.residual_output and all(not bool(p.any()) for p in self.head[1].parameters())

    def identity_output(self, x: torch.Tensor) -> torch.Tensor:
        """What forward() returns when is_identity(): tanh(atanh(clamp(x))) is clamp(x) up to float rounding."""
        return torch.tanh(torch.atanh(x.clamp(-_INPUT_CLAMP, _INPUT_CLAMP)))


def build_generator(config: GeneratorConfig | dict) -> ResnetGenerator:
    if isinstance(config, dict):
        config = GeneratorConfig(**config)
    return ResnetGenerator(**asdict(config))


def count_flops(model: nn.Module, size: int = 192, in_channels: int = 1) -> int:
    """Forward FLOPs (2 per multiply-add, convolutions and matmuls) for one image."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, in_channels, size, size, device=next(model.parameters()).device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


# --- adapter files ---------------------------------------------------------
# An adapter is one generator (G_S, target -> source) in a safetensors file,
# in the registry's format: metadata values are JSON, "architecture" names the
# class and "config" holds its constructor arguments, so the file alone
# rebuilds the network (no pickles, no code from the file).

ARCHITECTURE = "ResnetGenerator"


def save_generator(model: ResnetGenerator, path: str | Path, **metadata) -> str:
    """Write weights + architecture + extra metadata (JSON-able values) atomically; returns the SHA256."""
    meta = {"architecture": ARCHITECTURE, "config": asdict(model.config), **metadata}
    return write_weights(model, Path(path), meta)


def read_generator_metadata(path: str | Path) -> dict:
    """The adapter file's metadata, JSON-decoded, without building the network."""
    return read_weights(Path(path))[1]


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> ResnetGenerator:
    """Rebuild the generator described in the file's metadata and load its weights strictly.

    Returns the model in eval mode, its metadata on ``model.metadata``. Raises
    ``unetgan.errors.ModelError`` (a ValueError) when the file is not a
    generator or its weights do not fit the architecture it declares.
    """
    path = Path(path)
    tensors, metadata = read_weights(path)
    if metadata.get("architecture") != ARCHITECTURE:
        raise ModelError(f"{path.name} is not a Unet-GAN generator (architecture: {metadata.get('architecture', 'unknown')})")
    try:
        model = build_generator(metadata["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{path.name}: unusable generator config {metadata.get('config')}: {err}") from None
    model.metadata = metadata
    return load_state(model, tensors, path.name).to(device)


# --- identity adapters -------------------------------------------------------
# An adapter for which no trained checkpoint beat the untranslated image (by the label-free criterion) is
# the identity: histogram matching to the source, then the image as it is. It needs no weights; its
# registry entry points to a JSON file with the metadata the pipeline reads (histogram reference, the
# segmenter for its images, the training run that found no better checkpoint).


def identity_adapter(metadata: dict) -> ResnetGenerator:
    """A residual generator whose weights are all zero: its output is its input (clamped to +-0.995), and
    the pipeline skips its network (`is_identity`). `metadata` becomes `model.metadata`."""
    config = {**metadata.get("config", {}), "residual_output": True}
    model = build_generator(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    model.metadata = {**metadata, "architecture": ARCHITECTURE, "config": asdict(model.config), "identity": True}
    return model.eval()


def read_identity_metadata(path: str | Path) -> dict:
    """The metadata of an identity adapter's JSON file (ModelError if it is not one)."""
    import json

    path = Path(path)
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the identity adapter {path.name}: {err}") from None
    if not isinstance(metadata, dict) or metadata.get("identity") is not True:
        raise ModelError(f"{path.name} is not an identity adapter (no \"identity\": true)")
    return metadata


def load_identity_adapter(path: str | Path) -> ResnetGenerator:
    return identity_adapter(read_identity_metadata(path))
