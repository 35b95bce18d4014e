"""A DICOM cine rewritten the ways scanners and archives write it, by other libraries than the reader's.

For the tests and scripts/dicom_layouts.py, which read each rewrite back and compare it with the
original: compressed transfer syntaxes encoded with python-gdcm (a development dependency: the reader
decodes with pylibjpeg) or pyjpegls through pydicom; Enhanced MR multi-frame files by highdicom's legacy
conversion (one file for the whole cine, or one per slice position with the Enhanced MR's own cardiac
and temporal tags); one series per slice position, as Siemens exports and public sets hold them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (JPEG2000, DeflatedExplicitVRLittleEndian, JPEG2000Lossless, JPEGLossless, JPEGLosslessSV1,
                         JPEGLSLossless, JPEGLSNearLossless, RLELossless, generate_uid)

JPEG2000_RATE = 10  # 10:1, as archives keep older studies
JPEGLS_ERROR = 2  # near-lossless: each value within 2 of the original
# syntax: (encoder, lossless)
SYNTAXES = {
    JPEGLosslessSV1: ("gdcm", True),
    JPEGLossless: ("gdcm", True),
    JPEGLSLossless: ("pyjpegls", True),
    JPEGLSNearLossless: ("gdcm", False),
    JPEG2000Lossless: ("gdcm", True),
    JPEG2000: ("gdcm", False),
    RLELossless: ("gdcm", True),
    DeflatedExplicitVRLittleEndian: ("gdcm", True),
}


def _gdcm_codec(syntax):
    """GDCM's lossy settings; its defaults for the lossy syntaxes are lossless."""
    import gdcm

    if syntax == JPEG2000:
        codec = gdcm.JPEG2000Codec()
        codec.SetRate(0, JPEG2000_RATE)
        return codec
    if syntax == JPEGLSNearLossless:
        codec = gdcm.JPEGLSCodec()
        codec.SetLossless(False)
        codec.SetLossyError(JPEGLS_ERROR)
        return codec
    return None


def _with_gdcm(path: Path, syntax) -> None:
    import gdcm

    if syntax == DeflatedExplicitVRLittleEndian:  # the data set deflated, the pixels as they are
        reader = gdcm.Reader()
        reader.SetFileName(str(path))
        if not reader.Read():
            raise ValueError(f"GDCM cannot read {path}")
        reader.GetFile().GetHeader().SetDataSetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(syntax)))
        writer = gdcm.Writer()
        writer.SetFile(reader.GetFile())
    else:
        reader = gdcm.ImageReader()
        reader.SetFileName(str(path))
        if not reader.Read():
            raise ValueError(f"GDCM cannot read {path}")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(syntax)))
        codec = _gdcm_codec(syntax)
        if codec is not None:
            change.SetUserCodec(codec)
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ValueError(f"GDCM cannot encode {path} as {syntax.name}")
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
    writer.SetFileName(str(path))
    if not writer.Write():
        raise ValueError(f"GDCM cannot write {path}")


def _with_pyjpegls(path: Path, syntax) -> None:
    ds = pydicom.dcmread(path)
    ds.compress(syntax, encoding_plugin="pyjpegls", jls_error=0 if syntax == JPEGLSLossless else JPEGLS_ERROR)
    ds.save_as(path)


ENCODERS = {"gdcm": _with_gdcm, "pyjpegls": _with_pyjpegls}


def recompress(folder: Path, syntax) -> str:
    """Every DICOM file below `folder` re-encoded in `syntax`, in place; the encoder's name."""
    encoder = SYNTAXES[syntax][0]
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and _is_dicom(p)):
        ENCODERS[encoder](path, syntax)
    return encoder


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:] == b"DICM"


def cine_files(paths) -> list[tuple[Dataset, Path]]:
    """The single-frame images of one cine series, by slice position (along the normal), then trigger time.

    Some anonymisers give every image its own FrameOfReferenceUID (Sunnybrook): the copies share the first's,
    as a multi-frame file and a stack of series need (and as the DICOM outputs do, with a warning)."""
    files = [(pydicom.dcmread(p), Path(p)) for p in paths]
    for ds, _ in files:
        ds.FrameOfReferenceUID = files[0][0].FrameOfReferenceUID
    location = _locator(files)
    return sorted(files, key=lambda f: (location(f[0]), float(getattr(f[0], "TriggerTime", 0) or 0)))


def _locator(files):
    """Each image's position along the first image's slice normal (mm, to 0.01 mm)."""
    orientation = np.array([float(v) for v in files[0][0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    return lambda ds: round(float(np.array(ds.ImagePositionPatient, float) @ normal), 2)


def _slices(files) -> list[list[tuple[Dataset, Path]]]:
    location = _locator(files)
    by_position: dict[float, list] = {}
    for ds, path in files:
        by_position.setdefault(location(ds), []).append((ds, path))
    return [by_position[key] for key in sorted(by_position)]


def _legacy_multiframe(datasets, number: int) -> Dataset:
    import highdicom as hd

    from ..dicom_outputs.source import blank_unreadable_dates

    datasets = [blank_unreadable_dates(ds) for ds in datasets]  # anonymised dates ('20120000') stop the conversion
    return hd.legacy.LegacyConvertedEnhancedMRImage(datasets, series_instance_uid=datasets[0].SeriesInstanceUID,
                                                    series_number=int(datasets[0].SeriesNumber or 1),
                                                    sop_instance_uid=hd.UID(), instance_number=number)


def _enhanced_cardiac_tags(ds: Dataset) -> Dataset:
    """As an Enhanced MR writes them: the trigger delay in the Cardiac Synchronization Sequence and the phase in
    the Frame Content Sequence's TemporalPositionIndex, nothing left in the legacy conversion's 'unassigned' group."""
    triggers = sorted({float(item.UnassignedPerFrameConvertedAttributesSequence[0].TriggerTime)
                       for item in ds.PerFrameFunctionalGroupsSequence})
    for item in ds.PerFrameFunctionalGroupsSequence:
        unassigned = item.UnassignedPerFrameConvertedAttributesSequence[0]
        cardiac = Dataset()
        cardiac.NominalCardiacTriggerDelayTime = unassigned.TriggerTime
        item.CardiacSynchronizationSequence = Sequence([cardiac])
        item.FrameContentSequence[0].TemporalPositionIndex = triggers.index(float(unassigned.TriggerTime)) + 1
        del item.UnassignedPerFrameConvertedAttributesSequence
    return ds


def as_one_multiframe_file(paths, target: Path) -> list[Path]:
    """The cine of `paths` as one Legacy Converted Enhanced MR file in `target`."""
    out = Path(target) / "cine.dcm"
    _legacy_multiframe([ds for ds, _ in cine_files(paths)], 1).save_as(out)
    return [out]


def as_multiframe_file_per_slice(paths, target: Path) -> list[Path]:
    """One multi-frame file per slice position (its phases), with the Enhanced MR's cardiac and temporal tags."""
    written = []
    for z, files in enumerate(_slices(cine_files(paths))):
        out = Path(target) / f"slice{z:03d}.dcm"
        _enhanced_cardiac_tags(_legacy_multiframe([ds for ds, _ in files], z + 1)).save_as(out)
        written.append(out)
    return written


def as_series_per_slice(paths, target: Path, keep=None, first_number: int = 5) -> list[Path]:
    """One series per slice position, described sax_5, sax_6, ... as Siemens exports them; `keep`: the slice
    indices to write (default all)."""
    written = []
    for z, files in enumerate(_slices(cine_files(paths))):
        if keep is not None and z not in keep:
            continue
        uid = generate_uid(entropy_srcs=[str(files[0][1].parent), str(z)])
        for ds, path in files:
            ds.SeriesInstanceUID = uid
            ds.SeriesNumber, ds.SeriesDescription = first_number + z, f"sax_{first_number + z}"
            out = Path(target) / path.name
            ds.save_as(out)
            written.append(out)
    return written


LAYOUTS = {"one multi-frame file": as_one_multiframe_file, "a multi-frame file per slice": as_multiframe_file_per_slice,
           "a series per slice position": as_series_per_slice}
