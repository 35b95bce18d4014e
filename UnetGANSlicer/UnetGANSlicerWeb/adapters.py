"""The page's adapter list and what a choice means for a run, from the MRML layer.

The list is ``UnetGANSlicerLib.models.adapter_choices`` (Automatic, the shipped adapters by
vendor name, None, the user's own), read from the registry the backend uses. "Automatic"
is resolved as the Slicer panel resolves it (``UnetGANSlicerLib.vendor.choose_adapter``):
the DICOM Manufacturer of the loaded files names the vendor; without DICOM origin the
backend's ``--adapter auto`` chooses from the images and says so in a warning.
"""
from __future__ import annotations

import logging
from pathlib import Path

from UnetGANSlicerLib import models, vendor

log = logging.getLogger("unetgan.web")

AUTOMATIC, NO_ADAPTER = models.AUTOMATIC, models.NO_ADAPTER


def _options() -> list:
    try:
        return models.adapter_choices()
    except Exception as err:  # noqa: BLE001 - a broken registry must not stop the page; it is reported on use
        log.warning("cannot read the model registry: %s", err)
        return [models.AdapterOption("Automatic", AUTOMATIC), models.AdapterOption("None", NO_ADAPTER)]


def selected_at_start(preferred: str | None, options: list | None = None) -> str:
    """The list's value for the command line's --adapter: a shipped adapter named by its vendor is that entry;
    nothing given is Automatic."""
    if not preferred:
        return AUTOMATIC
    for option in options if options is not None else _options():
        if not option.user and option.vendor and option.vendor.lower() == preferred.lower():
            return option.value
    return preferred


def adapter_items(preferred: str | None = None) -> list[dict]:
    """Select items ({title, value, subtitle}); ``preferred`` (the command line's --adapter) is added when
    the list lacks it (a file, or a name the backend resolves)."""
    options = _options()
    items = []
    for option in options:
        title = option.label
        if option.choice is not None and not option.choice.available:
            title += " - file missing"
        items.append({"title": title, "value": option.value, "subtitle": option.description})
    preferred = selected_at_start(preferred, options) if preferred else None
    if preferred and preferred not in [item["value"] for item in items]:
        title = f"{Path(preferred).name} (file)" if Path(preferred).suffix else preferred
        items.insert(1, {"title": title, "value": preferred, "subtitle": "given on the command line"})
    return items


def automatic_choice(loaded) -> vendor.AutomaticAdapter:
    """What "Automatic" means for a loaded image (its DICOM files answer for the Manufacturer)."""
    return vendor.choose_adapter(loaded.volume, database=loaded.dicom_index)


def backend_adapter(value: str | None, loaded) -> tuple[str | None, str]:
    """(the backend's --adapter for the page's choice, None for no adapter; a note for the user), resolved as the
    Slicer panel resolves it (``UnetGANSlicerLib.vendor.resolve_adapter``) with the loaded files' DICOM index."""
    adapter, note = vendor.resolve_adapter(loaded.volume, value, database=loaded.dicom_index)
    return (None if adapter == NO_ADAPTER else adapter), note


def translated_title(adapter: str | None) -> str:
    """The right view's title for a result made with ``adapter`` (the backend's record of it)."""
    if not adapter:
        return "No adapter: the image as it is"
    source_vendor = models.adapter_source_vendor(adapter, _options())
    if source_vendor:
        return f"Translated to the {source_vendor} look"
    return "Translated to the look the segmenter was trained on"
