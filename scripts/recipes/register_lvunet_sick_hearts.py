"""Make lvunet-sick-hearts the default segmenter, pair the shipped adapters with it, and move the previous default
(lvunet-soup2) to the research registry, where its descendants' recipes still find it.

    python scripts/recipes/register_lvunet_sick_hearts.py     # after scripts/recipes/train_sick_hearts.sh

Chosen by scripts/choice_cv.py (leave-one-subject-out over the dev subjects) and measured per kind of heart by
scripts/robustness.py (docs/models.md, 'lvunet-sick-hearts').
"""
from __future__ import annotations

import json
import shutil

from register_default_segmenter import REGISTRY, RESEARCH_REGISTRY, ROOT, register_default

NAME, PREVIOUS = "lvunet-sick-hearts", "lvunet-soup2"


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


if __name__ == "__main__":
    research = take_out(RESEARCH_REGISTRY, NAME)  # a model is in one registry only
    research_file = RESEARCH_REGISTRY.parent / research["file"]
    register_default(NAME, str(research_file), research["command"],
                     "The default segmenter: lvunet-soup2 trained on with labelled phantom dilated, hypertrophic and "
                     "infarcted hearts, the unusual training volumes drawn more often, and protocol augmentation "
                     "(slice thickness, pixel size, heart off centre); one pass",
                     "scripts/recipes/register_lvunet_sick_hearts.py")
    research_file.unlink()  # copied into the shipped models by `unetgan register`
    move_to_research(PREVIOUS, "Previous default segmenter (research): ")
    print(f"{NAME} is the default segmenter; {PREVIOUS} moved to {RESEARCH_REGISTRY.relative_to(ROOT)}")
