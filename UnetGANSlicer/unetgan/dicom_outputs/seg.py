"""DICOM Segmentation (highdicom) of the LV blood pool and myocardium on every image of the cine.

One SEG instance references the source SOP instance of each frame; segment 1 is the blood
pool and segment 2 the myocardium, the label values of our labelmaps, so that a labelmap
and its SEG name the same structure by the same number. Patient and study attributes come
from the source series (highdicom copies them), so PACS files the SEG with its study.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes

from ..measurements import BLOOD_POOL, MYOCARDIUM
from .algorithm import PROGRAM, AlgorithmInfo
from .source import institution_of
from .source_frames import referenced_key, refer_to_frames, source_key

SEG_SERIES_NUMBER = 9901  # far above a scanner's own series numbers
SEGMENT_LABELS = {BLOOD_POOL: "Left ventricle blood pool", MYOCARDIUM: "Left ventricle myocardium"}
# SNOMED CT: "Left ventricle" (87878005) for the cavity, as Slicer's and TotalSegmentator's heart terminologies do;
# "Left ventricle myocardium" (49848007)
SEGMENT_TYPES = {BLOOD_POOL: codes.SCT.LeftVentricle, MYOCARDIUM: codes.SCT.LeftVentricleMyocardium}


def algorithm_type(edited: bool) -> hd.seg.SegmentAlgorithmTypeValues:
    """AUTOMATIC for masks as the networks made them, SEMIAUTOMATIC once a user changed them."""
    values = hd.seg.SegmentAlgorithmTypeValues
    return values.SEMIAUTOMATIC if edited else values.AUTOMATIC


def _segment_descriptions(algorithm: AlgorithmInfo, edited: bool = False) -> list[hd.seg.SegmentDescription]:
    identification = hd.AlgorithmIdentificationSequence(
        name=PROGRAM, family=codes.DCM.ArtificialIntelligence, version=algorithm.version,
        parameters=algorithm.parameters)
    return [hd.seg.SegmentDescription(
        segment_number=number, segment_label=label, segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=SEGMENT_TYPES[number], algorithm_type=algorithm_type(edited),
        algorithm_identification=identification, tracking_uid=hd.UID(), tracking_id=label)
        for number, label in SEGMENT_LABELS.items()]


def phase_segmentation(labels: np.ndarray, headers: list, algorithm: AlgorithmInfo, series_uid: str | None = None,
                       sop_uid: str | None = None, edited: bool = False) -> hd.seg.Segmentation:
    """The SEG of one cardiac phase: labels (Z, Y, X) on the Z source images of that phase (``edited``: a user
    changed the masks, so the segments are SEMIAUTOMATIC).

    Also on its own: Slicer's SEG reader (dcmqi) shows a cine SEG as the union over its phases, a
    phase's SEG as it is (e.g. the ED and ES phases for a front end's export)."""
    with warnings.catch_warnings():  # highdicom's advice on the source's values (e.g. one-part names): not ours to act on
        warnings.simplefilter("ignore", UserWarning)
        seg = hd.seg.Segmentation(
            source_images=headers, pixel_array=np.ascontiguousarray(labels, dtype=np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=_segment_descriptions(algorithm, edited),
            series_instance_uid=series_uid or hd.UID(), series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=sop_uid or hd.UID(), instance_number=1, manufacturer=PROGRAM,
            manufacturer_model_name=f"{PROGRAM} LV-Unet", software_versions=algorithm.version or "unknown",
            device_serial_number="none", series_description="LV segmentation (UnetGANSlicer)",
            institution_name=institution_of(headers),
            content_label="LV_SEGMENTATION", content_description=algorithm.shown()[:64],
            omit_empty_frames=False)  # every source image gets its frames: read back, each image has its mask
    refer_to_frames(seg, [headers])  # frames of multi-frame sources: their instance and ReferencedFrameNumber
    return seg


def build_segmentation(labels: np.ndarray, headers: list[list], algorithm: AlgorithmInfo, edited: bool = False
                       ) -> Dataset:
    """One SEG instance for a whole cine: labels (T, Z, Y, X) with values 0, 1, 2; headers [t][z] of the images.

    highdicom builds a SEG for images at distinct positions only (one phase). A cine images each
    position at every phase, so the SEG is built per phase by highdicom (segments, references, patient
    and study, plane positions) and the phases' frames are joined into one instance, with the phase
    as a third dimension (TemporalPositionIndex, organisation 3D_TEMPORAL) as the standard provides."""
    frames, slices = labels.shape[:2]
    if len(headers) != frames or any(len(row) != slices for row in headers):
        raise ValueError(f"labels {labels.shape[:2]} and source images {len(headers)} x {len(headers[0])} differ")
    series_uid, sop_uid = hd.UID(), hd.UID()
    where = {source_key(ds): (t, z) for t, row in enumerate(headers) for z, ds in enumerate(row)}
    joined, per_frame, masks, referenced = None, [], [], {}
    for t in range(frames):
        phase = phase_segmentation(labels[t], headers[t], algorithm, series_uid, sop_uid, edited)
        joined = joined or phase
        for item in phase.PerFrameFunctionalGroupsSequence:
            source = referenced_key(item.DerivationImageSequence[0].SourceImageSequence[0])
            segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            t_of, z_of = where[source]
            content = item.FrameContentSequence[0]
            content.TemporalPositionIndex = t_of + 1
            content.DimensionIndexValues = [*content.DimensionIndexValues, t_of + 1]
            per_frame.append(item)
            masks.append(labels[t_of, z_of] == segment)
        for series in phase.ReferencedSeriesSequence:
            for instance in series.ReferencedInstanceSequence:
                referenced.setdefault(series.SeriesInstanceUID, {})[instance.ReferencedSOPInstanceUID] = instance
    temporal = Dataset()
    temporal.DimensionOrganizationUID = joined.DimensionIndexSequence[0].DimensionOrganizationUID
    temporal.DimensionIndexPointer = tag_for_keyword("TemporalPositionIndex")
    temporal.FunctionalGroupPointer = tag_for_keyword("FrameContentSequence")
    temporal.DimensionDescriptionLabel = "Temporal Position Index"
    joined.DimensionIndexSequence.append(temporal)
    if "DimensionOrganizationType" in joined:
        joined.DimensionOrganizationType = "3D_TEMPORAL"
    joined.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    joined.NumberOfFrames = len(per_frame)
    for series in joined.ReferencedSeriesSequence:
        series.ReferencedInstanceSequence = Sequence(list(referenced[series.SeriesInstanceUID].values()))
    joined.PixelData = pack_bits(np.stack(masks).astype(np.uint8))
    return joined


def write_segmentation(path: Path, labels: np.ndarray, headers: list[list], algorithm: AlgorithmInfo,
                       edited: bool = False) -> Dataset:
    seg = build_segmentation(labels, headers, algorithm, edited)
    seg.save_as(Path(path), enforce_file_format=True)
    return seg
