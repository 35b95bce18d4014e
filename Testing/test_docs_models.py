"""docs/models.md lists every registered model, shipped and research, with its file and SHA256 (the tables
users check a download against), each in the table of its own registry."""
from __future__ import annotations

import re
from pathlib import Path

from unetgan.registry import REGISTRY_FILE, RESEARCH_REGISTRY_FILE, read_registry

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"


def tables() -> list[dict[str, tuple[str, str]]]:
    """The model tables of the page in order, each {name: (file, SHA256)}."""
    found, rows = [], None
    for line in DOC.read_text().splitlines() + [""]:
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            rows = {} if rows is None else rows
            rows[cells[0]] = (cells[2], cells[3])
        elif rows is not None and not line.startswith("|"):
            found.append(rows)
            rows = None
    return found


def test_every_registered_model_is_in_the_table_of_its_registry_with_its_file_and_hash():
    shipped_table, research_table = tables()
    for registry, rows in ((REGISTRY_FILE, shipped_table), (RESEARCH_REGISTRY_FILE, research_table)):
        entries = read_registry(registry)
        assert entries, f"the registry {registry} is empty"
        assert sorted(rows) == sorted(e.name for e in entries), registry
        for entry in entries:
            assert rows[entry.name] == (entry.file.name, entry.sha256), entry.name
