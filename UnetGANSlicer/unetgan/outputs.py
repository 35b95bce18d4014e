"""Writing results without ever leaving half of them: everything goes to a hidden staging
folder beside the destination, and is moved into place only once all of it is written."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


def refuse_existing(paths, overwrite: bool) -> None:
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise InputError(f"output exists: {', '.join(existing)}; pass --overwrite to replace")


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary file path beside `path`; rename it onto `path` only if the block succeeds.

    The file gets the usual permissions (mkstemp's are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def staged_outputs(destination_dir: Path, names: list[str], overwrite: bool = False):
    """Yield a staging folder; on success move `names` from it into destination_dir, else delete it."""
    destination_dir = Path(destination_dir)
    refuse_existing([destination_dir / n for n in names], overwrite)
    try:
        destination_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=destination_dir))
    except OSError as err:  # a user's output path: a message, not a traceback
        raise InputError(f"cannot write to {destination_dir}: {err.strerror or err}; expected a folder you can write to") from None
    try:
        yield staging
        for name in names:
            os.replace(staging / name, destination_dir / name)
    except OSError as err:  # disk full, folder removed meanwhile: the staging folder goes, earlier outputs stay
        raise InputError(f"cannot write the outputs to {destination_dir}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
