"""The parameter node the panel's controls are bound to (Slicer's parameterNodeWrapper)."""
import pathlib
from typing import Annotated

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper

ADAPTER_AUTO = "auto"  # UnetGANSlicerLib.models.AUTOMATIC (not imported here: the backend is loaded lazily)


@parameterNodeWrapper
class UnetGANSlicerParameterNode:
    """
    inputVolume - the cine proxy volume (or a 3D volume) to process.
    adapter - an entry of the adapter list (UnetGANSlicerLib.models.adapter_choices: "auto", a shipped
        adapter, "none", a user's adapter file) or an adapter file chosen with "Adapter file...".
    model - segmenter name, file path, or "" (the segmenter the adapter was trained with).
    device - auto, CPU or GPU.
    testTimeAugmentation - flip averaging: none (the default), flip4, rot180 or flip (unetgan.tta).
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
