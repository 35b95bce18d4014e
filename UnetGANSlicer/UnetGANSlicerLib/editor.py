"""Handing a result to Slicer's Segment Editor, without Qt.

``editor`` is the Segment Editor module's ``qMRMLSegmentEditorWidget`` (or anything with its
methods). The editor edits the result's own segmentation on the result's own input volume (not
whatever the panel's input selector shows now). Its "auto-show source volume" option would put
the input into every view and clear the other layers, undoing the side by side: it is off while
the nodes are set, then put back as the user had it, so the editor's settings are left as they were.
"""
from __future__ import annotations

# (property read, setter): Slicer >= 5.3 says "source volume", older ones "master volume"
AUTO_SHOW = (("autoShowSourceVolumeNode", "setAutoShowSourceVolumeNode"),
             ("autoShowMasterVolumeNode", "setAutoShowMasterVolumeNode"))
SOURCE_SETTERS = ("setSourceVolumeNode", "setMasterVolumeNode")


def _auto_show(editor):
    """(current value, setter) of the editor's auto-show option, or (None, None) if it has none."""
    for prop, setter in AUTO_SHOW:
        if hasattr(editor, setter):
            value = getattr(editor, prop, None)
            return (value() if callable(value) else value), getattr(editor, setter)
    return None, None


def hand_to_editor(editor, result) -> None:
    """Select the result's segmentation and its input volume in the editor; its options end as they were."""
    previous, set_auto_show = _auto_show(editor)
    if set_auto_show is not None:
        set_auto_show(False)
    try:
        editor.setSegmentationNode(result.segmentation)
        setter = next(getattr(editor, name) for name in SOURCE_SETTERS if hasattr(editor, name))
        setter(result.input)
    finally:
        if set_auto_show is not None and previous is not None:
            set_auto_show(bool(previous))
