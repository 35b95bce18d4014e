"""The model registries: which file a model name means, and its SHA256.

Two registries, read in this order when a name is resolved:

- the shipped one, `Resources/Models/models.json` (or a user's own, `$UNETGAN_REGISTRY`): the models the
  product runs, shipped in the wheel and the Slicer extension, the only ones a user's list shows;
- the research registry, `research/models.json` of a source checkout (or `$UNETGAN_RESEARCH_REGISTRY`):
  the ablation, held-out and earlier models that `unetgan evaluate`, `make results` and the research
  recipes name. It is not in the wheel or the extension, so there it is simply absent.

Reading and writing weight files is `weights.py` (re-exported here for older callers); building a
network from a file is next to the networks (`networks/lvunet.py`, `networks/generator.py`): the
architecture comes from the file's metadata, so a file for another architecture or size is
rejected with a clear message before any inference. An identity adapter (`"identity": true`) has no
weights: its file is a JSON of its metadata (`networks.generator.load_identity_adapter`).
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError
from .outputs import atomic_path
from .runtime import on_runtime
from .weights import SAFETENSORS_MAGIC_LIMIT, load_state, read_weights, sha256_of, write_weights  # noqa: F401 (re-exported)

MODELS_DIR = Path(__file__).resolve().parent.parent / "Resources" / "Models"
REGISTRY_FILE = MODELS_DIR / "models.json"
REGISTRY_ENV = "UNETGAN_REGISTRY"  # a user's own models.json instead of the bundled one
# the source checkout's research registry (absent from the wheel and the Slicer extension)
RESEARCH_REGISTRY_FILE = Path(__file__).resolve().parents[2] / "research" / "models.json"
RESEARCH_REGISTRY_ENV = "UNETGAN_RESEARCH_REGISTRY"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "segmenter" | "adapter"
    file: Path
    sha256: str | None
    source_vendor: str | None = None
    target_vendor: str | None = None
    description: str = ""
    identity: bool = False  # an adapter without weights: `file` is the JSON of its metadata


def registry_file() -> Path:
    """The registry of the models the product runs (the shipped one, or `$UNETGAN_REGISTRY`)."""
    return Path(os.environ.get(REGISTRY_ENV, REGISTRY_FILE))


def research_registry_file() -> Path | None:
    """The research registry when there is one (a source checkout, or `$UNETGAN_RESEARCH_REGISTRY`)."""
    path = Path(os.environ.get(RESEARCH_REGISTRY_ENV, RESEARCH_REGISTRY_FILE))
    return path if path.is_file() else None


def registry_files() -> list[Path]:
    """Where names are resolved, in order: the product's registry, then the research registry if present."""
    research = research_registry_file()
    return [registry_file()] + ([research] if research is not None else [])


def read_registry(path: Path | None = None) -> list[ModelEntry]:
    """The entries of one registry file, or (no path) of every registry in `registry_files()` order."""
    if path is None:
        return [entry for file in registry_files() for entry in read_registry(file)]
    path = Path(path)
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
                description=raw.get("description", ""), identity=raw.get("identity") is True,
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
        return ModelEntry(name=path.stem, kind=kind, file=path, sha256=None, identity=path.suffix == ".json")
    names = ", ".join(e.name for e in entries) or "none"
    raise ModelError(f"unknown {kind} {text!r}: not in the registry ({names}) and not a file")


def adapter_metadata(entry: ModelEntry) -> dict:
    """An adapter's metadata (paired segmenter, histogram reference...) without building its network."""
    from .networks.generator import read_generator_metadata, read_identity_metadata

    return read_identity_metadata(entry.file) if entry.identity else read_generator_metadata(entry.file)


def verify(entry: ModelEntry) -> None:
    if not entry.file.is_file():
        raise ModelError(f"model file not found: {entry.file}")
    if entry.sha256 and sha256_of(entry.file) != entry.sha256:
        raise ModelError(f"{entry.file.name} does not match its SHA256 in the registry: damaged or replaced; refusing to load it")


def load_lvunet(name_or_path=None, registry: Path | None = None):
    """The LV-Unet segmenter: by registry name, by file, or the registry's default."""
    from .networks.lvunet import load_lvunet_file

    entry = find_model(name_or_path, "segmenter", registry)
    verify(entry)
    # the shipped segmenters are only ever run frozen (inference, adapter training), never trained further
    return load_lvunet_file(entry.file).fold_batch_norms()


def load_adapter(name_or_path, registry: Path | None = None):
    """An adapter's generator G_S (target -> source): by target vendor, registry name or file."""
    from .networks.generator import load_generator, load_identity_adapter

    entry = find_model(name_or_path, "adapter", registry)
    verify(entry)
    if entry.identity:
        return load_identity_adapter(entry.file)
    read_weights(entry.file)  # refuses pickles and damaged files before the generator is built
    try:
        return load_generator(entry.file).eval()
    except ModelError:
        raise
    except (ValueError, KeyError, RuntimeError) as err:
        raise ModelError(f"{entry.file.name} is not a usable adapter ({str(err).splitlines()[0]})") from None


class ModelCache:
    """Each model loaded once per process and reused: a batch worker runs many studies with the same models.

    Keyed by the file and its SHA256 (hashed on every request, about 20 ms for the shipped files), so a model
    replaced or damaged on disk is loaded and checked again, whatever its modification time says."""

    def __init__(self, registry: Path | None = None):
        self.registry = registry
        self._loaded: dict[tuple, object] = {}
        self._lock = threading.Lock()  # a Dask worker may run studies in several threads
        self.loads = 0  # models read from disk so far (the rest were reused)

    def lvunet(self, name_or_path=None, runtime: str = "torch"):
        return self._get("segmenter", name_or_path, load_lvunet, runtime)

    def adapter(self, name_or_path, runtime: str = "torch"):
        return self._get("adapter", name_or_path, load_adapter, runtime)

    def _get(self, kind: str, name_or_path, load, runtime: str):
        entry = find_model(name_or_path, kind, self.registry)
        # the registry's expected hash is part of the key: a re-registered file is checked against the new one
        key = (kind, str(entry.file), sha256_of(entry.file) if entry.file.is_file() else None, entry.sha256, runtime)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = on_runtime(load(name_or_path, self.registry), runtime)
                self.loads += 1
            return self._loaded[key]


def paired_segmenter(generator) -> str | None:
    """The LV-Unet that segments an adapter's translations: the one it was trained against (its features guided
    the GAN), unless the adapter was paired again with another (pair_adapter)."""
    return (getattr(generator, "metadata", None) or {}).get("segmenter")


def pair_adapter(adapter, segmenter: str, out: Path, registry: Path | None = None) -> str:
    """A copy of an adapter (the same weights: the same translations) whose translations `segmenter` segments,
    e.g. a segmenter trained further from the one the adapter was trained against. The segmenter it was
    trained against stays on record (`pairing`). Returns the new file's SHA256."""
    from .networks.generator import save_generator

    entry = find_model(adapter, "adapter", registry)
    generator = load_adapter(adapter, registry)
    find_model(segmenter, "segmenter", registry)  # a name the pipeline can resolve, or an error now
    metadata = {k: v for k, v in (generator.metadata or {}).items() if k not in ("architecture", "config")}
    previous = metadata.get("pairing", {}).get("trained_against", metadata.get("segmenter"))
    metadata.update(segmenter=segmenter, pairing={"trained_against": previous,
                                                  "weights_from": {"name": entry.name, "sha256": sha256_of(entry.file)}})
    if entry.identity:  # still no weights: the metadata file, with the new pairing
        metadata["config"] = adapter_metadata(entry).get("config", {})
        with atomic_path(Path(out)) as tmp:
            tmp.write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
        return sha256_of(Path(out))
    return save_generator(generator, Path(out), **metadata)


def register_model(file: Path, name: str, kind: str, command: str, source_vendor: str | None = None,
                   target_vendor: str | None = None, description: str = "", registry: Path | None = None,
                   copy: bool = True, first: bool = False) -> ModelEntry:
    """Add (or replace) a registry entry with the file's SHA256 and the command that made it.

    Order matters: the first segmenter is the default one, and `--adapter VENDOR` picks the first adapter for
    that vendor. A replaced entry keeps its place; a new one goes last, or before every entry of its kind
    with `first`."""
    from .networks.generator import read_identity_metadata

    registry = Path(registry or registry_file())
    registry.parent.mkdir(parents=True, exist_ok=True)
    identity = Path(file).suffix == ".json"
    if identity:
        read_identity_metadata(file)  # an identity adapter's metadata file, or a clear error
    else:
        read_weights(file)  # only valid safetensors files get registered
    target = registry.parent / Path(file).name if copy else Path(file).resolve()
    if copy and Path(file).resolve() != target.resolve():
        import shutil

        shutil.copyfile(file, target)
    data = json.loads(registry.read_text()) if registry.is_file() else {"models": []}
    models = data["models"]
    relative = os.path.relpath(target, registry.parent)
    entry = {"name": name, "kind": kind, "file": relative, "sha256": sha256_of(target), "source_vendor": source_vendor,
             "target_vendor": target_vendor, "description": description, "command": command}
    if identity:
        entry["identity"] = True
    place = next((i for i, m in enumerate(models) if m["name"] == name), None)
    if place is not None and not first:
        models[place] = entry
    else:
        models[:] = [m for m in models if m["name"] != name]
        of_kind = [i for i, m in enumerate(models) if m["kind"] == kind]
        models.insert(of_kind[0] if first and of_kind else len(models), entry)
    with atomic_path(registry) as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    return find_model(name, kind, registry)
