"""Figures in README.md and docs/*.md that come from a JSON, kept equal to it.

A figure taken from a JSON is written with an invisible tag around it::

    two workers run <!--fig benchmarks_batch.json:runs/2 local workers/studies_per_hour %.0f-->1367<!--/fig--> studies per hour

``FILE`` is a JSON in docs/, ``KEY`` a path into it with ``/`` between the levels (list items by their index), and
the optional format after `` %`` is a Python format spec (``.3f``, ``,.0f``) or, for a true/false value,
``WORDS_IF_TRUE|WORDS_IF_FALSE`` (spaces written as ``_``). ``--check`` (the test suite runs it) lists every figure that differs from its JSON;
``--write`` rewrites the figures from the JSONs. Tables that a script renders whole from its JSON (docs/results.md,
docs/benchmarks*.md, ...) are made by that script and carry no tags.

Hand-written: Markdown has no include mechanism for values, and no library keeps prose figures equal to a JSON.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TAG = re.compile(r"<!--fig (?P<file>[\w./-]+\.json):(?P<key>[^%>]+?)(?: %(?P<fmt>[^>]*?))?-->(?P<shown>.*?)<!--/fig-->")


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def lookup(data, key: str):
    for part in key.split("/"):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def render(value, fmt: str | None) -> str:
    if isinstance(value, bool):
        if fmt and "|" in fmt:
            yes, no = fmt.split("|", 1)
            return (yes if value else no).replace("_", " ")
        return "yes" if value else "no"
    return format(value, fmt) if fmt else str(value)


class Sources:
    """The JSONs of docs/, each read once."""

    def __init__(self, docs: Path = DOCS):
        self.docs, self.loaded = docs, {}

    def figure(self, match: re.Match) -> str:
        """The figure the tag's JSON gives, as the tag formats it."""
        name = match["file"]
        try:
            if name not in self.loaded:
                self.loaded[name] = json.loads((self.docs / name).read_text(encoding="utf-8"))
            return render(lookup(self.loaded[name], match["key"]), match["fmt"])
        except (OSError, KeyError, IndexError, ValueError) as error:
            return f"<no value at {name}:{match['key']}: {error!r}>"


def mismatches(path: Path, docs: Path = DOCS) -> list[str]:
    text, sources = path.read_text(encoding="utf-8"), Sources(docs)
    problems = []
    for match in TAG.finditer(text):
        expected = sources.figure(match)
        if match["shown"] != expected:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{path.name}:{line}: shows {match['shown']!r}, {match['file']}:{match['key']} gives {expected!r}")
    return problems


def rewrite(path: Path, docs: Path = DOCS) -> bool:
    text, sources = path.read_text(encoding="utf-8"), Sources(docs)
    new = TAG.sub(lambda m: m.group(0)[: m.start("shown") - m.start()] + sources.figure(m) + "<!--/fig-->", text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the figures from their JSONs")
    args = parser.parse_args(argv)
    if args.write:
        for path in documents():
            if rewrite(path):
                print(f"updated {path.relative_to(ROOT)}")
        return 0
    problems = [p for path in documents() for p in mismatches(path)]
    for problem in problems:
        print(problem)
    tagged = sum(1 for path in documents() for _ in TAG.finditer(path.read_text(encoding="utf-8")))
    print(f"{tagged} tagged figures, {len(problems)} differ from their JSON")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
