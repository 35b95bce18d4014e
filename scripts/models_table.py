"""Rewrite the two model tables of docs/models.md from the registries (name, role, file, SHA256, size): the
shipped models (Resources/Models/models.json) and the research models (research/models.json).

    python scripts/models_table.py

Run after `unetgan register`; Testing/test_docs_models.py checks that the tables and the registries agree."""
from __future__ import annotations

import re
from pathlib import Path

from unetgan.registry import REGISTRY_FILE, RESEARCH_REGISTRY_FILE, adapter_metadata, read_registry

DOC = Path(__file__).resolve().parent.parent / "docs" / "models.md"
HEADERS = {REGISTRY_FILE: "| name | kind | file | SHA256 | size |",
           RESEARCH_REGISTRY_FILE: "| research model | kind | file | SHA256 | size |"}


def role(entry) -> str:
    if entry.kind == "segmenter":
        return f"segmenter ({entry.source_vendor or 'Philips'})"
    segmenter = adapter_metadata(entry).get("segmenter")
    paired = f"segmenter: `{segmenter}`" if segmenter else "no segmenter recorded: the default one segments"
    kind = f"adapter {entry.target_vendor} -> {entry.source_vendor or 'Philips'} ({paired})"
    if entry.identity:
        kind += ", identity (no weights)"
    # a research entry says so before its colon ("Ablation (research): ..."); the table repeats those words
    first_words = entry.description.split(":")[0] if entry.description else ""
    # lower case at the start only: model and vendor names keep theirs
    return f"{kind}, {first_words[:1].lower()}{first_words[1:]}" if "(research" in first_words.lower() else kind


def table(registry: Path) -> str:
    rows = [HEADERS[registry], "|---|---|---|---|---|"]
    for e in read_registry(registry):
        rows.append(f"| `{e.name}` | {role(e)} | `{e.file.name}` | `{e.sha256}` | {e.file.stat().st_size / 1e6:.1f} MB |")
    return "\n".join(rows)


def main() -> None:
    text = DOC.read_text()
    for registry, header in HEADERS.items():
        start = text.index(header)
        end = re.compile(r"\n(?!\|)").search(text, start).start()
        text = text[:start] + table(registry) + text[end:]
    DOC.write_text(text)


if __name__ == "__main__":
    main()
