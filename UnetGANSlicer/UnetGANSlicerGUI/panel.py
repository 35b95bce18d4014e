"""The module's panel: the ``.ui`` widgets wired to ``UnetGANSlicerLib``.

Apply and Train run as ``UnetGANSlicerLib.background.BackgroundRunner`` jobs: the backend works in
a subprocess followed by a thread, a ``qt.QTimer`` polls the runner (log lines into the panel's
log, progress), and whatever fails the buttons come back to "Adapt and segment" / "Start training".
The GUI is never held: no ``processEvents`` loop, no waiting in a button handler.
"""
import logging

import qt
import slicer
import vtk
from slicer.i18n import tr as _

from .install_dialogs import ensure_dependencies, slicer_too_old_text
from .parameters import ADAPTER_AUTO

CUSTOM_FILE = "file"
POLL_MS = 100


class Panel:
    def __init__(self, moduleWidget, logic):
        self.moduleWidget = moduleWidget  # the ScriptedLoadableModuleWidget (layout, resourcePath, observers)
        self.logic = logic
        self.ui = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._editWatcher = None  # keeps the shown result's tables in step with its segmentation
        self._tooOld = ""
        self._pdfOffered = False

    # -- setup ---------------------------------------------------------------------------------------------

    def setup(self) -> None:
        uiWidget = slicer.util.loadUI(self.moduleWidget.resourcePath("UI/UnetGANSlicer.ui"))
        self.moduleWidget.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self._tooOld = slicer_too_old_text(self.logic)
        if self._tooOld:  # an older Slicer: one message, and nothing that could fail on its Python runs
            self.ui.statusLabel.text = self._tooOld
            for button in (self.ui.applyButton, self.ui.trainButton):
                button.enabled = False
                button.toolTip = self._tooOld
            return
        self._setupControls()

    def _setupControls(self) -> None:
        from UnetGANSlicerLib.background import BackgroundRunner

        self.segmentRunner = BackgroundRunner(_("Adapt and segment"), _("Cancel"), _("Cancelling..."),
                                              on_change=self._onRunnerChanged, on_done=self._onSegmentDone,
                                              on_failed=self._onSegmentFailed, on_cancelled=self._onSegmentCancelled)
        self.trainRunner = BackgroundRunner(_("Start training"), _("Cancel training"), _("Cancelling..."),
                                            on_change=self._onRunnerChanged, on_done=self._onTrainDone,
                                            on_failed=self._onTrainFailed, on_cancelled=self._onTrainCancelled)
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.connect("timeout()", self._poll)

        w = self.moduleWidget
        w.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        w.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
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
        if self._tooOld:
            return
        self.segmentRunner.cancel()
        self.trainRunner.cancel()
        self.logic.stopBackends()  # a backend never outlives the module
        self.timer.stop()
        self._watchResult(None)

    def enter(self) -> None:
        if self._tooOld:
            return
        self.initializeParameterNode()
        self.logic.startBackend()  # torch imported and the models loaded while the user picks a volume

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.moduleWidget.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        self.segmentRunner.cancel()
        self.trainRunner.cancel()
        self.logic.stopBackends()
        self._watchResult(None)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.moduleWidget.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        w = self.moduleWidget
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            w.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            w.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._selectModelChoices()
            self._updateGui()
            if self._editWatcher is None:  # a result from before a module reload or in a reopened scene
                self._watchResult(self._resultInScene())

    # -- model choices (the same list as the web page: UnetGANSlicerLib.models.adapter_choices) ------------

    def _fillModelChoices(self) -> None:
        combo = self.ui.adapterComboBox
        combo.clear()
        for index, option in enumerate(self.logic.adapterChoices()):
            combo.addItem(option.label, option.value)
            combo.setItemData(index, option.description, qt.Qt.ToolTipRole)
        combo.addItem(_("Adapter file..."), CUSTOM_FILE)
        combo = self.ui.modelComboBox
        combo.clear()
        combo.addItem(_("Automatic (the segmenter the adapter was trained with)"), "")
        for choice in self.logic.segmenterChoices():
            combo.addItem(choice.label, choice.argument)
        combo.addItem(_("Segmenter file..."), CUSTOM_FILE)

    def _selectModelChoices(self) -> None:
        """Show the parameter node's adapter/model in the combo boxes."""
        p = self._parameterNode
        for combo, pathEdit, value in ((self.ui.adapterComboBox, self.ui.adapterPathLineEdit, p.adapter),
                                       (self.ui.modelComboBox, self.ui.modelPathLineEdit, p.model)):
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
        self._parameterNode.adapter = self._chosen(self.ui.adapterComboBox, self.ui.adapterPathLineEdit) or ADAPTER_AUTO
        self._parameterNode.model = self._chosen(self.ui.modelComboBox, self.ui.modelPathLineEdit)

    @staticmethod
    def _chosen(combo, pathEdit) -> str:
        data = combo.currentData
        return pathEdit.currentPath if data == CUSTOM_FILE else (data or "")

    # -- state ------------------------------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self.segmentRunner.busy or self.trainRunner.busy

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.adapterPathLineEdit.setVisible(self.ui.adapterComboBox.currentData == CUSTOM_FILE)
        self.ui.modelPathLineEdit.setVisible(self.ui.modelComboBox.currentData == CUSTOM_FILE)
        segment, train = self.segmentRunner, self.trainRunner
        self.ui.applyButton.text = segment.button_text
        if segment.busy:
            self.ui.applyButton.enabled = segment.button_enabled
        else:
            ready = p.inputVolume is not None and not train.busy
            self.ui.applyButton.enabled = ready
            self.ui.applyButton.toolTip = (_("Translate, segment and measure every frame") if ready
                                           else _("Select an input volume"))
        self.ui.trainButton.text = train.button_text
        if train.busy:
            self.ui.trainButton.enabled = train.button_enabled
        else:
            folders = [str(f or "").strip(". ") for f in (p.trainingFolder, p.sourceFolder)]
            self.ui.trainButton.enabled = not segment.busy and all(folders)
        self.ui.progressBar.setVisible(segment.busy)
        self.ui.trainProgressBar.setVisible(train.busy)
        hasResult = p.segmentation is not None
        inScene = self.logic.resultFromTable(p.table) is not None
        self.ui.segmentEditorButton.enabled = hasResult and not self._busy()
        self.ui.exportButton.enabled = inScene and not self._busy()
        self.ui.recomputeButton.enabled = inScene and not self._busy()
        self.ui.sideBySideButton.enabled = hasResult
        self.ui.resultsTableView.setMRMLTableNode(p.table)

    def _onRunnerChanged(self, runner) -> None:
        """Progress and the backend's log lines into the panel (GUI thread: called from start, poll, cancel)."""
        bar, status, log = ((self.ui.progressBar, self.ui.statusLabel, self.ui.logTextEdit)
                            if runner is self.segmentRunner else
                            (self.ui.trainProgressBar, self.ui.trainStatusLabel, self.ui.trainLogTextEdit))
        if runner.progress is not None:
            done, total, stage = runner.progress
            bar.setMaximum(max(total, 1))
            bar.setValue(done)
            from UnetGANSlicerLib.panel_jobs import progress_text

            status.text = progress_text(done, total, stage)
        for line in runner.new_log_lines():
            log.appendPlainText(line)
        self._updateGui()

    def _poll(self) -> None:
        busy = [runner.poll() for runner in (self.segmentRunner, self.trainRunner)]
        if not any(busy):
            self.timer.stop()

    def _start(self, runner, makeJob, log) -> None:
        log.clear()
        started = runner.start(makeJob)
        if started:
            self.timer.start()
        self._updateGui()

    # -- Adapt & Segment ---------------------------------------------------------------------------------------

    def onApplyButton(self) -> None:
        if self.segmentRunner.busy:
            self.segmentRunner.cancel()
            return
        for combo, pathEdit, what in ((self.ui.adapterComboBox, self.ui.adapterPathLineEdit, _("an adapter file")),
                                      (self.ui.modelComboBox, self.ui.modelPathLineEdit, _("a segmenter file"))):
            if combo.currentData == CUSTOM_FILE and not pathEdit.currentPath:
                slicer.util.errorDisplay(_("Choose {what} first.").format(what=what))
                return
        p = self._parameterNode
        self.ui.warningsLabel.text = ""
        self.ui.statusLabel.text = _("Starting...")
        self._start(self.segmentRunner, lambda: self.logic.segmentJob(
            p.inputVolume, p.adapter, p.model or None, p.device, p.testTimeAugmentation,
            ensureDependencies=lambda: ensure_dependencies(self.logic)), self.ui.logTextEdit)

    def _onSegmentDone(self, run) -> None:
        result, p = run.result, self._parameterNode
        p.segmentation, p.translated, p.table = result.segmentation, result.translated, result.table
        frames = _("{n} frames").format(n=result.n_frames) if result.n_frames > 1 else _("1 volume")
        done = _("Done: {frames} in {seconds:.1f} s. New nodes: {names}.").format(
            frames=frames, seconds=result.seconds, names=", ".join(n.GetName() for n in result.nodes))
        self.ui.statusLabel.text = f"{run.adapter_note}\n{done}" if run.adapter_note else done
        self.ui.warningsLabel.text = "\n".join(_("Warning: {w}").format(w=w) for w in result.warnings)
        self._watchResult(result)
        self._showViews(result)

    def _onSegmentFailed(self, message, details) -> None:
        logging.error(details)
        self.ui.statusLabel.text = _("Failed: {message}").format(message=message)
        slicer.util.errorDisplay(_("Adapt and segment failed: {message}").format(message=message), detailedText=details)

    def _onSegmentCancelled(self) -> None:
        said = self.segmentRunner.message
        self.ui.statusLabel.text = (said[:1].upper() + said[1:] + ".") if said.startswith("not started") else _(
            "Cancelled: the scene is as it was before.")

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

    # -- Results ------------------------------------------------------------------------------------------------

    def onSideBySideButton(self) -> None:
        result = self._resultInScene()
        if result is not None:
            self._watchResult(result)
            self._showViews(result)
        else:
            p = self._parameterNode
            self.logic.showSideBySide(p.inputVolume, p.translated, p.segmentation)

    def onSegmentEditorButton(self) -> None:
        """The Segment Editor on the result's segmentation and the result's own input volume."""
        result = self._resultInScene()
        if result is None:
            return
        slicer.util.selectModule("SegmentEditor")
        self.logic.handToEditor(slicer.modules.segmenteditor.widgetRepresentation().self().editor, result)
        self._watchResult(result)
        self._showViews(result)  # the module switch must not take the pair off the screen

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
        self._offerPdfPackage()
        base = result.input.GetName() or "result"
        try:
            with slicer.util.WaitCursor():
                files = self.logic.exportResult(result, folder, base, overwrite=False)
        except FileExistsError as error:
            if not slicer.util.confirmYesNoDisplay(_("{message}\n\nReplace the existing files?").format(message=str(error))):
                return
            files = self.logic.exportResult(result, folder, base, overwrite=True)
        except Exception as error:  # noqa: BLE001 - shown with its details
            import traceback

            slicer.util.errorDisplay(_("Export failed: {message}").format(message=str(error)),
                                     detailedText=traceback.format_exc())
            return
        note = self.logic.exportNote(result)
        self.ui.statusLabel.text = _("Saved {n} files in {folder}").format(n=len(files), folder=folder) + (
            "\n" + note if note else "")

    def _offerPdfPackage(self) -> None:
        """The PDF report needs matplotlib: offer to install it once, before the first Export without it."""
        from unetgan.dicom_outputs import pdf_available

        if not pdf_available() and not self._pdfOffered:
            self._pdfOffered = True
            ensure_dependencies(self.logic)  # asks; a 'no' exports everything but the PDF, and says so

    # -- Train adapter --------------------------------------------------------------------------------------------

    def onTrainButton(self) -> None:
        if self.trainRunner.busy:
            self.trainRunner.cancel()
            return
        p = self._parameterNode
        self.ui.trainProgressBar.setMaximum(p.iterations)
        self.ui.trainProgressBar.setValue(0)
        self.ui.trainStatusLabel.text = _("Starting...")
        self._start(self.trainRunner, lambda: self.logic.trainJob(
            str(p.trainingFolder), str(p.sourceFolder), p.trainingVendor, p.iterations, p.model or None, p.device,
            ensureDependencies=lambda: ensure_dependencies(self.logic)), self.ui.trainLogTextEdit)

    def _onTrainDone(self, path) -> None:
        self.ui.trainStatusLabel.text = _("Adapter saved: {path}").format(path=path)
        self._fillModelChoices()
        self._parameterNode.adapter = str(path.resolve())  # as the adapter list names a user's adapter
        self._selectModelChoices()

    def _onTrainFailed(self, message, details) -> None:
        logging.error(details)
        self.ui.trainStatusLabel.text = _("Failed: {message}").format(message=message)
        slicer.util.errorDisplay(_("Adapter training failed: {message}").format(message=message), detailedText=details)

    def _onTrainCancelled(self) -> None:
        self.ui.trainStatusLabel.text = _("Training cancelled.")
