"""DICOM Structured Report (highdicom, TID 1500 Measurement Report) of the cine's measurements.

Two measurement groups, one per SEG segment (TID 1411, each referencing its segment of the
SEG written beside it): the blood pool with EDV, ESV, SV and EF, the myocardium with the
myocardial mass at end-diastole. Volumes in mL, mass in g, EF in % (UCUM). The ED and ES
frames are given twice: as the source images the EDV and ESV were measured on, and as
frame indices (0-based, as in measurements.json) under this program's own codes, which
DICOM has no standard concept for.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from ..measurements import BLOOD_POOL, MYOCARDIUM
from .algorithm import PROGRAM, AlgorithmInfo

SR_SERIES_NUMBER = 9902
MILLILITRE = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
GRAM = hd.sr.CodedConcept("g", "UCUM", "gram")
FRAME = hd.sr.CodedConcept("{frame}", "UCUM", "frame")
STROKE_VOLUME = hd.sr.CodedConcept("20562-5", "LN", "Left ventricular Stroke volume")
LOCAL_SCHEME = "99UNETGAN"  # private coding scheme: concepts DICOM does not define
ED_FRAME = hd.sr.CodedConcept("ed-frame", LOCAL_SCHEME, "End-diastolic frame index (0-based)")
ES_FRAME = hd.sr.CodedConcept("es-frame", LOCAL_SCHEME, "End-systolic frame index (0-based)")


def _images(frame_headers) -> list[hd.sr.SourceImageForMeasurement]:
    return [hd.sr.SourceImageForMeasurement(ds.SOPClassUID, ds.SOPInstanceUID) for ds in frame_headers]


def _blood_pool_measurements(measurements: dict, headers) -> list[hd.sr.Measurement]:
    if measurements.get("ef_percent") is None:  # one frame: its blood-pool volume only
        volume = measurements["frames"][0]["blood_pool_ml"]
        return [hd.sr.Measurement(codes.SCT.Volume, volume, MILLILITRE, referenced_images=_images(headers[0]))]
    ed, es = measurements["ed_frame"], measurements["es_frame"]
    return [
        hd.sr.Measurement(codes.LN.LeftVentricularEndDiastolicVolume, measurements["edv_ml"], MILLILITRE,
                          referenced_images=_images(headers[ed])),
        hd.sr.Measurement(codes.LN.LeftVentricularEndSystolicVolume, measurements["esv_ml"], MILLILITRE,
                          referenced_images=_images(headers[es])),
        hd.sr.Measurement(STROKE_VOLUME, measurements["sv_ml"], MILLILITRE),
        hd.sr.Measurement(codes.LN.LeftVentricularEjectionFractionByMR, measurements["ef_percent"], codes.UCUM.Percent),
        hd.sr.Measurement(ED_FRAME, ed, FRAME),
        hd.sr.Measurement(ES_FRAME, es, FRAME),
    ]


def build_measurement_report(measurements: dict, seg: Dataset, headers: list[list], algorithm: AlgorithmInfo
                             ) -> hd.sr.Comprehensive3DSR:
    """measurements: as measurements.json; seg: the SEG of the same labels; headers [t][z] of the source images."""
    algorithm_id = hd.sr.AlgorithmIdentification(PROGRAM, algorithm.version or "unknown",
                                                  [f"{k}={v}" for k, v in algorithm.parameters.items()])
    ed = measurements.get("ed_frame") or 0
    mass = measurements.get("myocardial_mass_ed_g")
    mass = measurements["frames"][0]["myocardial_mass_g"] if mass is None else mass
    groups = []
    for number, finding, found in (
            (BLOOD_POOL, codes.SCT.LeftVentricle, _blood_pool_measurements(measurements, headers)),
            (MYOCARDIUM, codes.SCT.LeftVentricleMyocardium,
             [hd.sr.Measurement(codes.LN.LeftVentricleMass, mass, GRAM, referenced_images=_images(headers[ed]))])):
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
    with warnings.catch_warnings():  # highdicom's advice on the source's values (e.g. one-part names): not ours to act on
        warnings.simplefilter("ignore", UserWarning)
        return hd.sr.Comprehensive3DSR(
            evidence=[seg, *(ds for row in headers for ds in row)], content=report[0],
            series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer=PROGRAM, is_complete=True, series_description="LV measurements (UnetGANSlicer)")


def write_measurement_report(path: Path, measurements: dict, seg: Dataset, headers: list[list],
                             algorithm: AlgorithmInfo) -> hd.sr.Comprehensive3DSR:
    report = build_measurement_report(measurements, seg, headers, algorithm)
    report.save_as(Path(path), enforce_file_format=True)
    return report
