"""Writing phantom studies: NIfTI volumes, DICOM cine series and dataset manifests.

Every study writes its ED and ES volumes with their labels (`<name>_ED.nii.gz`,
`<name>_ED_gt.nii.gz`, same for ES) so a manifest row can point at them, plus the whole
cine: a 4D NIfTI `<name>_cine.nii.gz`, or a DICOM study folder `<name>_dicom/` with its
4D labels `<name>_labels.nii.gz`. The DICOM study holds the short-axis cine (at the top of
the folder), a localiser (`localizer/`) and a long-axis cine (`lax_cine/`), so that readers
must find the short-axis cine among the series. DICOM file names are a random permutation of
each series' images, so readers must order images by their tags, as with real exports.
"""
from __future__ import annotations

import csv
import datetime
import json
import os
import shutil
import uuid
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from .profiles import VENDORS, load_profile
from .study import Study, make_study

FORMATS = ("nifti", "dicom")
MANIFEST_COLUMNS = ("subject", "vendor", "phase", "image", "label", "split")
STUDY_DATE = datetime.date(2024, 1, 1)  # fixed, so the same seed writes identical files


# ---------------------------------------------------------------- NIfTI

def _volume(array: np.ndarray, study: Study) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(study.spacing)
    image.SetOrigin(study.origin)
    image.SetDirection(study.direction)
    return image


def _stored_dtype(image: np.ndarray):
    """int16 like most scanners' NIfTI exports, uint16 when 16-bit values need it."""
    return np.int16 if image.max() <= np.iinfo(np.int16).max else np.uint16


def _write_sitk(image: sitk.Image, path: Path) -> None:
    """Write through a temporary file in the same folder, so no half-written file is left."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")  # created with the usual permissions
    try:
        sitk.WriteImage(image, tmp, useCompression=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_cine_nifti(frames: np.ndarray, study: Study, path: Path) -> None:
    """A 4D image: the 3D geometry on x, y, z and the frame interval (s) on the 4th axis."""
    interval_s = (study.trigger_times_ms[1] - study.trigger_times_ms[0]) / 1000.0 if len(frames) > 1 else 1.0
    cine = sitk.JoinSeries([_volume(frame, study) for frame in frames], study.trigger_times_ms[0] / 1000.0, interval_s)
    _write_sitk(cine, path)


# ---------------------------------------------------------------- DICOM

def _uid(*parts) -> str:
    # one separated string: generate_uid joins its sources without a separator, so the parts
    # (z=1, t=10) and (z=11, t=0) would give the same UID
    return generate_uid(entropy_srcs=["/".join(str(p) for p in parts)])


# The study's series: (subfolder, series number, description, image type). The short-axis cine sits at the
# top of the study folder (as the single-series folders of earlier versions did); the other series, which a
# reader must recognise and pass over, in subfolders.
SHORT_AXIS_CINE = ("", 1, "SA cine bSSFP (phantom)", ["ORIGINAL", "PRIMARY", "M"])
LOCALIZER = ("localizer", 2, "Localizer (phantom)", ["ORIGINAL", "PRIMARY", "LOCALIZER"])
LONG_AXIS_CINE = ("lax_cine", 3, "LAX cine bSSFP (phantom)", ["ORIGINAL", "PRIMARY", "M"])


def _study_header(study: Study, name: str) -> Dataset:
    """Patient, study and equipment attributes shared by every image of the study."""
    profile = study.meta["profile"]
    seed = study.meta.get("seed", 0)
    ds = Dataset()
    ds.StudyInstanceUID = _uid(name, study.vendor, seed, "study")
    ds.FrameOfReferenceUID = _uid(name, study.vendor, seed, "frame-of-reference")
    ds.Modality = "MR"
    ds.Manufacturer = study.vendor
    ds.ManufacturerModelName = profile.get("model", "")
    ds.ImageComments = "Synthetic phantom (unetgan.phantom), not patient data"
    ds.PatientName = f"Phantom^{name}"
    ds.PatientID = name
    ds.PatientSex = "O"
    ds.PatientBirthDate = ""
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "HEART"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Cardiac phantom"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SS"
    ds.ScanOptions = "CG"
    ds.MRAcquisitionType = "2D"
    ds.MagneticFieldStrength = profile["field_strength_T"]
    ds.ImagingFrequency = round(42.577 * profile["field_strength_T"], 4)
    ds.RepetitionTime = profile["TR_ms"]
    ds.EchoTime = profile["TE_ms"]
    ds.FlipAngle = profile["flip_angle_deg"]
    ds.NumberOfAverages = 1
    ds.EchoTrainLength = 1
    ds.InPlanePhaseEncodingDirection = "COL"
    ds.SliceThickness = profile["slice_thickness_mm"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = profile["bits_stored"]
    ds.HighBit = profile["bits_stored"] - 1
    ds.PixelRepresentation = 0
    return ds


def _write_series(study: Study, folder: Path, name: str, kind: tuple, images: list[dict]) -> None:
    """One series: `images` hold pixels (rows, cols), position, row/column directions, pixel spacing
    (row spacing, column spacing) and, for a cine, the phase index."""
    subfolder, number, description, image_type = kind
    header = _study_header(study, name)
    profile = study.meta["profile"]
    seed = study.meta.get("seed", 0)
    series_uid = _uid(name, study.vendor, seed, "series", *([subfolder] if subfolder else []))  # the SA cine's UID as before
    n_t = len(study.trigger_times_ms)
    rr_ms = float(study.meta.get("rr_interval_ms", 1000.0))
    window_width = float(np.percentile(study.image, 99.5)) or 1.0
    target = folder / subfolder
    target.mkdir(parents=True, exist_ok=True)
    # File names: a random permutation of the image order, so only tags give the order.
    names = np.random.default_rng([int(seed), zlib.crc32((name + subfolder).encode())]).permutation(len(images))
    for index, image in enumerate(images):
        sop_uid = _uid(name, study.vendor, seed, "image", *image["key"])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.update(header)
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.ImageType = image_type
        ds.SeriesDescription = description
        ds.ProtocolName = f"{study.vendor} {profile.get('model', '')} {description.split(' (')[0].lower()}"
        ds.SeriesNumber = number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = index + 1  # slice-major, phases within a slice, like most scanners
        rows, cols = image["pixels"].shape
        ds.AcquisitionMatrix = [0, cols, rows, 0]
        normal = np.cross(image["row_direction"], image["column_direction"])
        ds.ImagePositionPatient = [round(float(v), 4) for v in image["position"]]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in (*image["row_direction"], *image["column_direction"])]
        ds.SliceLocation = round(float(np.asarray(image["position"]) @ normal), 4)
        ds.PixelSpacing = [float(v) for v in image["pixel_spacing"]]
        if image.get("phase") is not None:
            t = image["phase"]
            ds.SpacingBetweenSlices = study.spacing[2]
            ds.TriggerTime = round(study.trigger_times_ms[t], 3)
            ds.NominalInterval = int(round(rr_ms))
            ds.HeartRate = int(round(60000.0 / rr_ms))
            ds.CardiacNumberOfImages = n_t
            ds.NumberOfTemporalPositions = n_t
            ds.TemporalPositionIdentifier = t + 1
        ds.Rows, ds.Columns = rows, cols
        ds.WindowCenter = round(window_width / 2.0, 1)
        ds.WindowWidth = round(window_width, 1)
        ds.PixelData = np.ascontiguousarray(image["pixels"], dtype=np.uint16).tobytes()
        ds.save_as(target / f"IM{names[index] + 1:05d}.dcm", enforce_file_format=True)


def _dicom_study(study: Study, folder: Path, name: str) -> None:
    """The short-axis cine plus a localiser and a long-axis cine, both cut from the simulated volume
    through the LV centre (their through-plane resolution is the short-axis slice spacing)."""
    n_t, n_z, rows, cols = study.image.shape
    direction = np.array(study.direction).reshape(3, 3)
    right, down, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    origin = np.array(study.origin)
    spacing_x, spacing_y, spacing_z = study.spacing
    pixels = study.image
    short_axis = [{"pixels": pixels[t, z], "position": origin + z * spacing_z * normal, "row_direction": right,
                   "column_direction": down, "pixel_spacing": (spacing_y, spacing_x), "phase": t, "key": (z, t)}
                  for z in range(n_z) for t in range(n_t)]
    _write_series(study, folder, name, SHORT_AXIS_CINE, short_axis)
    middle_row, middle_col = rows // 2, cols // 2
    # localiser: the plane of the slice normal and the column direction, through the middle column, end-diastole
    localizer = [{"pixels": pixels[study.ed_frame, :, :, middle_col], "position": origin + middle_col * spacing_x * right,
                  "row_direction": down, "column_direction": normal, "pixel_spacing": (spacing_z, spacing_y),
                  "key": ("localizer",)}]
    _write_series(study, folder, name, LOCALIZER, localizer)
    # long-axis cine: the plane of the slice normal and the row direction, through the middle row, every phase
    long_axis = [{"pixels": pixels[t, :, middle_row, :], "position": origin + middle_row * spacing_y * down,
                  "row_direction": right, "column_direction": normal, "pixel_spacing": (spacing_z, spacing_x),
                  "phase": t, "key": ("lax", t)} for t in range(n_t)]
    _write_series(study, folder, name, LONG_AXIS_CINE, long_axis)


def _replace_folder(tmp: Path, target: Path) -> None:
    """Move a completed folder into place; an existing target is replaced only if it holds
    nothing but DICOM files (an earlier phantom series), never other data."""
    if target.exists():
        others = [p for p in target.rglob("*") if p.is_file() and p.suffix.lower() != ".dcm"]
        if others or not target.is_dir():
            raise FileExistsError(f"{target} exists and holds other files than .dcm; not replacing it")
        shutil.rmtree(target)
    os.replace(tmp, target)


# ---------------------------------------------------------------- studies and datasets

def write_study(study: Study, out_dir: str | os.PathLike, fmt: str = "nifti", name: str = "case000",
                cine: bool = True) -> dict[str, Path]:
    """Write one study; returns the written paths by role.

    Roles: `ED`, `ED_gt`, `ES`, `ES_gt` (3D, always), `meta` (JSON: protocol, frames,
    trigger times), and with `cine`: `cine` (4D NIfTI) for fmt="nifti", or `dicom_dir`
    and `labels` (4D NIfTI) for fmt="dicom".
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = _stored_dtype(study.image)
    paths: dict[str, Path] = {}
    for phase, frame in (("ED", study.ed_frame), ("ES", study.es_frame)):
        paths[phase] = out / f"{name}_{phase}.nii.gz"
        paths[f"{phase}_gt"] = out / f"{name}_{phase}_gt.nii.gz"
        _write_sitk(_volume(study.image[frame].astype(dtype), study), paths[phase])
        _write_sitk(_volume(study.labels[frame], study), paths[f"{phase}_gt"])
    if cine and fmt == "nifti":
        paths["cine"] = out / f"{name}_cine.nii.gz"
        _write_cine_nifti(study.image.astype(dtype), study, paths["cine"])
    if cine and fmt == "dicom":
        paths["dicom_dir"] = out / f"{name}_dicom"
        tmp = out / f".tmp-{uuid.uuid4().hex}-{name}_dicom"
        tmp.mkdir()
        try:
            _dicom_study(study, tmp, name)
            _replace_folder(tmp, paths["dicom_dir"])
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        paths["labels"] = out / f"{name}_labels.nii.gz"
        _write_cine_nifti(study.labels, study, paths["labels"])
    paths["meta"] = out / f"{name}_phantom.json"
    description = {key: value for key, value in study.meta.items()}
    description.update(vendor=study.vendor, ed_frame=study.ed_frame, es_frame=study.es_frame,
                       trigger_times_ms=study.trigger_times_ms, shape_tzyx=list(study.image.shape),
                       spacing=list(study.spacing), origin=list(study.origin), direction=list(study.direction))
    paths["meta"].write_text(json.dumps(description, indent=1))
    return paths


def _folder_name(source, profile: dict, used: set[str]) -> str:
    """Per-vendor subfolder: the vendor name, or a profile file's stem, made unique."""
    if isinstance(source, (str, os.PathLike)) and str(source).lower().endswith(".json"):
        base = Path(source).stem.lower()
    else:
        base = profile["vendor"].lower()
    base = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in base) or "scanner"
    name, n = base, 2
    while name in used:
        name, n = f"{base}{n}", n + 1
    used.add(name)
    return name


def write_dataset(out_dir: str | os.PathLike, vendors=VENDORS, subjects: int = 1, seed: int = 0,
                  fmt: str = "nifti", n_phases: int | None = None, n_slices: int | None = None,
                  matrix: int | tuple[int, int] | None = None, source_vendor: str = "Philips",
                  dev_subjects: int = 0, cine: bool = True, progress=None, heart: str = "normal") -> Path:
    """Simulate `subjects` subjects per vendor and write them with a manifest.csv.

    The manifest has the columns of the real data's manifest (subject, vendor, phase,
    image, label, split; paths relative to it), one row per ED and ES volume. Split:
    `train_labelled` for the source vendor, `train_unlabelled` (label column empty, as
    the method may not use target labels; the _gt files are written anyway) for the
    others, except their last `dev_subjects` subjects, `dev_labelled` with labels.
    Each (vendor, subject) has its own anatomy seed derived from `seed`.
    `progress`, if given, is called with (done, total, subject id). `heart`: the kind of every subject's
    heart (subjects.HEART_KINDS).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if subjects < 1:
        raise ValueError(f"subjects must be at least 1, got {subjects}")
    if not 0 <= dev_subjects <= subjects:
        raise ValueError(f"dev_subjects must be between 0 and subjects ({subjects}), got {dev_subjects}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    profiles = [(source, load_profile(source)) for source in vendors]
    used: set[str] = set()
    rows, total, done = [], len(profiles) * subjects, 0
    for source, profile in profiles:
        folder = _folder_name(source, profile, used)
        is_source = profile["vendor"].lower() == source_vendor.lower()
        for index in range(subjects):
            subject_seed = int(np.random.SeedSequence([int(seed), zlib.crc32(folder.encode()), index]).generate_state(1)[0])
            study = make_study(profile, seed=subject_seed, n_phases=n_phases, n_slices=n_slices, matrix=matrix,
                               heart=heart)
            subject = f"{folder}{index:03d}"
            paths = write_study(study, out / folder, fmt=fmt, name=subject, cine=cine)
            if is_source:
                split = "train_labelled"
            elif index >= subjects - dev_subjects:
                split = "dev_labelled"
            else:
                split = "train_unlabelled"
            for phase in ("ED", "ES"):
                label = paths[f"{phase}_gt"].relative_to(out).as_posix() if split != "train_unlabelled" else ""
                rows.append({"subject": subject, "vendor": profile["vendor"], "phase": phase,
                             "image": paths[phase].relative_to(out).as_posix(), "label": label, "split": split})
            done += 1
            if progress is not None:
                progress(done, total, subject)
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest
