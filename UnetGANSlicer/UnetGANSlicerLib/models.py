"""The models the module offers, read from ``Resources/Models/models.json`` (or ``$UNETGAN_REGISTRY``) without torch.

The GUI lists adapters and segmenters before dependencies are installed, so this
reads the registry file with ``json`` only (the backend's ``unetgan.registry``
imports torch).

Adapters the user trains in the module go into a *user registry* (same format, with
each file's SHA256) in Slicer's settings folder, so they are listed after a restart;
they reach the backend as files, after their SHA256 is checked.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "Resources" / "Models"
REGISTRY_FILE = MODELS_DIR / "models.json"
# the backend's unetgan.registry.REGISTRY_ENV, repeated here because that module imports torch
REGISTRY_ENV = "UNETGAN_REGISTRY"
USER_REGISTRY_ENV = "UNETGAN_USER_REGISTRY"


@dataclass(frozen=True)
class ModelChoice:
    name: str
    kind: str  # "segmenter" | "adapter"
    file: Path
    label: str
    target_vendor: str | None = None
    source_vendor: str | None = None
    description: str = ""
    sha256: str | None = None
    user: bool = False  # from the user registry (trained in the module)
    identity: bool = False  # an adapter that leaves the image as it is (histogram matching only): no file

    @property
    def available(self) -> bool:
        return self.identity or self.file.is_file()

    @property
    def argument(self) -> str:
        """What the backend's --adapter/--model takes: a bundled entry by name, a user's by file."""
        return str(self.file) if self.user else self.name


def registry_file() -> Path:
    """The registry the backend runs from: ``$UNETGAN_REGISTRY``, else the bundled one."""
    return Path(os.environ.get(REGISTRY_ENV, REGISTRY_FILE))


def user_registry_file(settings_dir=None) -> Path:
    """``$UNETGAN_USER_REGISTRY``, else ``<settings_dir>/UnetGANSlicer/models.json`` (Slicer's settings
    folder inside the application), else ``~/.unetgan/models.json``."""
    if os.environ.get(USER_REGISTRY_ENV):
        return Path(os.environ[USER_REGISTRY_ENV])
    if settings_dir:
        return Path(settings_dir) / "UnetGANSlicer" / "models.json"
    return Path.home() / ".unetgan" / "models.json"


def _entries(registry: Path, kind: str | None, user: bool) -> list[ModelChoice]:
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
            name=raw["name"], kind=raw.get("kind", ""), file=(Path(registry).parent / (raw.get("file") or "")).resolve(),
            label=label + (" - yours" if user else ""), target_vendor=target, source_vendor=raw.get("source_vendor"),
            description=raw.get("description", ""), sha256=raw.get("sha256"), user=user,
            identity=bool(raw.get("identity")),
        ))
    return choices


def available_models(kind: str | None = None, registry: Path | None = None,
                     user_registry: Path | None = None) -> list[ModelChoice]:
    """Registry entries (of one kind), the product's (`registry_file()`) first, then the user's; an absent or
    broken registry gives []."""
    registry = registry if registry is not None else registry_file()
    user_registry = user_registry if user_registry is not None else user_registry_file()
    return _entries(registry, kind, user=False) + _entries(user_registry, kind, user=True)


AUTOMATIC = "auto"  # what the backend's --adapter takes for "Automatic"
NO_ADAPTER = "none"


@dataclass(frozen=True)
class AdapterOption:
    """One entry of the adapter list both front ends show (the Slicer panel's combo box, the page's select)."""

    label: str  # what the list shows: "Automatic", a vendor ("Siemens"), "None", "<name> (yours)"
    value: str  # what the backend's --adapter takes: "auto", a shipped registry name, "none", or a user's file
    description: str = ""  # one sentence for a tooltip
    vendor: str | None = None  # the scanner vendor the adapter is for
    choice: ModelChoice | None = None  # the registry entry (None for Automatic and None)

    @property
    def user(self) -> bool:
        return self.choice is not None and self.choice.user

    def backend_argument(self) -> str:
        """`value`, after checking that a user's file still has its registered SHA256 (InputError if not)."""
        return verified_argument(self.choice) if self.choice is not None else self.value


AUTOMATIC_DESCRIPTION = ("The scanner vendor from the DICOM Manufacturer picks the adapter; without it, the adapter "
                         "under which the segmenter copes best on a few slices (a warning says so)")
NONE_DESCRIPTION = "Segment the image as it is, without translating it"


def adapter_choices(user_registry: Path | None = None, registry: Path | None = None) -> list[AdapterOption]:
    """The adapters a user may pick, in this order: "Automatic" (the default: the backend's `--adapter auto`),
    the shipped adapters by vendor name, "None", then the adapters the user trained or registered
    ("<name> (yours)"). `registry` defaults to `registry_file()`, `user_registry` to `user_registry_file()`."""
    options = [AdapterOption("Automatic", AUTOMATIC, AUTOMATIC_DESCRIPTION)]
    shipped = _entries(registry if registry is not None else registry_file(), "adapter", user=False)
    vendors = [c.target_vendor or c.name for c in shipped]
    for choice, vendor in zip(shipped, vendors):
        # one shipped adapter per vendor is the rule; a second one is told apart by its name
        label = vendor if vendors.count(vendor) == 1 else f"{vendor} ({choice.name})"
        options.append(AdapterOption(label, choice.argument, choice.description, choice.target_vendor, choice))
    options.append(AdapterOption("None", NO_ADAPTER, NONE_DESCRIPTION))
    user_registry = user_registry if user_registry is not None else user_registry_file()
    for choice in _entries(user_registry, "adapter", user=True):
        options.append(AdapterOption(f"{choice.name} (yours)", choice.argument, choice.description,
                                     choice.target_vendor, choice))
    return options



def adapter_source_vendor(adapter: str, options: list[AdapterOption] | None = None) -> str | None:
    """The scanner vendor whose look ``adapter`` translates to (the registry's source_vendor), for an adapter
    named as the backend records it: its --adapter value, its vendor or its file. ``options``: adapter_choices()."""
    for option in options if options is not None else adapter_choices():
        if option.choice is not None and adapter in (option.value, option.vendor, str(option.choice.file)):
            if option.choice.source_vendor:
                return option.choice.source_vendor
    return None

def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def register_user_model(file, name: str, kind: str, registry: Path, source_vendor=None, target_vendor=None,
                        description: str = "", command: str = "") -> ModelChoice:
    """Add an entry (file relative to the registry when below it, its SHA256) to a user registry; a
    name already there gets " (2)", " (3)" ... (nothing is replaced). Written atomically."""
    registry = Path(registry)
    data = {"models": []}
    if registry.is_file():
        data = json.loads(registry.read_text(encoding="utf-8"))
    names = {raw.get("name") for raw in data.get("models", [])}
    unique, number = name, 2
    while unique in names:
        unique, number = f"{name} ({number})", number + 1
    file = Path(file).resolve()
    try:
        relative = file.relative_to(registry.parent.resolve()).as_posix()
    except ValueError:
        relative = str(file)
    data.setdefault("models", []).append({"name": unique, "kind": kind, "file": relative, "sha256": file_sha256(file),
                                         "source_vendor": source_vendor, "target_vendor": target_vendor,
                                         "description": description, "command": command})
    registry.parent.mkdir(parents=True, exist_ok=True)
    temporary = registry.with_name(registry.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(temporary, registry)
    return next(c for c in _entries(registry, kind, user=True) if c.name == unique)


def verified_argument(choice: ModelChoice) -> str:
    """The backend argument for a choice; a user's file must still have its registered SHA256."""
    if choice.user and choice.sha256 and file_sha256(choice.file) != choice.sha256:
        from unetgan.errors import InputError

        raise InputError(f"{choice.file} changed since it was registered (SHA256 differs): train or register it again")
    return choice.argument
