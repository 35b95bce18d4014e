"""DICOM Structured Report (highdicom, TID 1500 Measurement Report) of the cine's measurements.

Two measurement groups, one per SEG segment (TID 1411, each referencing its segment of the
SEG written beside it): the blood pool with EDV, ESV, SV and EF, the myocardium with the
myocardial mass at end-diastole and its volume's variation over the cycle. Volumes in mL,
mass in g, EF in % (UCUM). The ED and ES frames are given twice: as the source images the
EDV and ESV were measured on, and as frame numbers (1-based: frame 1 is the first phase, as
in measurements.json and on every page) under this program's own codes, which DICOM has no
standard concept for; so are the frames the user edited. The warnings of the result follow
as comments (TEXT items), in the words the page and the report use.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ..measurements import BLOOD_POOL, MYOCARDIUM, frame_index
from .algorithm import PROGRAM, AlgorithmInfo
from .source import institution_of
from .source_frames import evidence, measurement_images

SR_SERIES_NUMBER = 9902
MILLILITRE = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
GRAM = hd.sr.CodedConcept("g", "UCUM", "gram")
FRAME = hd.sr.CodedConcept("{frame}", "UCUM", "frame")
STROKE_VOLUME = hd.sr.CodedConcept("20562-5", "LN", "Left ventricular Stroke volume")
LOCAL_SCHEME = "99UNETGAN"  # private coding scheme: concepts DICOM does not define (code values up to 16
# characters: longer ones become LongCodeValue, which highdicom's reader does not take)
ED_FRAME = hd.sr.CodedConcept("ed-frame", LOCAL_SCHEME, "End-diastolic frame number (1-based)")
ES_FRAME = hd.sr.CodedConcept("es-frame", LOCAL_SCHEME, "End-systolic frame number (1-based)")
EDITED_FRAME = hd.sr.CodedConcept("edited-frame", LOCAL_SCHEME, "Frame whose masks the user edited (1-based)")
MYOCARDIAL_VARIATION = hd.sr.CodedConcept("myo-variation", LOCAL_SCHEME,
                                          "Myocardial volume variation over the cycle ((max-min)/mean)")


def _blood_pool_measurements(measurements: dict, headers) -> list[hd.sr.Measurement]:
    if measurements.get("ef_percent") is None:  # one frame: its blood-pool volume only
        volume = measurements["frames"][0]["blood_pool_ml"]
        return [hd.sr.Measurement(codes.SCT.Volume, volume, MILLILITRE,
                                  referenced_images=measurement_images(headers[0]))]
    ed, es = frame_index(measurements, "ed"), frame_index(measurements, "es")
    return [
        hd.sr.Measurement(codes.LN.LeftVentricularEndDiastolicVolume, measurements["edv_ml"], MILLILITRE,
                          referenced_images=measurement_images(headers[ed])),
        hd.sr.Measurement(codes.LN.LeftVentricularEndSystolicVolume, measurements["esv_ml"], MILLILITRE,
                          referenced_images=measurement_images(headers[es])),
        hd.sr.Measurement(STROKE_VOLUME, measurements["sv_ml"], MILLILITRE),
        hd.sr.Measurement(codes.LN.LeftVentricularEjectionFractionByMR, measurements["ef_percent"], codes.UCUM.Percent),
        hd.sr.Measurement(ED_FRAME, ed + 1, FRAME),
        hd.sr.Measurement(ES_FRAME, es + 1, FRAME),
    ]


def _myocardium_measurements(measurements: dict, headers) -> list[hd.sr.Measurement]:
    ed = frame_index(measurements, "ed") or 0
    mass = measurements.get("myocardial_mass_ed_g")
    mass = measurements["frames"][0]["myocardial_mass_g"] if mass is None else mass
    found = [hd.sr.Measurement(codes.LN.LeftVentricleMass, mass, GRAM,
                               referenced_images=measurement_images(headers[ed]))]
    if measurements.get("myocardial_volume_variation_percent") is not None:
        found.append(hd.sr.Measurement(MYOCARDIAL_VARIATION, measurements["myocardial_volume_variation_percent"],
                                       codes.UCUM.Percent))
    return found


def _edits(measurements: dict) -> list[hd.sr.Measurement]:
    return [hd.sr.Measurement(EDITED_FRAME, number, FRAME) for number in measurements.get("edited_frames") or []]


def comments(measurements: dict) -> list[str]:
    """The report's words beside the numbers: which frames the user edited, then every warning."""
    said = []
    if measurements.get("edited_frames"):
        said.append(f"Masks edited by the user in frame(s) {', '.join(map(str, measurements['edited_frames']))} "
                    "(frame 1 is the first phase)")
    return said + [f"Warning: {warning}" for warning in measurements.get("warnings") or []]


def build_measurement_report(measurements: dict, seg: Dataset, headers: list[list], algorithm: AlgorithmInfo
                             ) -> hd.sr.Comprehensive3DSR:
    """measurements: as measurements.json; seg: the SEG of the same labels; headers [t][z] of the source images."""
    algorithm_id = hd.sr.AlgorithmIdentification(PROGRAM, algorithm.version or "unknown",
                                                  [f"{k}={v}" for k, v in algorithm.parameters.items()])
    groups = []
    for number, finding, found in (
            (BLOOD_POOL, codes.SCT.LeftVentricle, _blood_pool_measurements(measurements, headers) + _edits(measurements)),
            (MYOCARDIUM, codes.SCT.LeftVentricleMyocardium, _myocardium_measurements(measurements, headers))):
        label = str(seg.SegmentSequence[number - 1].SegmentLabel)
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=label),
            referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, number),
            finding_type=finding, algorithm_id=algorithm_id, measurements=found))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=PROGRAM, manufacturer_name=PROGRAM, model_name=algorithm.shown()[:64]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.CardiacMRI, imaging_measurements=groups)
    for text in comments(measurements):  # free text beside the measurement groups, as TID 1500 lets a report say
        report[0].ContentSequence.append(hd.sr.TextContentItem(codes.DCM.Comment, text[:1024],
                                                               hd.sr.RelationshipTypeValues.CONTAINS))
    with warnings.catch_warnings():  # highdicom's advice on the source's values (e.g. one-part names): not ours to act on
        warnings.simplefilter("ignore", UserWarning)
        return hd.sr.Comprehensive3DSR(
            evidence=[seg, *evidence(headers)], content=report[0],
            series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer=PROGRAM, is_complete=True, series_description="LV measurements (UnetGANSlicer)",
            institution_name=institution_of(headers))


def write_measurement_report(path: Path, measurements: dict, seg: Dataset, headers: list[list],
                             algorithm: AlgorithmInfo) -> hd.sr.Comprehensive3DSR:
    report = build_measurement_report(measurements, seg, headers, algorithm)
    report.save_as(Path(path), enforce_file_format=True)
    return report
