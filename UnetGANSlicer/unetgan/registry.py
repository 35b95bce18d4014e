"""Model files: the registry (`Resources/Models/models.json`), SHA256 checks and safe loading.

Weights are safetensors only, never pickles: loading runs no code from the file. The
architecture comes from the file's metadata, so a file for another architecture or
size is rejected with a clear message before any inference.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent.parent / "Resources" / "Models"
REGISTRY_FILE = MODELS_DIR / "models.json"
REGISTRY_ENV = "UNETGAN_REGISTRY"  # a user's own models.json instead of the bundled one
SAFETENSORS_MAGIC_LIMIT = 100 * 1024 * 1024  # a header larger than this is not ours


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "segmenter" | "adapter"
    file: Path
    sha256: str | None
    source_vendor: str | None = None
    target_vendor: str | None = None
    description: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def registry_file() -> Path:
    return Path(os.environ.get(REGISTRY_ENV, REGISTRY_FILE))


def read_registry(path: Path | None = None) -> list[ModelEntry]:
    path = Path(path or registry_file())
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelError(f"model registry {path} is not valid JSON: {err}") from None
    entries = []
    try:
        for number, raw in enumerate(data.get("models", []), start=1):
            missing = [key for key in ("name", "kind", "file") if not isinstance(raw.get(key), str)]
            if missing:
                raise ModelError(f"model registry {path}: entry {number} lacks {', '.join(missing)} (expected text values)")
            entries.append(ModelEntry(
                name=raw["name"], kind=raw["kind"], file=(path.parent / raw["file"]).resolve(), sha256=raw.get("sha256"),
                source_vendor=raw.get("source_vendor"), target_vendor=raw.get("target_vendor"),
                description=raw.get("description", ""),
            ))
    except (AttributeError, TypeError) as err:  # not an object with a "models" list of objects
        raise ModelError(f"model registry {path} is not of the expected form {{\"models\": [{{...}}, ...]}} ({err})") from None
    return entries


def find_model(name_or_path: str | os.PathLike | None, kind: str, registry: Path | None = None) -> ModelEntry:
    """A registry entry by name (or target vendor, for adapters), or an unregistered file by path."""
    entries = [e for e in read_registry(registry) if e.kind == kind]
    if name_or_path is None:
        defaults = [e for e in entries if e.name.endswith("default")] or entries[:1]
        if not defaults:
            raise ModelError(f"no {kind} in the registry {registry or registry_file()}; pass a model file")
        return defaults[0]
    text = str(name_or_path)
    for entry in entries:
        if text.lower() in (entry.name.lower(), (entry.target_vendor or "").lower()):
            return entry
    path = Path(text)
    if path.suffix == ".safetensors" or path.exists():
        return ModelEntry(name=path.stem, kind=kind, file=path, sha256=None)
    names = ", ".join(e.name for e in entries) or "none"
    raise ModelError(f"unknown {kind} {text!r}: not in the registry ({names}) and not a file")


def verify(entry: ModelEntry) -> None:
    if not entry.file.is_file():
        raise ModelError(f"model file not found: {entry.file}")
    if entry.sha256 and sha256_of(entry.file) != entry.sha256:
        raise ModelError(f"{entry.file.name} does not match its SHA256 in the registry: damaged or replaced; refusing to load it")


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a safetensors file; anything else (a pickle, a truncated file) is refused."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if len(head) < 8 or int.from_bytes(head, "little") > SAFETENSORS_MAGIC_LIMIT:
        raise ModelError(f"{path.name} is not a safetensors file (pickled or damaged weights are never loaded)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{path.name} is damaged or not a safetensors file ({err})") from None
    try:
        return tensors, {k: json.loads(v) for k, v in metadata.items()}
    except json.JSONDecodeError:
        raise ModelError(f"{path.name} was not written by UnetGANSlicer (its metadata is not JSON)") from None


def write_weights(module: torch.nn.Module, path: Path, metadata: dict) -> str:
    """Save atomically; metadata values are JSON-encoded. Returns the file's SHA256."""
    from .outputs import atomic_path

    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(Path(path)) as tmp:
        save_file(state, str(tmp), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return sha256_of(path)


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str) -> torch.nn.Module:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{name} does not fit the architecture it declares ({str(err).splitlines()[0]})") from None
    return module.eval()


def load_lvunet(name_or_path=None, registry: Path | None = None):
    """The LV-Unet segmenter: by registry name, by file, or the registry's default."""
    from .networks.lvunet import LVUnet, LVUnetConfig

    entry = find_model(name_or_path, "segmenter", registry)
    verify(entry)
    tensors, metadata = read_weights(entry.file)
    if metadata.get("architecture") != "LVUnet":
        raise ModelError(f"{entry.file.name} is not an LV-Unet (architecture: {metadata.get('architecture', 'unknown')})")
    model = LVUnet(LVUnetConfig.from_dict(metadata.get("config", {})))
    model.metadata = metadata
    # the shipped segmenters are only ever run frozen (inference, adapter training), never trained further
    return load_state(model, tensors, entry.file.name).fold_batch_norms()


def load_adapter(name_or_path, registry: Path | None = None):
    """An adapter's generator G_S (target -> source): by target vendor, registry name or file."""
    from .training.train_adapter import load_generator

    entry = find_model(name_or_path, "adapter", registry)
    verify(entry)
    read_weights(entry.file)  # refuses pickles and damaged files before the generator is built
    try:
        return load_generator(entry.file).eval()
    except ModelError:
        raise
    except (ValueError, KeyError, RuntimeError) as err:
        raise ModelError(f"{entry.file.name} is not a usable adapter ({str(err).splitlines()[0]})") from None


def paired_segmenter(generator) -> str | None:
    """The LV-Unet an adapter was trained against (its features guided the GAN): segment with that one."""
    return (getattr(generator, "metadata", None) or {}).get("segmenter")


def register_model(file: Path, name: str, kind: str, command: str, source_vendor: str | None = None,
                   target_vendor: str | None = None, description: str = "", registry: Path | None = None,
                   copy: bool = True) -> ModelEntry:
    """Add (or replace) a registry entry with the file's SHA256 and the command that made it."""
    registry = Path(registry or registry_file())
    registry.parent.mkdir(parents=True, exist_ok=True)
    read_weights(file)  # only valid safetensors files get registered
    target = registry.parent / Path(file).name if copy else Path(file).resolve()
    if copy and Path(file).resolve() != target.resolve():
        import shutil

        shutil.copyfile(file, target)
    data = json.loads(registry.read_text()) if registry.is_file() else {"models": []}
    data["models"] = [m for m in data["models"] if m["name"] != name]
    relative = os.path.relpath(target, registry.parent)
    data["models"].append({"name": name, "kind": kind, "file": relative, "sha256": sha256_of(target),
                           "source_vendor": source_vendor, "target_vendor": target_vendor,
                           "description": description, "command": command})
    from .outputs import atomic_path

    with atomic_path(registry) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    return find_model(name, kind, registry)
