"""Pixel data of DICOM files in any transfer syntax an installed decoder reads.

pydicom decodes through plugins: pylibjpeg with its plugins (pylibjpeg-libjpeg: JPEG baseline,
extended, lossless processes 14 and 14 SV1, JPEG-LS; pylibjpeg-openjpeg: JPEG 2000; pylibjpeg-rle:
RLE), pyjpegls (JPEG-LS), Pillow (JPEG, JPEG 2000), GDCM (python-gdcm) and its own (RLE; Deflate is
inflated when the file is read). pylibjpeg and its plugins are this package's dependencies and are
tried first, then the others as installed, so that a result does not depend on which extra packages
a machine happens to have. What no installed plugin decodes is refused before any pixel is read.
"""
from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager

import numpy as np
import pydicom
from pydicom.uid import UID

from ..errors import InputError
from .dicom_frames import frame_count

PREFERRED_DECODERS = ("pylibjpeg", "pyjpegls", "pillow", "gdcm", "pydicom")


def transfer_syntax(ds) -> UID | None:
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return UID(str(uid)) if uid else None


def decoders_for(syntax: UID) -> list[str]:
    """Installed pydicom decoding plugins for a compressed syntax, in the order they are tried."""
    from pydicom.pixels import get_decoder

    try:
        available = list(get_decoder(syntax).available_plugins)
    except (NotImplementedError, ValueError):  # a syntax pydicom knows no decoder for at all
        return []
    return sorted(available, key=lambda name: PREFERRED_DECODERS.index(name) if name in PREFERRED_DECODERS
                  else len(PREFERRED_DECODERS))


def check_decodable(datasets, folder) -> None:
    """Refuse, before any pixel is read, a transfer syntax that no installed decoder handles."""
    syntaxes = Counter(transfer_syntax(ds) for ds in datasets)
    for syntax, count in syntaxes.items():
        if syntax is not None and not syntax.is_transfer_syntax:  # JPEG XL, say, is newer than pydicom 3.0
            raise InputError(f"{folder}: {count} file(s) declare the transfer syntax {syntax}, which this pydicom does "
                             "not know; expected uncompressed images or a supported compression (see docs/dicom.md; "
                             "export the series uncompressed, e.g. 'gdcmconv --raw')")
        if syntax is None or not syntax.is_compressed:
            continue  # no file meta (pydicom assumes an uncompressed syntax), uncompressed, or Deflate
        if not decoders_for(syntax):
            raise InputError(f"{folder}: {count} file(s) use the compressed transfer syntax {syntax.name or syntax} "
                             f"({syntax}), which no installed decoder reads; expected uncompressed images or a "
                             "supported compression (see docs/dicom.md; export the series uncompressed, e.g. "
                             "'dcmdjpeg' or 'gdcmconv --raw')")


# syntaxes whose pixels may have been changed by the compression (JPEG 2000 and JPEG-LS near-lossless can also be
# lossless: the LossyImageCompression tag, when written, says which)
LOSSY_SYNTAXES = {"1.2.840.10008.1.2.4.50": "JPEG baseline", "1.2.840.10008.1.2.4.51": "JPEG extended",
                  "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless", "1.2.840.10008.1.2.4.91": "JPEG 2000",
                  "1.2.840.10008.1.2.4.203": "HTJ2K"}


def lossy_warnings(datasets) -> list[str]:
    """A warning when the images were (or may have been) compressed with loss: the volumes can then differ
    slightly from those of the scanner's original images."""
    marked, possible = 0, Counter()
    for ds in datasets:
        flag = str(getattr(ds, "LossyImageCompression", "") or "").strip()
        if flag == "01":
            marked += 1
        elif flag != "00" and str(transfer_syntax(ds) or "") in LOSSY_SYNTAXES:
            possible[LOSSY_SYNTAXES[str(transfer_syntax(ds))]] += 1
    if marked:
        return [f"{marked} image file(s) were compressed with loss (LossyImageCompression 01): volumes and EF can differ "
                "slightly from the original images'; measure on the scanner's original series where the archive has it"]
    if possible:
        kinds = ", ".join(f"{name} ({count} file(s))" for name, count in sorted(possible.items()))
        return [f"the images are stored as {kinds}, which may have been lossy, and the files do not say "
                "(no LossyImageCompression): volumes and EF can differ slightly from the original images'"]
    return []


def read_pixels(path) -> tuple[pydicom.Dataset, np.ndarray, str]:
    """The file, its stored values as (frames, rows, cols), and the decoder that read them ("" if uncompressed)."""
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises many types for a file damaged after its header
        raise InputError(f"cannot read pixel data of {path.name}: {_reason(err)}; the file is damaged") from None
    syntax = transfer_syntax(ds)
    plugins = decoders_for(syntax) if syntax is not None and syntax.is_compressed else [""]
    errors = []
    for plugin in plugins:  # the first that decodes: a plugin may refuse a variant (bit depth, sign) another reads
        try:
            with _pydicom_log_silenced():
                ds.pixel_array_options(decoding_plugin=plugin)
                pixels = ds.pixel_array
        except Exception as err:  # pydicom and its plugins raise many types for data they cannot decode
            errors.append(f"{plugin or 'pydicom'}: {_reason(err)}")
            continue
        frames = pixels if pixels.ndim == 3 and frame_count(ds) > 1 else pixels[None]
        return ds, frames, plugin
    raise InputError(f"cannot read pixel data of {path.name}: {'; '.join(errors)}; the file is damaged or its "
                     "compression is a variant the installed decoders do not read")


def _reason(err: Exception) -> str:
    """The decoder's own words: pydicom puts them on the last line, under a general one."""
    lines = [line.strip(" :") for line in str(err).splitlines() if line.strip(" :")]
    return (lines[-1] if lines else type(err).__name__)[:160]


@contextmanager
def _pydicom_log_silenced():
    """pydicom logs each failing plugin's traceback; what went wrong is in the one line the reader gives."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
