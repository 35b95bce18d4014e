"""The studies of a batch: from a folder tree or a CSV list, each with its own output folder name."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io.folders import image_inputs
from ..io.images import IMAGE_SUFFIXES
from ..pipeline import adapt_outputs


@dataclass(frozen=True)
class Study:
    name: str  # its folder below the batch's output folder (a relative path, "/"-separated)
    input: str  # the image file or DICOM folder, absolute


def _without_image_suffix(relative: str) -> str:
    lower = relative.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return relative[: -len(suffix)]
    return relative


def _named(inputs: list[Path], relative_names: list[str]) -> list[Study]:
    """Names without the image suffix; where two inputs would share one (a.nii.gz and a.nrrd) both keep it."""
    short = [_without_image_suffix(n) for n in relative_names]
    names = [s if short.count(s) == 1 else n.replace(".", "_") for s, n in zip(short, relative_names)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"two inputs would write to the same output folder: {', '.join(duplicates)}; "
                         "expected distinct study names")
    return [Study(name, str(path.resolve())) for name, path in zip(names, inputs)]


def _from_folder(folder: Path, out_dir: Path) -> list[Study]:
    inputs = image_inputs(folder, exclude=out_dir)
    return _named(inputs, [p.relative_to(folder).as_posix() if p != folder else folder.name for p in inputs])


def _from_csv(path: Path) -> list[Study]:
    """A CSV with an `input` column (paths relative to the CSV) and optionally a `study` column (output names)."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the study list {path.name}: {err}") from None
    if not rows or "input" not in rows[0]:
        raise InputError(f"{path.name}: expected a CSV with a header row naming an 'input' column (and optionally 'study')")
    inputs, names = [], []
    for number, row in enumerate(rows, start=2):
        if not (row.get("input") or "").strip():
            raise InputError(f"{path.name}, line {number}: empty 'input'")
        source = (path.parent / row["input"].strip())
        inputs.append(source)
        names.append((row.get("study") or "").strip() or _without_image_suffix(Path(row["input"].strip()).name))
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise InputError(f"{path.name}: study name {name!r} must stay inside the output folder")
    return _named(inputs, names)


def find_studies(inputs: str | Path, out_dir: str | Path) -> list[Study]:
    """The studies in a folder (each image file or DICOM folder below it) or listed in a CSV."""
    inputs, out_dir = Path(inputs), Path(out_dir)
    if not inputs.exists():
        raise InputError(f"inputs not found: {inputs}; expected a folder of studies or a CSV listing them")
    if inputs.is_dir():
        resolved_in, resolved_out = inputs.resolve(), out_dir.resolve()
        if resolved_out == resolved_in or resolved_out in resolved_in.parents:
            raise InputError(f"the output folder {out_dir} holds the inputs; expected a folder apart from (or inside) them")
        studies = _from_folder(inputs, out_dir)
    elif inputs.suffix.lower() == ".csv":
        studies = _from_csv(inputs)
    else:
        raise InputError(f"{inputs} is neither a folder nor a .csv list of studies")
    if not studies:
        raise InputError(f"no studies in {inputs}: expected image files (.nii.gz, .nrrd, .mha) or DICOM folders")
    return studies


def is_complete(study: Study, study_dir: Path) -> bool:
    """All of adapt-segment's outputs for this input are there (they appear only when a study succeeded)."""
    return all((Path(study_dir) / name).is_file() for name in adapt_outputs(study.input))
