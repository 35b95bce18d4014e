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


@contextmanager
def staged_outputs(destination_dir: Path, names: list[str], overwrite: bool = False):
    """Yield a staging folder; on success move `names` from it into destination_dir, else delete it."""
    destination_dir = Path(destination_dir)
    refuse_existing([destination_dir / n for n in names], overwrite)
    destination_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=destination_dir))
    try:
        yield staging
        for name in names:
            os.replace(staging / name, destination_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
