"""Patient and institution names in the character set the DICOM files declare reach the SEG, the SR, the PDF and
the CSV intact: Latin-1 (ISO_IR 100), Greek and Japanese in UTF-8 (ISO_IR 192). The PDF shows them in a font that
has their glyphs, or says which characters no installed font shows (never empty boxes).
"""
from __future__ import annotations

import csv
import io
import warnings

import pydicom
import pytest
from pypdf import PdfReader

from test_cli import unetgan_here
from unetgan.dicom_outputs.pdf_fonts import families_for
from unetgan.phantom import make_study, write_study

pytestmark = pytest.mark.timeout(300)
PYTHON_CODECS = {"ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
NAMES = {
    "german": ("ISO_IR 100", "Müller^Zoë", "Universitätsklinikum Düsseldorf"),
    "greek": ("ISO_IR 192", "Παπαδοπούλου^Ελένη", "Πανεπιστημιακό Νοσοκομείο Αθηνών"),
    "japanese": ("ISO_IR 192", "山田^太郎", "東京大学医学部附属病院"),
}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return write_study(make_study("GE", seed=3, n_phases=2, n_slices=3, matrix=96), tmp_path_factory.mktemp("names"),
                       fmt="dicom", name="ge")["dicom_dir"]


def _renamed(phantom, folder, charset, name, institution):
    import shutil

    shutil.copytree(phantom, folder)
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.SpecificCharacterSet, ds.PatientName, ds.InstitutionName = charset, name, institution
        ds.save_as(path)
    assert name.encode(PYTHON_CODECS[charset]) in path.read_bytes()  # written in the declared character set
    return folder


@pytest.fixture
def matplotlibs_own_fonts(monkeypatch):
    """Only the fonts matplotlib ships (DejaVu: Latin, Greek, Cyrillic; no CJK), so that the test sees the same fonts
    on every machine: a Japanese name is then one no installed font shows."""
    from matplotlib import font_manager

    own = [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", own)


@pytest.mark.parametrize("case", list(NAMES))
def test_names_reach_the_seg_sr_pdf_and_csv_intact(case, phantom, tmp_path, matplotlibs_own_fonts):
    charset, name, institution = NAMES[case]
    folder = _renamed(phantom, tmp_path / "study", charset, name, institution)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = unetgan_here("adapt-segment", folder, "-o", out, "--adapter", "none", "--runtime", "torch")
    assert result.returncode == 0, result.stderr
    assert not [w for w in caught if "missing from font" in str(w.message)]  # no glyph drawn as an empty box

    for name_of_file in ("segmentation.seg.dcm", "measurements.sr.dcm"):
        ds = pydicom.dcmread(out / name_of_file)
        assert ds.SpecificCharacterSet == charset
        assert str(ds.PatientName) == name and ds.InstitutionName == institution
        assert name.encode(PYTHON_CODECS[charset]) in (out / name_of_file).read_bytes()

    rows = {row[0]: row[1] for row in csv.reader(io.StringIO((out / "measurements.csv").read_text(encoding="utf-8")))}
    assert rows["patient_name"] == name and rows["institution_name"] == institution and rows["patient_id"] == "ge"

    text = PdfReader(out / "report.pdf").pages[0].extract_text()
    _, unshown = families_for(name + institution)
    assert bool(unshown) == (case == "japanese")
    if not unshown:  # a font has every glyph: the page shows the names
        assert f"Patient {name.replace('^', ' ')}" in text and f"({institution})" in text
    else:  # says which characters it cannot show, as '?', and where they are intact
        assert f"Patient {''.join('?' if c in unshown else c for c in name.replace('^', ' '))}" in text
        codes = ", ".join(f"U+{ord(c):04X}" for c in sorted(unshown)[:8])
        flat = " ".join(text.split())
        assert (f"{len(unshown)} character(s) of the patient and study data are in no font installed on this computer "
                f"and are shown as '?' ({codes}") in flat
        assert "the DICOM files, the SEG and the SR hold them intact" in flat


def test_a_script_no_font_has_is_found_before_drawing():
    """Greek is in DejaVu Sans (matplotlib's own font); CJK ideographs are not."""
    from matplotlib import font_manager

    dejavu = [("DejaVu Sans", font_manager.findfont("DejaVu Sans"))]
    assert families_for("Παπαδοπούλου Müller Zoë", dejavu) == (["DejaVu Sans"], set())
    assert families_for("山田 Müller", dejavu) == (["DejaVu Sans"], {"山", "田"})
