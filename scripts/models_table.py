"""Rewrite the model table at the top of docs/models.md from the registry (name, role, file, SHA256, size).

    python scripts/models_table.py

Run after `unetgan register`; Testing/test_docs_models.py checks that the table and the registry agree."""
from __future__ import annotations

import re
from pathlib import Path

from unetgan.networks.generator import read_generator_metadata
from unetgan.registry import read_registry

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"
HEADER = "| name | kind | file | SHA256 | size |"


def role(entry) -> str:
    if entry.kind == "segmenter":
        return f"segmenter ({entry.source_vendor or 'Philips'})"
    segmenter = read_generator_metadata(entry.file).get("segmenter")
    paired = f"segmenter: `{segmenter}`" if segmenter else "no segmenter recorded: the default one segments"
    kind = f"adapter {entry.target_vendor} -> {entry.source_vendor or 'Philips'} ({paired})"
    # a research entry says so before its colon ("Ablation (research): ..."); the table repeats those words
    first_words = entry.description.split(":")[0] if entry.description else ""
    return f"{kind}, {first_words.lower()}" if "(research" in first_words.lower() else kind


def table() -> str:
    rows = [HEADER, "|---|---|---|---|---|"]
    for e in read_registry():
        rows.append(f"| `{e.name}` | {role(e)} | `{e.file.name}` | `{e.sha256}` | {e.file.stat().st_size / 1e6:.1f} MB |")
    return "\n".join(rows)


def main() -> None:
    text = DOC.read_text()
    start = text.index(HEADER)
    end = re.compile(r"\n(?!\|)").search(text, start).start()
    DOC.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    main()
