"""Manual correction in the page: the editor's brush, and the numbers kept in step with the masks.

The segment editor is trame-slicer's. It starts as Slicer's Segment Editor does, with a
2D brush a few millimetres wide that paints on the slice shown only; the sphere button
(painting through neighbouring slices) is the user's choice. After every edit the
measurements are recomputed by the MRML layer (``UnetGANSlicerLib.editing``), which
also says whether the masks differ from what the backend returned (``edited``) and
which numbers are implausible (its warnings); the page shows both.
"""
from __future__ import annotations

import asyncio
import threading

from trame_server.utils import asynchronous
from trame_server.utils.typed_state import TypedState

from UnetGANSlicerLib import editing

EDIT_SETTLE_S = 0.3
BRUSH_DIAMETER_MM = 5  # Slicer's Segment Editor paints a few millimetres wide by default


def start_with_2d_brush(state) -> None:
    """Paint and Erase (they share these settings) start with a 2D brush of BRUSH_DIAMETER_MM millimetres."""
    from trame_slicer.app.ui import PaintEffectState
    from trame_slicer.segmentation import BrushDiameterMode

    brush = TypedState(state, PaintEffectState)
    brush.data.use_sphere_brush = False
    brush.data.brush_diameter_mode = BrushDiameterMode.Absolute
    brush.data.brush_diameter_slider.value = BRUSH_DIAMETER_MM


class EditTracker:
    """Observes the shown segmentation; once edits settle, the MRML layer recomputes and the page shows it."""

    STATE = {"ug_edited": False, "ug_edited_frames": [], "ug_unsaved_edits": False}

    def __init__(self, page, undo_stack=None):
        self.page = page
        self.state = page.state
        self._task = None
        self._observed: list[tuple] = []  # (node, observer id) on the shown segmentation
        page.slicer_app.segmentation_editor.segmentation_modified.connect(self.on_modified)
        if undo_stack is not None:
            undo_stack.index_changed.connect(self.on_modified)

    def observe(self, node) -> None:
        """Edits (paint, erase, undo...) modify segments: observe them on the node itself (None: stop)."""
        import slicer

        for observed, tag in self._observed:
            observed.RemoveObserver(tag)
        self._observed = []
        if node is None:
            return
        for event in (slicer.vtkSegmentation.SegmentModified, slicer.vtkSegmentation.RepresentationModified,
                      slicer.vtkSegmentation.SegmentAdded, slicer.vtkSegmentation.SegmentRemoved):
            self._observed.append((node, node.AddObserver(event, self.on_modified)))

    def on_modified(self, *_):
        """The segment editor changed the mask: recompute the measurements once edits settle."""
        page = self.page
        if page.result is None or page.playback.switching or self.state.ug_running:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # only the loop's thread schedules work
        page.touch()
        if self._task is None or self._task.done():
            self._task = asynchronous.create_task(self._apply_soon())

    async def _apply_soon(self):
        await asyncio.sleep(EDIT_SETTLE_S)
        with self.state:
            if self.apply():
                self.state.ug_unsaved_edits = True

    def show_edited(self, measurements: dict) -> None:
        """Whether (and in which frames, numbered as the page shows them) the masks differ from the backend's."""
        self.state.ug_edited = bool(measurements.get("edited"))
        self.state.ug_edited_frames = list(measurements.get("edited_frames") or [])

    def apply(self) -> bool:
        """Recompute from the segmentation now; True if the numbers changed."""
        result = self.page.result
        if result is None or self.state.ug_running:
            return False
        before = (result.measurements or {}).get("frames")
        try:
            measurements = editing.apply_edits(result)
        except Exception as err:  # noqa: BLE001
            self.page.report(err, "could not update the measurements")
            return False
        self.show_edited(measurements)
        self.page.tables.refresh()
        return measurements.get("frames") != before
