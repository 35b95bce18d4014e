"""The module's logic without Qt: what ``UnetGANSlicerLogic`` does, testable on ``slicer-core``.

``UnetGANSlicer.py``'s ``UnetGANSlicerLogic`` (a ``ScriptedLoadableModuleLogic``) hands every call
it does not define to a :class:`ModuleLogic`; the panel (``UnetGANSlicerGUI.panel``) uses both. Names
follow Slicer's camelCase, as the logic class they stand in for.
"""
from __future__ import annotations

import os
import pathlib

from .context import in_slicer_app

MODULE_DIR = pathlib.Path(__file__).resolve().parent.parent


def _safe_base_name(name: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9 ._()+-]+", "_", name).strip(" ._") or "result"
    return cleaned[:100]


class ModuleLogic:
    def __init__(self, settings_dir: str | None = None):
        if settings_dir is None and in_slicer_app():
            import slicer

            settings = getattr(slicer.app, "slicerUserSettingsFilePath", "") or ""
            settings_dir = os.path.dirname(settings) if settings else None
        self.settingsDir = settings_dir

    # -- dependencies -------------------------------------------------------------------------------

    @staticmethod
    def requirementsFile() -> pathlib.Path:
        return MODULE_DIR / "Resources" / "requirements.txt"

    def dependencyReport(self):
        """What is missing (UnetGANSlicerLib.dependencies: Slicer version, torch, pip packages, Slicer's own)."""
        from . import dependencies

        return dependencies.check(self.requirementsFile())

    def ensureDependencies(self, ui, ask: bool = True, pytorch_utils=None) -> bool:
        """Install what is missing after asking (UnetGANSlicerLib.install); ui: an install.InstallUI."""
        from . import install

        return install.ensure_dependencies(self.requirementsFile(), ui, ask, pytorch_utils)

    # -- models ---------------------------------------------------------------------------------------

    def userRegistry(self) -> pathlib.Path:
        """Adapters trained in the module are registered here (Slicer's settings folder), listed after a restart."""
        from .models import user_registry_file

        return user_registry_file(self.settingsDir)

    def adapterChoices(self) -> list:
        """Automatic, the shipped adapters by vendor, None, the user's adapters (models.adapter_choices)."""
        from .models import adapter_choices

        return adapter_choices(self.userRegistry())

    def segmenterChoices(self) -> list:
        from .models import available_models

        return available_models("segmenter", user_registry=self.userRegistry())

    def modelChoices(self):
        return self.adapterChoices(), self.segmenterChoices()

    def sourceVendor(self, segmenter: str | None = None) -> str | None:
        """The scanner vendor a segmenter learnt from (the look the adapters translate to)."""
        choices = self.segmenterChoices()
        named = [c for c in choices if c.name == segmenter] or choices
        return next((c.source_vendor for c in named if c.source_vendor), None)

    # -- the work ---------------------------------------------------------------------------------------

    def resolveAdapter(self, volumeNode, adapter):
        from .vendor import resolve_adapter

        return resolve_adapter(volumeNode, adapter, self.userRegistry())

    def segmentJob(self, volumeNode, adapter, model=None, device="auto", tta=None, ensureDependencies=None):
        from .panel_jobs import segment_job

        return segment_job(volumeNode, adapter, model, device, tta, ensureDependencies, self.userRegistry())

    def trainJob(self, targetFolder, sourceFolder, vendor="", iterations=2000, model=None, device="auto",
                 ensureDependencies=None):
        from .panel_jobs import train_job

        return train_job(targetFolder, sourceFolder, vendor, iterations, model, device, ensureDependencies,
                         self.userRegistry())

    def process(self, inputVolume, adapter=None, model=None, device="auto", progress=None, cancel=None, tta=None,
                log=None):
        """Adapt and segment in the calling thread (scripts, the self-test); the panel runs segmentJob."""
        from .workflow import adapt_and_segment

        return adapt_and_segment(inputVolume, adapter=adapter, model=model, device=device, tta=tta,
                                 progress=progress, cancel=cancel, log=log)

    @staticmethod
    def startBackend() -> None:
        """Start the session's warm backend worker (it loads the shipped models) unless packages are missing."""
        from . import dependencies, runner

        if dependencies.check(ModuleLogic.requirementsFile()).ready:
            runner.start_worker()

    @staticmethod
    def stopBackends() -> None:
        """Kill every running backend (module cleanup, scene close, application quit)."""
        from . import runner

        runner.stop_all()

    # -- results ----------------------------------------------------------------------------------------

    @staticmethod
    def resultFromTable(tableNode):
        """The result whose summary table is ``tableNode``, from the scene's nodes (None if it is not one)."""
        from . import results

        return results.result_from_table(tableNode) if tableNode is not None else None

    @staticmethod
    def watchEdits(result, schedule=None):
        from . import editing

        return editing.watch_edits(result, schedule)

    @staticmethod
    def recompute(result) -> dict:
        from . import editing

        return editing.apply_edits(result)

    def exportResult(self, result, folder, base, overwrite=False) -> list:
        """Segmentation, labelmap, translated image, measurements, the PDF report (where matplotlib is
        installed) and, for a volume loaded from DICOM, the DICOM SEG and SR (UnetGANSlicerLib.export)."""
        from . import editing, export

        editing.apply_edits(result)  # numbers as the (possibly edited) segmentation is now
        groups = export.save_result(result, folder, export.check_base_name(_safe_base_name(base)), overwrite=overwrite)
        return [path for group in groups.values() for path in group]

    @staticmethod
    def exportNote(result) -> str:
        """What Export could not write and why ('' when it wrote everything)."""
        from unetgan.dicom_outputs import PDF_SKIPPED, pdf_available

        from . import dicom_export

        notes = [dicom_export.no_dicom_note(result.input) or "", "" if pdf_available() else PDF_SKIPPED]
        return "\n".join(note for note in notes if note)

    # -- views --------------------------------------------------------------------------------------------

    @staticmethod
    def showResult(result) -> bool:
        """Original | translated (or the original twice) in the acquisition plane, same slice, curve below."""
        from . import layout

        if not layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart):
            return False  # no views (outside the application)
        if in_slicer_app():
            import slicer

            slicer.app.processEvents()  # the new layout's views get their sizes: fit again to them
            layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)
        return True

    def viewRolesText(self, result) -> str:
        from . import layout

        return layout.view_roles_text(result.input, result.translated,
                                      self.sourceVendor((result.measurements or {}).get("segmenter")))

    @staticmethod
    def showSideBySide(original, translated, segmentation) -> bool:
        from . import layout

        return layout.show_side_by_side(original, translated, segmentation)

    @staticmethod
    def handToEditor(editor, result) -> None:
        """The Segment Editor on the result's segmentation and the result's own input (UnetGANSlicerLib.editor)."""
        from .editor import hand_to_editor

        hand_to_editor(editor, result)
