"""Distilling an adapter (training/distill_adapter.py): the student follows the teacher, carries what the
pipeline needs from the teacher's file, and resumes exactly."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from test_adaptation import phantom_slices
from unetgan.networks.generator import ResnetGenerator, load_generator
from unetgan.training.distill_adapter import DistillConfig, distill_adapter, fidelity, generator_outputs


@pytest.fixture(autouse=True)
def _one_thread(torch_threads):
    yield


@pytest.fixture(scope="module")
def teacher() -> ResnetGenerator:
    """A residual generator whose change is mostly a contrast curve, with some texture (a trained adapter's kind)."""
    torch.manual_seed(3)
    model = ResnetGenerator(filters=8, n_blocks=2, residual_output=True)
    with torch.no_grad():
        model.head[1].bias.fill_(0.3)
        model.head[1].weight.normal_(0, 0.002)
    model.metadata = {"histogram_reference": [0.0, 0.5, 1.0], "segmenter": "lvunet-robust", "target_vendor": "Siemens",
                      "criterion": {"score": 0.9}, "iteration": 250}
    return model.eval()


@pytest.fixture(scope="module")
def slices() -> torch.Tensor:
    return torch.from_numpy(phantom_slices(24, 48, 1.4, seed=5))[:, None] * 2 - 1


CONFIG = DistillConfig(filters=8, n_blocks=1, steps=150, batch=4, lr=3e-3, warmup=10, held_out_fraction=0.2)


def test_the_student_learns_the_teachers_change_and_carries_its_inference_metadata(teacher, slices, tmp_path):
    out = tmp_path / "student.safetensors"
    wanted = generator_outputs(teacher, slices)
    assert float((wanted - slices).abs().mean()) > 0.01  # the teacher changes the images
    untrained = ResnetGenerator(filters=8, n_blocks=1, residual_output=True)  # the identity
    assert fidelity(untrained, slices, wanted)["change_reproduced"] == pytest.approx(0.0, abs=1e-3)

    result = distill_adapter(teacher, slices, CONFIG, out, "teacher-name", "ab" * 32, log=lambda *_: None)
    assert result["finished"] and result["change_reproduced"] > 0.6, result  # on slices it never trained on

    student = load_generator(out)
    assert (student.config.filters, student.config.n_blocks) == (8, 1)
    assert student.metadata["histogram_reference"] == [0.0, 0.5, 1.0]  # the pipeline matches histograms as before
    assert student.metadata["segmenter"] == "lvunet-robust" and student.metadata["target_vendor"] == "Siemens"
    assert student.metadata["distilled_from"]["name"] == "teacher-name"
    assert "criterion" not in student.metadata and "iteration" not in student.metadata  # the teacher's, not its own
    assert not student.is_identity()


def test_a_resumed_distillation_is_the_uninterrupted_one(teacher, slices, tmp_path):
    config = replace(CONFIG, steps=30)
    whole = distill_adapter(teacher, slices, config, tmp_path / "a" / "s.safetensors", "t", "0" * 64, log=lambda *_: None)
    first = distill_adapter(teacher, slices, config, tmp_path / "b" / "s.safetensors", "t", "0" * 64, log=lambda *_: None,
                            stop_after_step=12)
    assert not first["finished"] and not (tmp_path / "b" / "s.safetensors").exists()
    messages = []
    resumed = distill_adapter(teacher, slices, config, tmp_path / "b" / "s.safetensors", "t", "0" * 64,
                              log=messages.append)
    assert any("resuming at step 12" in m for m in messages)
    a, b = (load_generator(tmp_path / d / "s.safetensors").state_dict() for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed["l1_to_teacher"] == whole["l1_to_teacher"]
    with pytest.raises(ValueError, match="cannot resume"):
        distill_adapter(teacher, slices, replace(config, steps=40, filters=8), tmp_path / "b" / "s.safetensors", "t",
                        "0" * 64, log=lambda *_: None)


def test_the_command_line_distils_a_registered_adapter_on_image_folders(tmp_path):
    """`unetgan distill-adapter` on real files: the shipped Siemens adapter teaches, phantom images of both
    vendors are the data, and the student it writes is an adapter the pipeline loads."""
    from unetgan.cli import main
    from unetgan.phantom import make_study, write_study

    for vendor, folder in (("Philips", "source"), ("Siemens", "target")):
        study = make_study(vendor, seed=2, n_phases=2, n_slices=3, matrix=96)
        for role, path in write_study(study, tmp_path / folder, cine=False).items():
            if role not in ("ED", "ES"):  # reference labels and metadata are not images to learn from
                path.unlink()
    out = tmp_path / "student" / "small.safetensors"
    code = main(["distill-adapter", "--teacher", "adapter-siemens", "--source-dir", str(tmp_path / "source"),
                 "--target-dir", str(tmp_path / "target"), "--target-vendor", "Siemens", "-o", str(out),
                 "--filters", "4", "--blocks", "1", "--steps", "3", "--batch", "2"])
    assert code == 0
    student = load_generator(out)
    assert student.metadata["distilled_from"]["name"] == "adapter-siemens"
    assert student.metadata["target_preprocessing"] == "histmatch" and len(student.metadata["histogram_reference"]) > 10
    assert student(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)


def test_a_held_out_student_never_sees_the_left_out_subject(tmp_path, capsys):
    """`--target-exclude` with a manifest: a student made for a held-out check distils on the other subjects'
    images only, as its teacher trained on them (the counts it reports are the slices it used)."""
    from unetgan.cli import main
    from unetgan.phantom import make_study, write_study

    rows = ["subject,vendor,phase,image,label,split"]
    for subject, vendor, slices in (("P1", "Philips", 3), ("G1", "GE", 3), ("G2", "GE", 5)):
        study = make_study(vendor, seed=len(rows), n_phases=2, n_slices=slices, matrix=96)
        written = write_study(study, tmp_path / subject, name=subject, cine=False)
        rows.append(f"{subject},{vendor},ED,{written['ED'].relative_to(tmp_path)},,dev")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    common = ["distill-adapter", "--teacher", "adapter-siemens", "--manifest", str(tmp_path / "manifest.csv"),
              "--source-split", "dev", "--target-vendor", "GE", "--target-split", "dev",
              "--filters", "4", "--blocks", "1", "--steps", "2", "--batch", "2"]
    assert main(common + ["-o", str(tmp_path / "all" / "s.safetensors")]) == 0
    assert "3 Philips slices and 8 GE slices to distil on" in capsys.readouterr().out
    assert main(common + ["--target-exclude", "G2", "-o", str(tmp_path / "held" / "s.safetensors")]) == 0
    assert "3 Philips slices and 3 GE slices to distil on" in capsys.readouterr().out
