"""MRML layer of UnetGANSlicer: scene nodes <-> the ``unetgan`` backend, without Qt.

Public entry point::

    from UnetGANSlicerLib import adapt_and_segment
    result = adapt_and_segment(volume_node, adapter="Siemens", model=None, device="auto",
                               progress=None, cancel=None)
    result.translated, result.segmentation, result.table, result.warnings

Outside the Slicer application call ``UnetGANSlicerLib.context.setup_standalone()``
first (it creates the module logics Slicer would provide).
"""
from .runner import BackendError
from .workflow import AdaptSegmentResult, adapt_and_segment

__all__ = ["AdaptSegmentResult", "BackendError", "adapt_and_segment"]
