"""Weight files: safetensors only, never pickles (loading runs no code from the file).

Reading refuses anything that is not a safetensors file written by UnetGANSlicer (its
metadata values are JSON); writing is atomic. Which network a file holds is decided next
to the networks (`networks.lvunet.load_lvunet_file`, `networks.generator.load_generator`);
which file a model name means is the registry's job (`registry.py`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import ModelError

SAFETENSORS_MAGIC_LIMIT = 100 * 1024 * 1024  # a header larger than this is not ours


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        sort_metadata(tmp)
    return sha256_of(path)


def sort_metadata(path: Path) -> None:
    """Rewrite a safetensors header with its metadata keys sorted, in place.

    safetensors writes the metadata in a Rust HashMap's random order, so the same weights written twice differ
    in bytes and a shipped file's SHA256 could not be reproduced by the command that made it. Only the order
    changes (same length, same tensors); a header this encoder would not write byte for byte is left alone."""
    with open(path, "r+b") as handle:
        length = int.from_bytes(handle.read(8), "little")
        raw = handle.read(length)
        body = raw.rstrip(b" ")
        header = json.loads(body)

        def encoded(value: dict) -> bytes:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

        if "__metadata__" not in header or encoded(header) != body:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        handle.seek(8)
        handle.write(encoded(header))


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str) -> torch.nn.Module:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ModelError(f"{name} does not fit the architecture it declares ({str(err).splitlines()[0]})") from None
    return module.eval()
