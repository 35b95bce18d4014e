"""MRML layer of UnetGANSlicer: scene nodes <-> the ``unetgan`` backend, without Qt.

Public entry point::

    from UnetGANSlicerLib import adapt_and_segment
    result = adapt_and_segment(volume_node, adapter="Siemens", model=None, device="auto",
                               progress=None, cancel=None)
    result.translated, result.segmentation, result.table, result.warnings

Outside the Slicer application call ``UnetGANSlicerLib.context.setup_standalone()``
first (it creates the module logics Slicer would provide).

The names below are imported on first use: importing the package (for instance
``UnetGANSlicerLib.dependencies``, which an older Slicer must be able to run to say
which Slicer is needed) does not import the backend, numpy or torch.
"""
_PUBLIC = {"AdaptSegmentResult": "results", "BackendError": "runner", "adapt_and_segment": "workflow"}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
