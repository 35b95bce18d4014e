"""UnetGANSlicer: cardiac cine MRI segmentation that adapts across scanner vendors.

Thin Slicer front end. The work is done by ``UnetGANSlicerLib`` (MRML layer, no Qt),
which runs the ``unetgan`` backend in a separate PythonSlicer process.
"""
import logging
import os
import pathlib
import traceback
from typing import Annotated

import qt
import vtk

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

TORCH_REQUIREMENT = ">=2.3"  # the same as UnetGANSlicerLib.dependencies.TORCH_REQUIREMENT
ADAPTER_AUTO = "auto"
ADAPTER_NONE = "none"
CUSTOM_FILE = "file"


#
# UnetGANSlicer
#


class UnetGANSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Unet-GAN Cardiac Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["UnetGANSlicer developers (UnetGANSlicer project)"]
        self.parent.helpText = _(
            "Segments the left-ventricular blood pool and myocardium in short-axis cine MRI and measures "
            "EDV, ESV, SV, EF and myocardial mass. Images from a new scanner vendor are first translated "
            "into the look of the vendor the segmenter was trained on (Unet-GAN adapter), then segmented "
            "by the unchanged LV-Unet. Every frame of a cine is processed; results are new nodes "
            "(nothing is overwritten) and can be corrected in the Segment Editor. "
            '<a href="https://github.com/unetganslicer/UnetGANSlicer">Documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Method: Unet-GAN (Yan et al., MICCAI 2019): domain adaptation of a cardiac segmentation "
            "network across MR vendors with a CycleGAN guided by U-Net features. Not for clinical use."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """The phantom cine in Sample Data, so a first-time user can try the workflow without own data."""
    import SampleData

    from UnetGANSlicerLib import sample_data

    iconPath = os.path.join(os.path.dirname(__file__), "Resources", "Icons", "UnetGANSlicer.png")
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category=sample_data.SAMPLE_CATEGORY, sampleName=sample_data.SAMPLE_NAME, thumbnailFileName=iconPath,
        customDownloader=lambda source: sample_data.load_phantom_cine(slicer.mrmlScene).volume)


#
# UnetGANSlicerParameterNode
#


@parameterNodeWrapper
class UnetGANSlicerParameterNode:
    """
    inputVolume - the cine proxy volume (or a 3D volume) to process.
    adapter - "auto" (from the DICOM Manufacturer, else the backend's label-free check), a registry name,
        a file path, or "none".
    model - registry name, file path, or "" (the segmenter the adapter was trained with).
    device - auto, CPU or GPU.
    testTimeAugmentation - the segmenter's flip averaging: none (the backend's default), flip4, rot180 or flip
        (unetgan.tta.TTA_LABELS says what each costs).
    trainingFolder, sourceFolder, trainingVendor, iterations - adapter training inputs (new-vendor and
        source-vendor image folders, the new vendor's name).
    segmentation, translated, table - the nodes of the last run (shown in Results). The table node
        references every node of its run (UnetGANSlicerLib.results), so Export and Recompute work
        from the scene after a module reload or a saved and reopened scene.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    adapter: str = ADAPTER_AUTO
    model: str = ""
    device: Annotated[str, Choice(["auto", "CPU", "GPU"])] = "auto"
    # unetgan.tta.TTA_FLIPS, first the default (the backend is not importable before its dependencies are)
    testTimeAugmentation: Annotated[str, Choice(["none", "flip4", "rot180", "flip"])] = "none"
    trainingFolder: pathlib.Path
    sourceFolder: pathlib.Path
    trainingVendor: str = ""
    iterations: Annotated[int, WithinRange(10, 1000000)] = 2000
    segmentation: vtkMRMLSegmentationNode
    translated: vtkMRMLScalarVolumeNode
    table: vtkMRMLTableNode


#
# UnetGANSlicerWidget
#


class UnetGANSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._running = None  # None, "segment" or "train"
        self._cancelRequested = False
        self._editWatcher = None  # keeps the shown result's tables in step with its segmentation

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/UnetGANSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = UnetGANSlicerLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        slicer.app.connect("aboutToQuit()", self.logic.stopBackends)

        self._fillModelChoices()
        self.ui.adapterComboBox.connect("currentIndexChanged(int)", self.onModelChoiceChanged)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChoiceChanged)
        self.ui.adapterPathLineEdit.connect("currentPathChanged(QString)", self.onModelChoiceChanged)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onModelChoiceChanged)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.sideBySideButton.connect("clicked(bool)", self.onSideBySideButton)
        self.ui.segmentEditorButton.connect("clicked(bool)", self.onSegmentEditorButton)
        self.ui.recomputeButton.connect("clicked(bool)", self.onRecomputeButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.trainButton.connect("clicked(bool)", self.onTrainButton)
        self.ui.progressBar.setVisible(False)
        self.ui.trainProgressBar.setVisible(False)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._cancelRequested = True
        self.logic.stopBackends()  # a backend never outlives the module
        self._watchResult(None)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.logic.startBackend()  # torch imported and the models loaded while the user picks a volume

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        if self._running:
            self._cancelRequested = True
            self.logic.stopBackends()
        self._watchResult(None)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._selectModelChoices()
            self._updateGui()
            if self._editWatcher is None:  # a result from before a module reload or in a reopened scene
                self._watchResult(self._resultInScene())

    # -- model choices ---------------------------------------------------------------------------

    def _fillModelChoices(self) -> None:
        adapters, segmenters = self.logic.modelChoices()
        combo = self.ui.adapterComboBox
        combo.clear()
        combo.addItem(_("Automatic (scanner vendor from DICOM, else the best by the label-free check)"), ADAPTER_AUTO)
        for choice in adapters:
            combo.addItem(choice.label, choice.argument)
        combo.addItem(_("None (segment the image as it is)"), ADAPTER_NONE)
        combo.addItem(_("Adapter file..."), CUSTOM_FILE)
        combo = self.ui.modelComboBox
        combo.clear()
        combo.addItem(_("Automatic (the segmenter the adapter was trained with)"), "")
        for choice in segmenters:
            combo.addItem(choice.label, choice.argument)
        combo.addItem(_("Segmenter file..."), CUSTOM_FILE)

    def _selectModelChoices(self) -> None:
        """Show the parameter node's adapter/model in the combo boxes."""
        for combo, pathEdit, value in ((self.ui.adapterComboBox, self.ui.adapterPathLineEdit, self._parameterNode.adapter),
                                       (self.ui.modelComboBox, self.ui.modelPathLineEdit, self._parameterNode.model)):
            wasBlocked = combo.blockSignals(True)
            index = combo.findData(value) if value else 0
            if index < 0:
                index = combo.findData(CUSTOM_FILE)
                pathEdit.currentPath = value
            combo.setCurrentIndex(index)
            combo.blockSignals(wasBlocked)
        self.onModelChoiceChanged()  # the parameter node holds what the combo boxes show

    def onModelChoiceChanged(self, *args) -> None:
        if not self._parameterNode:
            return
        self._parameterNode.adapter = self._chosen(self.ui.adapterComboBox, self.ui.adapterPathLineEdit)
        self._parameterNode.model = self._chosen(self.ui.modelComboBox, self.ui.modelPathLineEdit)

    @staticmethod
    def _chosen(combo, pathEdit) -> str:
        data = combo.currentData
        if data == CUSTOM_FILE:
            return pathEdit.currentPath
        return data or ""

    # -- state ------------------------------------------------------------------------------------

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.adapterPathLineEdit.setVisible(self.ui.adapterComboBox.currentData == CUSTOM_FILE)
        self.ui.modelPathLineEdit.setVisible(self.ui.modelComboBox.currentData == CUSTOM_FILE)
        if self._running == "segment":
            self.ui.applyButton.enabled = not self._cancelRequested
        else:
            self.ui.applyButton.text = _("Adapt and segment")
            ready = p.inputVolume is not None and self._running is None
            self.ui.applyButton.enabled = ready
            self.ui.applyButton.toolTip = _("Translate, segment and measure every frame") if ready \
                else _("Select an input volume")
        if self._running != "train":
            self.ui.trainButton.text = _("Start training")
            folders = [str(f or "").strip(". ") for f in (p.trainingFolder, p.sourceFolder)]
            self.ui.trainButton.enabled = self._running is None and all(folders)
        hasResult = p.segmentation is not None
        inScene = self.logic.resultFromTable(p.table) is not None
        self.ui.segmentEditorButton.enabled = hasResult and self._running is None
        self.ui.exportButton.enabled = inScene and self._running is None
        self.ui.recomputeButton.enabled = inScene and self._running is None
        self.ui.sideBySideButton.enabled = hasResult
        self.ui.resultsTableView.setMRMLTableNode(p.table)

    def _isCancelRequested(self) -> bool:
        slicer.app.processEvents()  # lets the Cancel click through while the backend runs
        return self._cancelRequested

    # -- Adapt & Segment --------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self._running == "segment":
            self._cancelRequested = True
            self.ui.applyButton.text = _("Cancelling...")
            self._updateGui()
            return
        for combo, pathEdit, what in ((self.ui.adapterComboBox, self.ui.adapterPathLineEdit, _("an adapter file")),
                                      (self.ui.modelComboBox, self.ui.modelPathLineEdit, _("a segmenter file"))):
            if combo.currentData == CUSTOM_FILE and not pathEdit.currentPath:
                slicer.util.errorDisplay(_("Choose {what} first.").format(what=what))
                return
        if not self.logic.ensureDependencies():
            return
        from unetgan.errors import Cancelled

        p = self._parameterNode
        self._running, self._cancelRequested = "segment", False
        self.ui.applyButton.text = _("Cancel")
        self.ui.progressBar.setVisible(True)
        self.ui.progressBar.setValue(0)
        self.ui.warningsLabel.text = ""
        adapter, adapterNote = self.logic.resolveAdapter(p.inputVolume, p.adapter)
        self.ui.statusLabel.text = adapterNote or _("Starting...")
        self._updateGui()
        try:
            result = self.logic.process(p.inputVolume, adapter, p.model or None, p.device,
                                        progress=self._onProgress, cancel=self._isCancelRequested,
                                        tta=p.testTimeAugmentation)
        except Cancelled:
            self.ui.statusLabel.text = _("Cancelled: the scene is as it was before.")
        except Exception as error:  # noqa: BLE001 - shown to the user, logged with its traceback
            logging.error(traceback.format_exc())
            self.ui.statusLabel.text = _("Failed.")
            slicer.util.errorDisplay(_("Adapt and segment failed: {message}").format(message=str(error)),
                                     detailedText=traceback.format_exc())
        else:
            self._showResult(result, adapterNote)
        finally:
            self._running, self._cancelRequested = None, False
            self.ui.progressBar.setVisible(False)
            self._updateGui()

    def _onProgress(self, done: int, total: int, stage: str) -> None:
        self.ui.progressBar.setMaximum(max(total, 1))
        self.ui.progressBar.setValue(done)
        self.ui.statusLabel.text = _("{stage}: frame {done} of {total}").format(stage=stage, done=done, total=total)
        slicer.app.processEvents()

    def _showResult(self, result, adapterNote="") -> None:
        p = self._parameterNode
        p.segmentation = result.segmentation
        p.translated = result.translated
        p.table = result.table
        frames = _("{n} frames").format(n=result.n_frames) if result.n_frames > 1 else _("1 volume")
        done = _("Done: {frames} in {seconds:.1f} s. New nodes: {names}.").format(
            frames=frames, seconds=result.seconds, names=", ".join(n.GetName() for n in result.nodes))
        self.ui.statusLabel.text = f"{adapterNote}\n{done}" if adapterNote else done
        self.ui.warningsLabel.text = "\n".join(_("Warning: {w}").format(w=w) for w in result.warnings)
        self._watchResult(result)
        self._showViews(result)

    def _showViews(self, result) -> None:
        self.logic.showResult(result)
        self.ui.viewsLabel.text = self.logic.viewRolesText(result)

    def _watchResult(self, result) -> None:
        """Tables and chart follow the segmentation on screen (one update per paint stroke)."""
        if self._editWatcher is not None:
            self._editWatcher.stop()
            self._editWatcher = None
        if result is not None:
            self._editWatcher = self.logic.watchEdits(result, schedule=lambda update: qt.QTimer.singleShot(300, update))

    def _resultInScene(self):
        """The shown result, rebuilt from the scene's nodes (works after a module reload or a reopened scene)."""
        return self.logic.resultFromTable(self._parameterNode.table) if self._parameterNode else None

    # -- Results ----------------------------------------------------------------------------------

    def onSideBySideButton(self) -> None:
        result = self._resultInScene()
        if result is not None:
            self._watchResult(result)
            self._showViews(result)
        else:
            p = self._parameterNode
            self.logic.showSideBySide(p.inputVolume, p.translated, p.segmentation)

    def onSegmentEditorButton(self) -> None:
        p = self._parameterNode
        self.logic.openSegmentEditor(p.segmentation, p.inputVolume)
        result = self._resultInScene()
        if result is not None:  # the editor's module switch must not take the pair off the screen
            self._watchResult(result)
            self._showViews(result)

    def onRecomputeButton(self) -> None:
        result = self._resultInScene()
        if result is None:
            return
        with slicer.util.tryWithErrorDisplay(_("Recomputing the measurements failed."), waitCursor=True):
            self.logic.recompute(result)
            self.ui.statusLabel.text = _("Measurements recomputed from the segmentation as it is now.")

    def onExportButton(self) -> None:
        result = self._resultInScene()
        if result is None:
            return
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Export results to folder"))
        if not folder:
            return
        base = result.input.GetName() or "result"
        try:
            files = self.logic.exportResult(result, folder, base, overwrite=False)
        except FileExistsError as error:
            if not slicer.util.confirmYesNoDisplay(_("{message}\n\nReplace the existing files?").format(message=str(error))):
                return
            files = self.logic.exportResult(result, folder, base, overwrite=True)
        except Exception as error:  # noqa: BLE001
            slicer.util.errorDisplay(_("Export failed: {message}").format(message=str(error)),
                                     detailedText=traceback.format_exc())
            return
        note = self.logic.exportNote(result)
        self.ui.statusLabel.text = _("Saved {n} files in {folder}").format(n=len(files), folder=folder) + (
            "\n" + note if note else "")

    # -- Train adapter ----------------------------------------------------------------------------

    def onTrainButton(self) -> None:
        if self._running == "train":
            self._cancelRequested = True
            self.ui.trainButton.text = _("Cancelling...")
            self.ui.trainButton.enabled = False
            return
        if not self.logic.ensureDependencies():
            return
        from unetgan.errors import Cancelled

        p = self._parameterNode
        self._running, self._cancelRequested = "train", False
        self.ui.trainButton.text = _("Cancel training")
        self.ui.trainButton.enabled = True
        self.ui.trainProgressBar.setVisible(True)
        self.ui.trainProgressBar.setMaximum(p.iterations)
        self.ui.trainProgressBar.setValue(0)
        self._updateGui()

        def progress(done, total, stage):
            self.ui.trainProgressBar.setMaximum(max(total, 1))
            self.ui.trainProgressBar.setValue(done)
            self.ui.trainStatusLabel.text = _("{stage}: {done} / {total}").format(stage=stage, done=done, total=total)
            slicer.app.processEvents()

        try:
            path = self.logic.trainAdapter(str(p.trainingFolder), str(p.sourceFolder), p.trainingVendor, p.iterations,
                                           p.model or None, p.device, progress=progress,
                                           cancel=self._isCancelRequested)
        except Cancelled:
            self.ui.trainStatusLabel.text = _("Training cancelled.")
        except Exception as error:  # noqa: BLE001
            logging.error(traceback.format_exc())
            slicer.util.errorDisplay(_("Adapter training failed: {message}").format(message=str(error)),
                                     detailedText=traceback.format_exc())
        else:
            self.ui.trainStatusLabel.text = _("Adapter saved: {path}").format(path=path)
            self._fillModelChoices()
            p.adapter = str(pathlib.Path(path).resolve())  # as the adapter list names a user's adapter
            self._selectModelChoices()
        finally:
            self._running, self._cancelRequested = None, False
            self.ui.trainProgressBar.setVisible(False)
            self._updateGui()


#
# UnetGANSlicerLogic
#


class UnetGANSlicerLogic(ScriptedLoadableModuleLogic):
    """Slicer-specific glue (dependencies, views, Segment Editor); the work is in UnetGANSlicerLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._loadTerminology()

    def getParameterNode(self):
        return UnetGANSlicerParameterNode(super().getParameterNode())

    @staticmethod
    def moduleDir() -> pathlib.Path:
        return pathlib.Path(__file__).resolve().parent

    def _loadTerminology(self) -> None:
        path = self.moduleDir() / "Resources" / "Terminology" / "UnetGANSlicer.term.json"
        try:
            terminologies = slicer.modules.terminologies.logic()
            terminologies.LoadTerminologyFromFile(str(path))
        except Exception:  # noqa: BLE001 - the segments keep their tags; only the selector lacks the list
            logging.warning(f"UnetGANSlicer: could not load the terminology {path}")

    # -- dependencies -------------------------------------------------------------------------------

    def requirementsFile(self) -> pathlib.Path:
        return self.moduleDir() / "Resources" / "requirements.txt"

    def dependencyReport(self):
        """What is missing (UnetGANSlicerLib.dependencies: torch version, pip packages, Slicer's own packages)."""
        from UnetGANSlicerLib import dependencies

        return dependencies.check(self.requirementsFile(), torch_requirement=TORCH_REQUIREMENT)

    def ensureDependencies(self, askConfirmation: bool = True) -> bool:
        """torch from the PyTorch extension, the rest with pip; asks first. False if the user declines or it fails.

        Packages Slicer ships (UnetGANSlicerLib.dependencies.SLICER_PACKAGES) are never installed or replaced."""
        from UnetGANSlicerLib import dependencies

        report = self.dependencyReport()
        if report.torch_problem:
            slicer.util.errorDisplay(report.torch_problem)
            return False
        if report.slicer_missing:
            slicer.util.errorDisplay(_("This Slicer lacks packages it normally ships: {packages}. Reinstall Slicer "
                                       "(they are not installed by this module).").format(
                                           packages=", ".join(report.slicer_missing)))
            return False
        try:
            import PyTorchUtils  # noqa: F401 - the PyTorch extension
        except ModuleNotFoundError:
            slicer.util.errorDisplay(_("This module needs the PyTorch extension. Install 'PyTorch' from the "
                                       "Extensions Manager, restart Slicer, and try again."))
            return False
        try:
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if not torchLogic.torchInstalled():
                torch = torchLogic.installTorch(askConfirmation=askConfirmation, torchVersionRequirement=TORCH_REQUIREMENT)
                if torch is None:
                    slicer.util.errorDisplay(_("PyTorch is needed to run the networks; it was not installed."))
                    return False
            if not report.to_install:
                return True
            try:
                import slicer.pydeps as pydeps  # Slicer >= 5.11
            except ImportError:
                pydeps = getattr(slicer, "packaging", None)
            if pydeps is not None and hasattr(pydeps, "pip_ensure"):
                requirements = pydeps.load_requirements(str(self.requirementsFile()))
                pydeps.pip_ensure(requirements, skip_packages=list(dependencies.SLICER_PACKAGES),
                                  prompt_install=askConfirmation, requester="UnetGANSlicer")
            else:
                if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                        _("UnetGANSlicer needs these Python packages: {packages}. Install them now?").format(
                            packages=", ".join(report.to_install))):
                    return False
                with slicer.util.WaitCursor():
                    # --no-deps: their dependencies are numpy/torch, which Slicer already has and must keep
                    for requirement in report.to_install:
                        slicer.util.pip_install(["--no-deps", requirement])
        except Exception as error:  # noqa: BLE001 - no network, a proxy, a broken wheel: say it in one sentence
            slicer.util.errorDisplay(dependencies.install_failure_message(error), detailedText=traceback.format_exc())
            return False
        return self.dependencyReport().ready

    # -- the work (UnetGANSlicerLib) ------------------------------------------------------------------

    @staticmethod
    def userRegistry() -> pathlib.Path:
        """Adapters trained in the module are registered here (Slicer's settings folder), listed after a restart."""
        from UnetGANSlicerLib.models import user_registry_file

        settings = getattr(getattr(slicer, "app", None), "slicerUserSettingsFilePath", "") or ""
        return user_registry_file(os.path.dirname(settings) if settings else None)

    def modelChoices(self):
        from UnetGANSlicerLib.models import available_models

        registry = self.userRegistry()
        return available_models("adapter", user_registry=registry), available_models("segmenter", user_registry=registry)

    def process(self, inputVolume, adapter=None, model=None, device="auto", progress=None, cancel=None, tta=None):
        """Adapt and segment; returns UnetGANSlicerLib.AdaptSegmentResult (raises on failure or cancel).
        tta: the segmenter's flip averaging (None: the backend's default)."""
        from UnetGANSlicerLib import adapt_and_segment

        return adapt_and_segment(inputVolume, adapter=adapter, model=model, device=device, tta=tta,
                                 progress=progress, cancel=cancel, log=logging.info)

    def trainAdapter(self, targetFolder, sourceFolder, vendor="", iterations=2000, model=None, device="auto",
                     progress=None, cancel=None):
        """Train a new adapter (never replacing a file); returns its path."""
        from UnetGANSlicerLib.training import train_adapter

        return train_adapter(targetFolder, sourceFolder, vendor=vendor or None, iterations=iterations, model=model,
                             device=device, progress=progress, cancel=cancel, log=logging.info,
                             user_registry=self.userRegistry())

    def resolveAdapter(self, volumeNode, adapter):
        """(adapter for the backend, what to tell the user): "auto" becomes the DICOM vendor's adapter when
        Slicer's DICOM database knows the series' Manufacturer, else stays "auto" for the backend."""
        from UnetGANSlicerLib import models, vendor

        for choice in models.available_models("adapter", user_registry=self.userRegistry()):
            if choice.argument == adapter:
                return models.verified_argument(choice), ""  # a user's adapter: its SHA256 still holds
        if adapter != ADAPTER_AUTO or volumeNode is None:
            return adapter or ADAPTER_NONE, ""

        choice = vendor.choose_adapter(volumeNode)
        return choice.adapter, choice.text

    def startBackend(self) -> None:
        """Start the session's warm backend worker now (it loads the shipped models), unless packages are
        missing: then the first Apply asks to install them and starts it."""
        from UnetGANSlicerLib import runner

        if self.dependencyReport().ready:
            runner.start_worker()

    @staticmethod
    def stopBackends() -> None:
        """Kill every running backend (module cleanup, scene close, application quit)."""
        from UnetGANSlicerLib import runner

        runner.stop_all()

    @staticmethod
    def resultFromTable(tableNode):
        """The result whose summary table is ``tableNode``, from the scene's nodes (None if it is not one)."""
        from UnetGANSlicerLib import results

        return results.result_from_table(tableNode) if tableNode is not None else None

    @staticmethod
    def watchEdits(result, schedule=None):
        from UnetGANSlicerLib import editing

        return editing.watch_edits(result, schedule)

    @staticmethod
    def recompute(result) -> dict:
        from UnetGANSlicerLib import editing

        return editing.apply_edits(result)

    def exportResult(self, result, folder, base, overwrite=False) -> list:
        """Segmentation, labelmap, translated image, measurements, the PDF report and, for a volume loaded from
        DICOM, the DICOM SEG (the cine, and its ED and ES phases alone) and SR, found through Slicer's DICOM
        database (UnetGANSlicerLib.dicom_export)."""
        from UnetGANSlicerLib import editing, export

        editing.apply_edits(result)  # numbers as the (possibly edited) segmentation is now
        groups = export.save_result(result, folder, export.check_base_name(_safeBaseName(base)), overwrite=overwrite)
        return [path for group in groups.values() for path in group]

    @staticmethod
    def exportNote(result) -> str:
        """What Export could not write and why, in a sentence ('' when it wrote everything)."""
        from UnetGANSlicerLib import dicom_export

        return dicom_export.no_dicom_note(result.input) or ""

    # -- views --------------------------------------------------------------------------------------

    def showResult(self, result) -> None:
        """Original | translated (or the original twice) in the acquisition plane, same slice, curve below."""
        from UnetGANSlicerLib import layout

        if not layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart):
            return  # no views (outside the application)
        slicer.app.processEvents()  # the new layout's views get their sizes: fit again to them
        layout.show_side_by_side(result.input, result.translated, result.segmentation, result.chart)

    @staticmethod
    def viewRolesText(result) -> str:
        from UnetGANSlicerLib import layout

        return layout.view_roles_text(result.input, result.translated)

    def showSideBySide(self, original, translated, segmentation) -> None:
        from UnetGANSlicerLib import layout

        layout.show_side_by_side(original, translated, segmentation)

    def openSegmentEditor(self, segmentationNode, sourceVolumeNode) -> None:
        """Open the Segment Editor on the result (for a cine: the current frame; edits are kept per frame).

        The editor's "auto-show source volume" would put the input into every view and clear the other
        layers, undoing the side by side: it is turned off, and the caller shows the pair again."""
        slicer.util.selectModule("SegmentEditor")
        editorWidget = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        for setter in ("setAutoShowSourceVolumeNode", "setAutoShowMasterVolumeNode"):  # Slicer >= 5.3, older
            if hasattr(editorWidget, setter):
                getattr(editorWidget, setter)(False)
                break
        editorWidget.setSegmentationNode(segmentationNode)
        if hasattr(editorWidget, "setSourceVolumeNode"):
            editorWidget.setSourceVolumeNode(sourceVolumeNode)
        else:  # Slicer < 5.3
            editorWidget.setMasterVolumeNode(sourceVolumeNode)


def _safeBaseName(name: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9 ._()+-]+", "_", name).strip(" ._") or "result"
    return cleaned[:100]


#
# UnetGANSlicerTest
#


class UnetGANSlicerTest(ScriptedLoadableModuleTest):
    """Phantom scenario inside Slicer: a 3-frame multi-vendor phantom cine, tiny random networks.

    Checks the plumbing (one output frame per input frame, geometry, segments, measurements,
    nothing overwritten, cancel leaves the scene as it was), not the accuracy.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_phantom_cine()
        self.setUp()
        self.test_cancel()

    def _models(self, folder):
        import torch

        from unetgan.networks.generator import GeneratorConfig, build_generator, save_generator
        from unetgan.networks.lvunet import LVUnet, LVUnetConfig
        from unetgan.registry import write_weights

        torch.manual_seed(0)
        config = LVUnetConfig(widths=(4, 8, 8, 8))
        segmenter = LVUnet(config).eval()
        with torch.no_grad():
            segmenter.head.bias.copy_(torch.tensor([0.0, 0.3, 0.3]))
        model = os.path.join(folder, "lvunet_tiny.safetensors")
        write_weights(segmenter, model, {"architecture": "LVUnet", "config": config.to_dict()})
        adapter = os.path.join(folder, "adapter_tiny.safetensors")
        save_generator(build_generator(GeneratorConfig(filters=4, n_blocks=1, residual_output=True)), adapter,
                       source_vendor="Philips", target_vendor="Siemens")
        return model, adapter

    def _phantomCine(self):
        from unetgan.io.images import Geometry
        from unetgan.phantom import make_study
        from UnetGANSlicerLib.loading import add_image

        study = make_study("Siemens", seed=0, n_phases=3, n_slices=4, matrix=96)
        geometry = Geometry(study.spacing, study.origin, study.direction)
        return study, add_image(study.image, geometry, "phantom", slicer.mrmlScene, study.trigger_times_ms)

    def test_phantom_cine(self):
        import tempfile

        import numpy as np

        from UnetGANSlicerLib.nodes import fingerprint, ijk_to_ras
        from UnetGANSlicerLib.segmentation import SEGMENTS, labels_of

        self.delayDisplay("Creating the phantom cine and tiny networks")
        logic = UnetGANSlicerLogic()
        self.assertTrue(logic.ensureDependencies(askConfirmation=False), "dependencies are missing")
        study, loaded = self._phantomCine()
        proxy = loaded.volume
        before = fingerprint(proxy)
        with tempfile.TemporaryDirectory() as folder:
            model, adapter = self._models(folder)
            calls = []
            self.delayDisplay("Adapt and segment")
            result = logic.process(proxy, adapter, model, "auto", progress=lambda d, t, s: calls.append((d, t)))
        self.assertEqual(fingerprint(proxy), before)
        self.assertEqual(result.n_frames, 3)
        self.assertEqual(result.segmentation_sequence.GetNumberOfDataNodes(), 3)
        self.assertEqual(result.translated_sequence.GetNumberOfDataNodes(), 3)
        self.assertTrue(loaded.browser.IsSynchronizedSequenceNodeID(result.segmentation_sequence.GetID()))
        self.assertTrue(all(t == 3 for _, t in calls))
        segmentation = result.segmentation.GetSegmentation()
        self.assertEqual(sorted(segmentation.GetSegment(s.segment_id).GetName() for s in SEGMENTS),
                         ["Left ventricle blood pool", "Myocardium"])
        np.testing.assert_array_equal(ijk_to_ras(result.translated), ijk_to_ras(proxy))
        volumeMl = float(np.prod(proxy.GetSpacing())) / 1000.0
        table = result.frames_table.GetTable()
        for t in range(3):
            labels = labels_of(result.segmentation_sequence.GetNthDataNode(t), loaded.sequence.GetNthDataNode(t))
            self.assertAlmostEqual(table.GetValueByName(t, "Blood pool").ToDouble(),
                                   (labels == 1).sum() * volumeMl, delta=2e-3)
        logic.showResult(result)
        self.delayDisplay("Phantom cine test passed")

    def test_cancel(self):
        import tempfile

        from unetgan.errors import Cancelled

        logic = UnetGANSlicerLogic()
        study, loaded = self._phantomCine()
        ids = {slicer.mrmlScene.GetNthNode(i).GetID() for i in range(slicer.mrmlScene.GetNumberOfNodes())}
        calls = []
        with tempfile.TemporaryDirectory() as folder:
            model, adapter = self._models(folder)
            with self.assertRaises(Cancelled):
                logic.process(loaded.volume, adapter, model, "auto", progress=lambda d, t, s: calls.append(d),
                              cancel=lambda: bool(calls))
        after = {slicer.mrmlScene.GetNthNode(i).GetID() for i in range(slicer.mrmlScene.GetNumberOfNodes())}
        self.assertEqual(after, ids)
        self.delayDisplay("Cancel test passed")
