"""One way for the measurement scripts to leave their figures: NAME.json (everything) and NAME.md (the page)."""
from __future__ import annotations

import json
from pathlib import Path


def write_report(folder, name: str, report: dict, page: str) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(report, indent=1))
    (folder / f"{name}.md").write_text(page)
    print(page)
