"""Which algorithm made a result: program name and version, the LV-Unet and the adapter with their SHA256.

The same identification goes into the SEG (AlgorithmIdentificationSequence), the SR
(TID 4019 Algorithm Identification) and the PDF, so that a result in PACS can be traced
to the exact weight files that made it.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from ..registry import find_model
from ..weights import sha256_of

PROGRAM = "UnetGANSlicer"


def program_version() -> str:
    try:
        return metadata.version("unetgan-slicer")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


@dataclass(frozen=True)
class AlgorithmInfo:
    segmenter: str  # registry name or file stem
    segmenter_sha256: str
    adapter: str | None = None  # None: no adapter
    adapter_sha256: str | None = None
    version: str = ""

    @classmethod
    def of(cls, segmenter: str | None, adapter: str | None) -> "AlgorithmInfo":
        """From the names (or files) the run used; None segmenter: the registry's default."""
        model = find_model(segmenter, "segmenter")
        info = {"segmenter": model.name, "segmenter_sha256": model.sha256 or sha256_of(model.file),
                "version": program_version()}
        if adapter not in (None, "none"):
            entry = find_model(adapter, "adapter")
            info.update(adapter=entry.name, adapter_sha256=entry.sha256 or sha256_of(entry.file))
        return cls(**info)

    @property
    def parameters(self) -> dict[str, str]:
        """Name -> value, for the SEG's AlgorithmParameters and the SR's parameters."""
        found = {"segmenter": f"{self.segmenter} sha256:{self.segmenter_sha256}"}
        found["adapter"] = f"{self.adapter} sha256:{self.adapter_sha256}" if self.adapter else "none"
        return found

    def shown(self) -> str:
        adapter = f"adapter {self.adapter} (sha256 {self.adapter_sha256[:12]})" if self.adapter else "no adapter"
        return f"{PROGRAM} {self.version}: LV-Unet {self.segmenter} (sha256 {self.segmenter_sha256[:12]}), {adapter}"
