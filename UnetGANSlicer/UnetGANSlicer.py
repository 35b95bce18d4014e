"""UnetGANSlicer: cardiac cine MRI segmentation that adapts across scanner vendors.

The module's entry points only, as Slicer finds them. The panel is ``UnetGANSlicerGUI.panel``
(Qt); the work is done by ``UnetGANSlicerLib`` (MRML layer, no Qt), which runs the ``unetgan``
backend in a separate PythonSlicer process. Supported: 3D Slicer 5.12 or newer (an older Slicer
shows which version is needed).
"""
import os

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class UnetGANSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Unet-GAN Cardiac Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["UnetGANSlicer developers (UnetGANSlicer project)"]
        self.parent.helpText = _(
            "Segments the left-ventricular blood pool and myocardium in short-axis cine MRI and measures "
            "EDV, ESV, SV, EF and myocardial mass. Images from another scanner vendor are first translated "
            "to the look of the vendor the segmenter learnt from (Unet-GAN adapter), then segmented. Every "
            "frame of a cine is processed; results are new nodes (nothing is overwritten) and can be corrected "
            "in the Segment Editor. Needs 3D Slicer 5.12 or newer. "
            '<a href="https://github.com/unetganslicer/UnetGANSlicer">Documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Method: Unet-GAN (Yan et al., MICCAI 2019): domain adaptation of a cardiac segmentation "
            "network across MR vendors with a CycleGAN guided by U-Net features. Not for clinical use."
        )
        # the result layout and the Sample Data entry exist from startup on: a scene saved with the layout
        # opens with its views even before the module is opened
        slicer.app.connect("startupCompleted()", onStartupCompleted)


def onStartupCompleted():
    from UnetGANSlicerGUI import startup

    startup.on_startup_completed(os.path.dirname(os.path.abspath(__file__)))


def registerSampleData():
    from UnetGANSlicerGUI import startup

    startup.register_sample_data(os.path.dirname(os.path.abspath(__file__)))


class UnetGANSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.panel = None

    def setup(self) -> None:
        from UnetGANSlicerGUI.panel import Panel

        ScriptedLoadableModuleWidget.setup(self)
        self.panel = Panel(self, UnetGANSlicerLogic())
        self.panel.setup()

    def cleanup(self) -> None:
        if self.panel is not None:
            self.panel.cleanup()
        self.removeObservers()

    def enter(self) -> None:
        self.panel.enter()

    def exit(self) -> None:
        self.panel.exit()


class UnetGANSlicerLogic(ScriptedLoadableModuleLogic):
    """Slicer's logic class; every other call goes to UnetGANSlicerLib.module_logic.ModuleLogic (no Qt)."""

    def __init__(self) -> None:
        from UnetGANSlicerLib.module_logic import ModuleLogic

        ScriptedLoadableModuleLogic.__init__(self)
        self.core = ModuleLogic()
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", "Terminology",
                            "UnetGANSlicer.term.json")
        try:  # the segments keep their tags without it; only the terminology selector lacks the list
            slicer.modules.terminologies.logic().LoadTerminologyFromFile(path)
        except Exception:  # noqa: BLE001
            import logging

            logging.warning(f"UnetGANSlicer: could not load the terminology {path}")

    def getParameterNode(self):
        from UnetGANSlicerGUI.parameters import UnetGANSlicerParameterNode

        return UnetGANSlicerParameterNode(super().getParameterNode())

    def __getattr__(self, name):
        if name == "core":  # not set yet
            raise AttributeError(name)
        return getattr(self.core, name)


class UnetGANSlicerTest(ScriptedLoadableModuleTest):
    """Phantom scenario inside Slicer (UnetGANSlicerGUI.selftest): plumbing, not accuracy."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from UnetGANSlicerGUI import selftest

        for case in (selftest.phantom_cine, selftest.cancel, selftest.background_apply):
            self.setUp()
            case(self, UnetGANSlicerLogic())
