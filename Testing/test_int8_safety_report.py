"""scripts/int8_safety.py --compare: the 7-bit figures of a run on one CPU against a report made on another."""
from __future__ import annotations

import copy
import json

import pytest

from conftest import load_script

safety = load_script("int8_safety")
SEVEN_BIT = "int8, 7-bit weights (reduce_range: CPUs without VNNI)"
EIGHT_BIT = "int8, 8-bit weights (VNNI CPUs)"
VNNI_CPU = {"model": "AMD EPYC", "instruction_set": "vnni", "vnni": True, "int8_weights": "u8s8-per-channel"}


def row(vendor, variant, pool, myo):
    return {"vendor": vendor, "variant": variant, "against_float32": {"blood_pool": pool, "myocardium": myo},
            "against_truth": {"blood_pool": pool - 0.05, "myocardium": myo - 0.1, "mean": pool - 0.075}}


def report(cpu=VNNI_CPU, seven=0.99, eight=0.98):
    return {"cpu": cpu, "phantom": [row("Siemens", "float32", 1.0, 1.0), row("Siemens", SEVEN_BIT, seven, seven),
                                    row("Siemens", EIGHT_BIT, eight, eight)],
            "real": [row("GE", "float32", 1.0, 1.0), row("GE", SEVEN_BIT, seven, seven), row("GE", EIGHT_BIT, eight, eight)]}


def test_the_same_seven_bit_figures_are_identical_whatever_the_eight_bit_ones(tmp_path):
    other = tmp_path / "int8_safety.json"
    other.write_text(json.dumps(report()))
    # another CPU's 8-bit figures differ (saturation without VNNI): they are not what is compared
    result = safety.compared(report(cpu={**VNNI_CPU, "vnni": False}, eight=0.86), other)
    assert result == {"report": str(other), "cpu": VNNI_CPU, "rows": 2, "largest_difference": 0}
    assert "**identical**" in safety.markdown({**_rendered(), "compared": result})


def test_a_seven_bit_difference_is_reported_and_other_rows_refused(tmp_path):
    other = tmp_path / "int8_safety.json"
    other.write_text(json.dumps(report()))
    result = safety.compared(report(seven=0.9875), other)
    assert result["largest_difference"] == pytest.approx(0.0025)
    assert "different (by up to 0.0025)" in safety.markdown({**_rendered(), "compared": result})
    fewer = copy.deepcopy(report())
    del fewer["real"]
    with pytest.raises(SystemExit, match="not those of this run"):
        safety.compared(fewer, other)


def _rendered() -> dict:
    """The rest of a report, for markdown()."""
    return {**report(), "command": "python scripts/int8_safety.py", "cores": 2, "onnxruntime": "1.x",
            "load_average": (0.0, 0.0, 0.0), "speed": []}
