"""Make an LV-Unet the default segmenter and pair the adapters with it, each in its own registry.

    python scripts/recipes/register_default_segmenter.py     # not run directly: scripts/recipes/register_lvunet_soup*.py call it

Registers the file first among the segmenters, then, for every adapter that the product or docs/results.md
uses, writes a copy whose translations the new segmenter segments (`unetgan pair-adapter`: the same generator
weights, the old pairing kept on record) and registers it under the same name, so every default and every
results column keeps its place. Then `python Testing/test_slicer_files.py --write` and
`python scripts/models_table.py`. Also the registry edits the other register recipes share (take_out, move_to_research).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "UnetGANSlicer"))

from unetgan.weights import sha256_of  # noqa: E402

UNETGAN = str(ROOT / ".venv" / "bin" / "unetgan")
REGISTRY = ROOT / "UnetGANSlicer" / "Resources" / "Models" / "models.json"
RESEARCH_REGISTRY = ROOT / "research" / "models.json"  # research weights stay in research/models/
ADAPTERS = ("adapter-siemens-texture-small", "adapter-siemens-texture", "adapter-siemens-small", "adapter-siemens",
            "adapter-ge-texture-small", "adapter-ge-texture-small-without-SCD0000101",
            "adapter-ge-texture-small-without-SCD0000201", "adapter-ge-texture-small-without-SCD0000301",
            "adapter-ge", "adapter-ge-without-SCD0000101", "adapter-ge-without-SCD0000201", "adapter-ge-without-SCD0000301",
            "adapter-siemens-no-feature-loss", "adapter-siemens-l1-cycle")
# the pairing an adapter's description already names, replaced by the new one
PAIRED = re.compile(r"; (segmenter \S+ \(paired in session \d+\)|its images are segmented by \S+( \(paired with it after training\))?)$")


def registry_models(path):
    return json.loads(path.read_text())["models"]


def write_models(path, models) -> None:
    path.write_text(json.dumps({"models": models}, indent=1))


def take_out(path, name) -> dict:
    """Remove an entry from a registry and return it."""
    models = registry_models(path)
    entry = next(m for m in models if m["name"] == name)
    write_models(path, [m for m in models if m["name"] != name])
    return entry


def move_to_research(name, label) -> None:
    """Move a shipped model, its file and its entry, to the research registry, its description starting with label."""
    previous = take_out(REGISTRY, name)
    moved = RESEARCH_REGISTRY.parent / "models" / previous["file"]
    shutil.move(REGISTRY.parent / previous["file"], moved)
    previous["file"] = str(moved.relative_to(RESEARCH_REGISTRY.parent))
    previous["description"] = label + previous["description"]
    write_models(RESEARCH_REGISTRY, registry_models(RESEARCH_REGISTRY) + [previous])


def run(*command: str) -> None:
    subprocess.run(command, check=True, cwd=ROOT)


def register_default(name: str, path: str, made_by: str, description: str, script: str) -> None:
    run(UNETGAN, "register", path, "--first", "--name", name, "--kind", "segmenter", "--source-vendor", "Philips",
        "--made-by", made_by, "--description", description)
    entries = {m["name"]: (registry, m) for registry in (REGISTRY, RESEARCH_REGISTRY) if registry.is_file()
               for m in json.loads(registry.read_text())["models"]}
    for adapter in ADAPTERS:
        registry, entry = entries[adapter]
        out = f"runs/paired/{Path(entry['file']).name}"
        run(UNETGAN, "pair-adapter", adapter, "--segmenter", name, "-o", out)
        vendors = [a for flag, key in (("--source-vendor", "source_vendor"), ("--target-vendor", "target_vendor"))
                   if entry.get(key) for a in (flag, entry[key])]
        trained = PAIRED.sub("", entry["description"].replace("segmenter lvunet-robust", "trained against lvunet-robust"))
        # each adapter stays in its own registry, its file where that registry keeps it
        where = ["--registry", str(registry)]
        if registry == RESEARCH_REGISTRY:
            out = shutil.copy(ROOT / out, registry.parent / entry["file"])
            where.append("--in-place")
        run(UNETGAN, "register", str(out), "--name", adapter, "--kind", "adapter", *vendors, *where, "--made-by",
            f"unetgan pair-adapter {adapter} --segmenter {name} -o runs/paired/{Path(entry['file']).name} ({script}: "
            f"the same weights, segmented by {name}) of the file made by: {entry['command']}",
            "--description", f"{trained}; its images are segmented by {name} (paired with it after training)")


def register_soup(name: str, soup: str, ingredients: tuple[str, ...], made_by: str, recipe: str, description: str,
                  script: str) -> None:
    """register_default for a soup made by scripts/recipes/soup_lvunet.py, its ingredients' SHA256 on record."""
    register_default(
        name, soup,
        f"{made_by} (= python scripts/recipes/soup_lvunet.py {' '.join(ingredients)} -o {soup}: {recipe}; ingredient SHA256 "
        + ", ".join(sha256_of(ROOT / path) for path in ingredients) + ")",
        description, script)
