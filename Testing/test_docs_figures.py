"""Every figure in README.md and docs/*.md that is tagged with its JSON equals what the JSON holds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
docs_figures = load_script("docs_figures")


def test_every_tagged_figure_in_readme_and_docs_equals_its_json():
    problems = [p for path in docs_figures.documents() for p in docs_figures.mismatches(path)]
    assert problems == []


def test_the_readme_and_the_docs_tag_their_benchmark_figures():
    tagged = {path.name: len(docs_figures.TAG.findall(path.read_text(encoding="utf-8"))) for path in docs_figures.documents()}
    assert tagged["README.md"] >= 5 and tagged["web.md"] >= 10 and tagged["batch.md"] >= 9, tagged


def test_a_changed_figure_is_reported_and_write_restores_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "docs" / "benchmarks_batch.json", docs)
    page = docs / "batch.md"
    shutil.copy(ROOT / "docs" / "batch.md", page)
    assert docs_figures.mismatches(page, docs) == []
    text = page.read_text(encoding="utf-8")
    studies_per_hour = json.loads((docs / "benchmarks_batch.json").read_text())["runs"]["2 local workers"]["studies_per_hour"]
    shown = f"-->{studies_per_hour:.0f}<!--/fig-->"
    assert shown in text
    page.write_text(text.replace(shown, "-->9999<!--/fig-->"), encoding="utf-8")
    problems = docs_figures.mismatches(page, docs)
    assert len(problems) == 1 and "shows '9999'" in problems[0] and f"gives '{studies_per_hour:.0f}'" in problems[0]
    assert docs_figures.rewrite(page, docs)
    assert page.read_text(encoding="utf-8") == text


def test_a_tag_naming_a_missing_key_is_reported(tmp_path):
    (tmp_path / "figures.json").write_text(json.dumps({"runs": [{"ok": True}]}))
    page = tmp_path / "page.md"
    page.write_text("a <!--fig figures.json:runs/0/ok %freed|taken-->freed<!--/fig--> and "
                    "<!--fig figures.json:runs/1/ok-->yes<!--/fig-->\n")
    problems = docs_figures.mismatches(page, tmp_path)
    assert len(problems) == 1 and "runs/1/ok" in problems[0]
