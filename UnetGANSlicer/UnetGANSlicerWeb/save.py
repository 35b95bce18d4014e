"""Save: the result's files into the output folder (``UnetGANSlicerLib.export``), never overwriting unasked.

Names from the browser are checked by :mod:`.paths`; the files the page then offers
as downloads (the PDF report, the DICOM SEG) are recorded here, and only those are
served (:mod:`.transfers`).
"""
from __future__ import annotations

from pathlib import Path

from UnetGANSlicerLib import dicom_export, export

from . import paths

DOWNLOADS = {"pdf": ("report", "Report (PDF)"), "seg": ("dicom", "DICOM SEG")}  # kind: (export group, button)


class Saver:
    STATE = {"ug_save_folder": "", "ug_save_name": "case", "ug_confirm_files": [], "ug_confirm_overwrite": False,
             "ug_saved_files": [],
             "ug_downloads": []}  # [{kind, label, name}]: what the last Save wrote that the page offers

    def __init__(self, page):
        self.page = page
        self.state = page.state
        self.options = page.options
        self.downloads: dict[str, Path] = {}  # kind -> file the last Save wrote (see transfers.send_download)

    def forget(self) -> None:
        """A new input or result: nothing of it is saved yet."""
        self.downloads = {}
        self.state.update({"ug_saved_files": [], "ug_downloads": []})

    def _target(self):
        root = self.options.output_dir
        folder = paths.resolve_output_folder(root, self.state.ug_save_folder or "", create=True)
        base = paths.check_file_name(self.state.ug_save_name or "", "file name")
        export.check_base_name(base)
        for group in export.planned_files(self.page.result, folder, base).values():
            for path in group:
                paths.check_inside(path, root)
        return folder, base

    def save(self, overwrite: bool = False):
        page = self.page
        page.touch()
        if page.result is None:
            page.error("Nothing to save yet: run Adapt & Segment first.")
            return
        try:
            folder, base = self._target()
            existing = export.existing_files(page.result, folder, base)
            if existing and not overwrite:
                self.state.ug_confirm_files = [self.shown(p) for p in existing]
                self.state.ug_confirm_overwrite = True
                return
            files = export.save_result(page.result, folder, base, overwrite=overwrite,
                                       database=page.input.dicom_index if page.input is not None else None)
        except Exception as err:  # noqa: BLE001
            page.report(err, "could not save")
            return
        # the export recomputed the numbers, "edited" and the warnings from the masks as they are now: show them
        page.edits.show_edited(page.result.measurements or {})
        page.tables.refresh()
        saved = [self.shown(p) for group in files.values() for p in group]
        self.downloads = {kind: files[group][0] for kind, (group, _) in DOWNLOADS.items() if group in files}
        self.state.update({
            "ug_saved_files": saved, "ug_unsaved_edits": False,
            "ug_downloads": [{"kind": kind, "label": DOWNLOADS[kind][1], "name": path.name}
                             for kind, path in self.downloads.items()],
        })
        note = dicom_export.no_dicom_note(page.result.input)
        page.message(f"Saved {len(saved)} file(s) in {folder}" + (f". {note}" if note else ""))

    def confirm(self):
        self.state.ug_confirm_overwrite = False
        self.save(overwrite=True)

    def shown(self, path: Path) -> str:
        """A saved file as the page names it: relative to the output folder."""
        try:
            return str(Path(path).relative_to(Path(self.options.output_dir).resolve()))
        except ValueError:
            return str(path)
