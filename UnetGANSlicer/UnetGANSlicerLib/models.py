"""The models the module offers, read from ``Resources/Models/models.json`` without torch.

The GUI lists adapters and segmenters before dependencies are installed, so this
reads the registry file with ``json`` only (the backend's ``unetgan.registry``
imports torch).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "Resources" / "Models"
REGISTRY_FILE = MODELS_DIR / "models.json"


@dataclass(frozen=True)
class ModelChoice:
    name: str
    kind: str  # "segmenter" | "adapter"
    file: Path
    label: str
    target_vendor: str | None = None
    source_vendor: str | None = None
    description: str = ""

    @property
    def available(self) -> bool:
        return self.file.is_file()


def available_models(kind: str | None = None, registry: Path = REGISTRY_FILE) -> list[ModelChoice]:
    """Registry entries (of one kind), in file order; an absent or broken registry gives []."""
    try:
        data = json.loads(Path(registry).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    choices = []
    for raw in data.get("models", []):
        if kind is not None and raw.get("kind") != kind:
            continue
        target = raw.get("target_vendor")
        label = raw["name"] if not target or raw.get("kind") != "adapter" else f"{target} ({raw['name']})"
        choices.append(ModelChoice(
            name=raw["name"], kind=raw.get("kind", ""), file=(Path(registry).parent / raw.get("file", "")).resolve(),
            label=label, target_vendor=target, source_vendor=raw.get("source_vendor"),
            description=raw.get("description", ""),
        ))
    return choices
