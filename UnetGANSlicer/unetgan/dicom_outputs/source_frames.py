"""Source images that are frames of multi-frame files (Enhanced MR), or images of several series (one series per
slice position): referenced as the standard asks.

highdicom builds a SEG on a multi-frame source only when its frames lie at distinct positions,
and a cine in one file images every position at every phase. So each frame is given to highdicom
as a stand-in single-frame header (the file's attributes, the frame's geometry from its functional
groups, a temporary SOP instance UID); the SEG is built as for single-frame images; then every
reference to a stand-in becomes what it stands for: the multi-frame instance's SOP class and
instance UID with the ReferencedFrameNumber of the frame (Derivation Image Sequence), each instance
listed once in the Referenced Series Sequence. The SR's measurements reference frames the same way.
highdicom also builds a SEG from the images of one series only; a short-axis stack joined from one
series per slice position gives the images of the other series stand-ins in the first one's series,
and the Referenced Series Sequence is then regrouped by each image's own series.
highdicom has no such path for cines: written here.
"""
from __future__ import annotations

import copy

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from ..io.dicom_frames import Frame

STAND_IN = "_stands_for"  # attribute of a stand-in header: (the source image's header, its frame number or None)
GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
            "SpacingBetweenSlices", "TriggerTime", "RescaleSlope", "RescaleIntercept")
MULTIFRAME_ONLY = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence", "NumberOfFrames", "PixelData")


def frame_header(ds: Dataset, number: int) -> Dataset:
    """A single-frame stand-in for frame `number` (1-based) of the multi-frame header `ds`."""
    frame = Frame(None, ds, number)
    stand_in = Dataset()
    for element in ds:
        if element.keyword not in MULTIFRAME_ONLY:
            stand_in.add(copy.deepcopy(element))
    for keyword in GEOMETRY:
        value = frame.get(keyword)
        if value is not None:
            setattr(stand_in, keyword, value)
    stand_in.file_meta = copy.deepcopy(ds.file_meta) if hasattr(ds, "file_meta") else Dataset()
    stand_in.SOPClassUID = MRImageStorage
    stand_in.SOPInstanceUID = hd.UID()
    setattr(stand_in, STAND_IN, (ds, number))
    return stand_in


def in_one_series(headers) -> list[list[Dataset]]:
    """Headers [t][z] with those outside the first image's series replaced by stand-ins inside it."""
    first = headers[0][0].SeriesInstanceUID
    joined = []
    for row in headers:
        joined.append([])
        for ds in row:
            if ds.SeriesInstanceUID != first:
                if not hasattr(ds, STAND_IN):
                    source = ds
                    ds = copy.deepcopy(source)
                    ds.SOPInstanceUID = hd.UID()
                    setattr(ds, STAND_IN, (source, None))
                ds.SeriesInstanceUID = first
            joined[-1].append(ds)
    return joined


def _stood_for(headers) -> dict[str, tuple[Dataset, int]]:
    return {str(ds.SOPInstanceUID): getattr(ds, STAND_IN) for row in headers for ds in row if hasattr(ds, STAND_IN)}


def _items(ds: Dataset):
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield item
                yield from _items(item)


def refer_to_frames(seg: Dataset, headers) -> None:
    """Replace the references to stand-ins in `seg` by the multi-frame instances and their frame numbers."""
    stood_for = _stood_for(headers)
    if not stood_for:
        return
    for item in _items(seg):
        uid = str(getattr(item, "ReferencedSOPInstanceUID", ""))
        if uid in stood_for:
            source, number = stood_for[uid]
            item.ReferencedSOPClassUID = source.SOPClassUID
            item.ReferencedSOPInstanceUID = source.SOPInstanceUID
            if number is not None:
                item.ReferencedFrameNumber = number
    series_of = {str(source.SOPInstanceUID): str(source.SeriesInstanceUID) for source, _ in stood_for.values()}
    regrouped: dict[str, dict] = {}
    for series in getattr(seg, "ReferencedSeriesSequence", []):
        for instance in series.ReferencedInstanceSequence:
            if "ReferencedFrameNumber" in instance:  # the instance reference macro names instances, not frames
                del instance.ReferencedFrameNumber
            uid = str(instance.ReferencedSOPInstanceUID)
            regrouped.setdefault(series_of.get(uid, str(series.SeriesInstanceUID)), {}).setdefault(uid, instance)
    if regrouped:
        items = []
        for series_uid, instances in regrouped.items():
            item = Dataset()
            item.SeriesInstanceUID = series_uid
            item.ReferencedInstanceSequence = list(instances.values())
            items.append(item)
        seg.ReferencedSeriesSequence = items


def stands_for(ds: Dataset) -> tuple[Dataset, int | None]:
    """(source image's header, frame number or None) of the image a header is, or stands in for."""
    return getattr(ds, STAND_IN, (ds, None))


def source_key(ds: Dataset) -> tuple[str, int | None]:
    """(SOP instance UID, frame number or None) of the image a header is, or stands in for."""
    source, number = stands_for(ds)
    return str(source.SOPInstanceUID), number


def referenced_key(item: Dataset) -> tuple[str, int | None]:
    """(SOP instance UID, frame number or None) that a reference item (after :func:`refer_to_frames`) names."""
    number = item.get("ReferencedFrameNumber")
    return str(item.ReferencedSOPInstanceUID), None if number is None else int(number)


def measurement_images(frame_headers) -> list[hd.sr.SourceImageForMeasurement]:
    """The SR's references to the images of one phase: instances, or a multi-frame instance's frames."""
    frames_of: dict[str, list] = {}
    classes = {}
    for ds in frame_headers:
        source, number = stands_for(ds)
        uid = str(source.SOPInstanceUID)
        classes[uid] = source.SOPClassUID
        frames_of.setdefault(uid, [])
        if number is not None:
            frames_of[uid].append(number)
    return [hd.sr.SourceImageForMeasurement(classes[uid], uid, referenced_frame_numbers=sorted(numbers) or None)
            for uid, numbers in frames_of.items()]


def evidence(headers) -> list[Dataset]:
    """The source instances of the headers [t][z], each once (a multi-frame file for its stand-ins)."""
    once = {}
    for row in headers:
        for ds in row:
            source = stands_for(ds)[0]
            once.setdefault(str(source.SOPInstanceUID), source)
    return list(once.values())
