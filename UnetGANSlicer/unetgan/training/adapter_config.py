"""The hyper-parameters of an adapter training run (`AdapterConfig`) and what a run returns (`TrainResult`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..networks.generator import GeneratorConfig

@dataclass
class AdapterConfig:
    """Hyper-parameters of one adapter training run.

    Learning rate: the paper uses Adam at 1e-5 (``paper()``), which suits its
    long GPU runs. ``fast()`` uses the reference CycleGAN's 2e-4 with Adam
    betas (0.5, 0.999): with only a few thousand iterations on a CPU, 1e-5
    barely moves the networks, and beta1 = 0.5 is CycleGAN's (and DCGAN's)
    remedy for the oscillation momentum causes in the adversarial game.

    bf16 is off by default: on a CPU without AVX-512 bf16 (e.g. AVX2-only
    AMD EPYC) bf16 autocast made generator iterations about 25x slower, not
    faster. channels_last gave nothing measurable for these small networks.

    ``residual_output`` (fast preset): the generators start as the identity
    (see ``networks.generator``), so every checkpoint keeps the anatomy from
    the first iteration and a short run can only move away from "no
    adaptation" as far as the losses allow; the paper preset keeps the
    reference generator.

    ``lambda_unet`` is the paper's 15, but the feature loss's scale depends on
    the LV-Unet's feature magnitudes, and it is minimised by the identity: it
    charges every change of the frozen network's features, the wanted ones
    included. On a synthetic vendor pair, L_Unet of the *perfect*
    translation (6.6) was 7x that of a 4-pixel shift of the anatomy (0.9) for
    a U-Net trained without intensity augmentation. Calibrate it for the
    LV-Unet in use (an LV-Unet trained with intensity augmentation has more
    vendor-invariant features, which is what this loss assumes).
    """

    # generators
    filters: int = 32
    n_blocks: int = 6
    upsample_mode: str = "nearest"
    residual_output: bool = True
    # discriminators
    disc_filters: int = 64
    disc_layers: int = 3
    # optimisation
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_fraction: float = 0.5  # linear decay to 0 over this last fraction of the iterations (CycleGAN)
    batch_size: int = 1
    iterations: int = 2000
    time_limit_s: float | None = None  # per call: stop (then evaluate and save) after this many seconds
    # losses
    lambda_unet: float = 15.0
    lambda_ssim: float = 5.0
    lambda_l1: float = 10.0  # only for cycle_loss="l1" (CycleGAN's weight)
    lambda_ssim_translation: float = 0.0
    ssim_alpha: float = 0.1
    ssim_beta: float = 0.1
    ssim_gamma: float = 1.0
    cycle_loss: str = "ssim"  # "ssim" | "l1"
    use_feature_loss: bool = True
    pool_size: int = 50
    # data
    crop_size: int | None = 128  # random crops for training; None = whole slices. Inference is always 192.
    flip_augment: bool = True
    # evaluation / checkpoint selection
    eval_every: int = 200
    n_eval_slices: int = 24
    n_sample_slices: int = 4
    # runtime
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    bf16: bool = False  # bf16 autocast (CPU or GPU); losses stay float32
    channels_last: bool = False

    @classmethod
    def fast(cls, **overrides) -> "AdapterConfig":
        """For 2 CPU cores: 16 filters / 6 blocks (3.0 GFLOP per 192x192 image against the
        reference's 63), batches of two 128x128 crops, 1500 iterations; about 1.2 s per
        iteration on one loaded AVX2 core, so about 30 minutes, capped at 40."""
        base = cls(
            filters=16, n_blocks=6, residual_output=True, disc_filters=32, disc_layers=3,
            lr=2e-4, batch_size=2, iterations=1500, crop_size=128, eval_every=250, n_eval_slices=24,
            time_limit_s=40 * 60,
        )
        return replace(base, **overrides)

    @classmethod
    def paper(cls, **overrides) -> "AdapterConfig":
        """The paper's settings (Adam 1e-5, lambdas 15 / 5, SSIM exponents 0.1 / 0.1 / 1) with the
        reference CycleGAN networks (64 filters, 9 blocks, 70x70 PatchGAN) on whole 192x192
        slices, for a GPU. The paper gives no iteration count; 100k at batch 1 is about 60
        passes over its 1680 Siemens images."""
        base = cls(
            filters=64, n_blocks=9, residual_output=False, disc_filters=64, disc_layers=3,
            lr=1e-5, batch_size=1, iterations=100_000, crop_size=None, eval_every=2000, n_eval_slices=64,
            device="auto", bf16=False,
        )
        return replace(base, **overrides)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.cycle_loss not in ("ssim", "l1"):
            raise ValueError(f"cycle_loss must be 'ssim' or 'l1', not {self.cycle_loss!r}")
        if self.crop_size is not None and (self.crop_size % 4 or self.crop_size < 16):
            raise ValueError("crop_size must be a multiple of 4 and at least 16")
        if self.iterations < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise ValueError("iterations, eval_every and batch_size must be positive")

    def generator_config(self) -> GeneratorConfig:
        # The generator's fields stay flat here (not a nested GeneratorConfig): this dict is written
        # into every checkpoint and adapter file, and resuming reads those flat keys back.
        return GeneratorConfig(filters=self.filters, n_blocks=self.n_blocks, upsample_mode=self.upsample_mode,
                               residual_output=self.residual_output)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["betas"] = list(self.betas)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "AdapterConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainResult:
    adapter_path: Path  # best G_S by the label-free criterion
    checkpoint_dir: Path  # everything needed to resume
    iterations: int  # iterations done in total (including resumed ones)
    best_iteration: int
    best_score: float
    identity_score: float  # the criterion on the untranslated target images, for comparison
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
