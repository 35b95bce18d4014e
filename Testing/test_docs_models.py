"""docs/models.md lists every registered model with its file and SHA256 (the table users check a download against)."""
from __future__ import annotations

import re
from pathlib import Path

from unetgan.registry import read_registry

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"


def table_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            rows[cells[0]] = (cells[2], cells[3])
    return rows


def test_every_registered_model_is_in_the_table_with_its_file_and_hash():
    rows = table_rows()
    entries = read_registry()
    assert entries, "the bundled registry is empty"
    assert sorted(rows) == sorted(e.name for e in entries)
    for entry in entries:
        assert rows[entry.name] == (entry.file.name, entry.sha256), entry.name
