"""The adapter for a volume without asking: from the DICOM Manufacturer of its series, else ``--adapter auto``.

Slicer's DICOM module records, on every volume it loads, the SOP instance UIDs of
its files (attribute ``DICOM.instanceUIDs``; for a cine, on the items of the
volume sequence). They lead to the DICOM database, which knows each instance's
Manufacturer (0008,0070). The vendor it names is mapped to an adapter exactly as
the backend's ``--adapter auto`` maps it (``unetgan.adapter_choice``): the vendor
the segmenter was trained on needs no adapter, a vendor with an adapter gets it
(``--adapter <vendor>``). A volume without DICOM origin (a NIfTI or NRRD file),
or a vendor without an adapter, is left to the backend's ``--adapter auto``, which
runs the candidates on a few slices and keeps the one the label-free criterion
scores best, and says so in a warning.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import models
from .models import available_models
from .sequences import find_cine

INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
MANUFACTURER_TAG = "0008,0070"
AUTO = "auto"


@dataclass(frozen=True)
class AutomaticAdapter:
    adapter: str  # what --adapter takes: a vendor with an adapter, "none", or "auto" (the backend decides)
    vendor: str | None  # the vendor the DICOM Manufacturer names, when known
    manufacturer: str | None  # the Manufacturer string as the database has it
    text: str  # what the panel shows, e.g. "Automatic: GE, from DICOM"


def uid_carriers(volume_node) -> list:
    """The nodes that may carry the volume's DICOM.instanceUIDs: itself, and for a cine every item and the sequence."""
    _browser, sequence = find_cine(volume_node)
    if sequence is None:
        return [volume_node]
    return [volume_node, *(sequence.GetNthDataNode(t) for t in range(sequence.GetNumberOfDataNodes())), sequence]


def instance_uids(volume_node) -> list[str]:
    """SOP instance UIDs of the files a volume was loaded from (its own, else its cine's first item's)."""
    for node in uid_carriers(volume_node):
        value = node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) if node is not None else None
        if value:
            return value.split()
    return []


class DicomFileIndex:
    """The three ctkDICOMDatabase calls this layer makes, answered from given DICOM files
    (for front ends without Slicer's DICOM database: scripts, the web page, tests)."""

    def __init__(self, files):
        import pydicom

        self.files = {}
        for path in files:
            try:
                uid = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID
            except Exception:  # noqa: BLE001 - not a DICOM file
                continue
            self.files[str(uid)] = str(path)

    def instanceValue(self, uid, tag):  # noqa: N802 - ctkDICOMDatabase's names
        return ""  # nothing cached: read from the file

    def fileForInstance(self, uid):  # noqa: N802
        return self.files.get(uid, "")

    def fileValue(self, path, tag):  # noqa: N802
        import pydicom

        group, element = (int(part, 16) for part in tag.split(","))
        value = pydicom.dcmread(path, stop_before_pixels=True).get((group, element))
        return "" if value is None else str(value.value)


class FolderDicomIndex(DicomFileIndex):
    """The same over every DICOM file in a folder and its sub-folders."""

    def __init__(self, folder):
        super().__init__(path for path in sorted(Path(folder).rglob("*")) if path.is_file())


def dicom_database():
    """Slicer's DICOM database (None outside the application or when none is open)."""
    import slicer

    return getattr(slicer, "dicomDatabase", None)


def dicom_manufacturer(volume_node, database=None) -> str | None:
    """The Manufacturer (0008,0070) of the volume's DICOM series, from the DICOM database; None if unknown."""
    database = database if database is not None else dicom_database()
    if database is None:
        return None
    for uid in instance_uids(volume_node)[:3]:  # one file answers; a few in case one was removed
        value = str(database.instanceValue(uid, MANUFACTURER_TAG) or "").strip()
        if not value:
            path = database.fileForInstance(uid)
            value = str(database.fileValue(path, MANUFACTURER_TAG) or "").strip() if path else ""
        if value:
            return value
    return None


def adapter_for_vendor(vendor: str | None) -> str:
    """What ``--adapter auto`` would take for this vendor: "none" for the segmenter's own vendor,
    the vendor's name when the registry has an adapter for it, else "auto" (the backend's image check)."""
    if vendor is None:
        return AUTO
    adapters = available_models("adapter")
    if vendor.lower() in {(choice.source_vendor or "").lower() for choice in adapters}:
        return "none"
    bundled = [c for c in adapters if not c.user and (c.target_vendor or "").lower() == vendor.lower()]
    if bundled:
        return vendor  # the registry's adapter for the vendor, as `--adapter <vendor>` picks it
    yours = [c for c in adapters if (c.target_vendor or "").lower() == vendor.lower()]
    return yours[-1].argument if yours else AUTO  # the newest adapter trained in the module


def choose_adapter(volume_node, database=None) -> AutomaticAdapter:
    """The adapter for ``volume_node``: from its DICOM Manufacturer when the database knows it, else "auto"."""
    from unetgan.adapter_choice import vendor_of  # the backend's reading of Manufacturer strings

    manufacturer = dicom_manufacturer(volume_node, database)
    vendor = vendor_of(manufacturer)
    adapter = adapter_for_vendor(vendor)
    if adapter == AUTO:
        why = (f"DICOM Manufacturer {manufacturer!r} has no adapter" if manufacturer
               else "no DICOM origin")
        text = f"Automatic: {why}; the backend tries the adapters on a few slices and keeps the best by the label-free check"
    elif adapter == "none":
        text = f"Automatic: no adapter, {vendor} from DICOM (the segmenter's own vendor)"
    else:
        text = f"Automatic: {vendor}, from DICOM"
    return AutomaticAdapter(adapter, vendor, manufacturer, text)


def resolve_adapter(volume_node, value: str | None, user_registry=None, database=None) -> tuple[str, str]:
    """(adapter for the backend, what to tell the user), as both front ends resolve their adapter list's choice.
    value: an entry's value (``models.adapter_choices``); nothing chosen is "none". A user's adapter is checked
    against its registered SHA256; "auto" becomes the DICOM vendor's adapter when the DICOM database
    (``database``, else Slicer's) knows the series' Manufacturer, else stays "auto" for the backend's label-free
    choice (the note says so)."""
    for option in models.adapter_choices(user_registry):
        if option.value == value and option.choice is not None:
            return option.backend_argument(), ""
    if value != models.AUTOMATIC or volume_node is None:
        return value or models.NO_ADAPTER, ""
    choice = choose_adapter(volume_node, database=database)
    return choice.adapter, choice.text
