"""Make lvunet-sick-hearts the default segmenter, pair the shipped adapters with it, and move the previous default
(lvunet-soup2) to the research registry, where its descendants' recipes still find it.

    python scripts/recipes/register_lvunet_sick_hearts.py     # after scripts/recipes/train_sick_hearts.sh

Chosen by scripts/choice_cv.py (leave-one-subject-out over the dev subjects) and measured per kind of heart by
scripts/robustness.py (docs/models.md, 'lvunet-sick-hearts').
"""
from __future__ import annotations

from register_default_segmenter import RESEARCH_REGISTRY, ROOT, move_to_research, register_default, take_out

NAME, PREVIOUS = "lvunet-sick-hearts", "lvunet-soup2"


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
