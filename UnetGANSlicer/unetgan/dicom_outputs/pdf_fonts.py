"""Fonts for the PDF report: names in whatever script the DICOM files declare (ISO_IR 100, ISO_IR 192, ...).

matplotlib draws text along a list of font families, falling back glyph by glyph (matplotlib 3.6 and
later). The list here: DejaVu Sans (matplotlib's own: Latin, Greek, Cyrillic), then installed fonts
that have the glyphs DejaVu Sans lacks (e.g. Noto Sans CJK on Linux, Yu Gothic or MS Gothic on a
Windows workstation). A character that no installed font has would be drawn as an empty box; instead
it is shown as '?', and the report says which characters it could not show and that the DICOM files
hold them intact.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from functools import lru_cache

BASE_FAMILY = "DejaVu Sans"
# fonts whose glyphs are placeholders (a box naming the Unicode block), not letters: they show nothing
PLACEHOLDER_FONTS = ("Last Resort",)
UNSHOWN = "?"


@lru_cache(maxsize=None)
def _glyphs(path: str):
    from matplotlib import ft2font

    try:
        font = ft2font.FT2Font(path)
    except (OSError, RuntimeError, ValueError):  # a font file FreeType cannot open: it shows nothing
        return None
    return font


def _covers(path: str, characters: set[str]) -> set[str]:
    font = _glyphs(path)
    return set() if font is None else {c for c in characters if font.get_char_index(ord(c))}


def families_for(text: str, fonts=None) -> tuple[list[str], set[str]]:
    """Font families that together show `text`, and the characters none of them has.

    fonts: (family name, file) pairs to choose from, DejaVu Sans first (default: matplotlib's installed fonts)."""
    from matplotlib import font_manager

    if fonts is None:
        base = font_manager.findfont(BASE_FAMILY, fallback_to_default=True)
        fonts = [(BASE_FAMILY, base)] + [(f.name, f.fname) for f in font_manager.fontManager.ttflist
                                         if not f.name.startswith(PLACEHOLDER_FONTS)]
    missing = {c for c in text if c.isprintable() and not c.isspace()}
    families = [fonts[0][0]]
    for name, path in fonts:
        shown = _covers(path, missing)
        if shown and name not in families:
            families.append(name)
        missing -= shown
        if not missing:
            break
    return families, missing


def readable(content):
    """The report's content (report_pdf.ReportContent) with characters no installed font shows replaced by '?',
    and a warning that says which; and the font families that show the rest."""
    values = [value for _, value in content.identifiers] + list(content.warnings)
    families, missing = families_for(" ".join(values))
    if not missing:
        return content, families
    hide = str.maketrans({c: UNSHOWN for c in missing})
    identifiers = [(label, value.translate(hide)) for label, value in content.identifiers]
    codes = ", ".join(f"U+{ord(c):04X}" for c in sorted(missing)[:8]) + (" ..." if len(missing) > 8 else "")
    note = (f"{len(missing)} character(s) of the patient and study data are in no font installed on this computer "
            f"and are shown as '{UNSHOWN}' ({codes}); the DICOM files, the SEG and the SR hold them intact. "
            "Installing a font for that script (e.g. Noto Sans CJK) lets the report show them.")
    warnings = [w.translate(hide) for w in content.warnings] + [note]
    return dataclasses.replace(content, identifiers=identifiers, warnings=warnings), families


@contextmanager
def report_fonts(families: list[str]):
    """matplotlib's font list for the figures drawn in this block."""
    import matplotlib

    with matplotlib.rc_context({"font.family": families}):
        yield
