"""The page's workflow: input -> Adapt & Segment -> result, wired to the MRML layer (``UnetGANSlicerLib``).

Nothing here computes images, masks or numbers: loading goes through
``UnetGANSlicerLib.loading``, Adapt & Segment through ``UnetGANSlicerLib.adapt_and_segment``
(the backend CLI in a subprocess). The other jobs have their own modules, each given
this controller (the session: its state, input, result and views):
:mod:`.tables` (numbers, curve, warnings), :mod:`.edits` (the editor and recomputation),
:mod:`.playback` (frames), :mod:`.save` (files), :mod:`.transfers` (upload and download
routes), :mod:`.adapters` (the adapter list), :mod:`.views` (the slice views).

Threads: trame runs on one asyncio loop, which also renders the views. A run of
Adapt & Segment (seconds to minutes) goes to a worker thread so the page stays
responsive (progress, Cancel); meanwhile rendering is blocked and the controls
are disabled, so only the worker touches the scene; progress reaches the loop
through ``call_soon_threadsafe``. Everything else runs on the loop.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
import traceback
from pathlib import Path

from trame_server.utils import asynchronous

from UnetGANSlicerLib import BackendError, adapt_and_segment, editing, export, loading, runner
from UnetGANSlicerLib.nodes import remove_nodes
from unetgan.errors import Cancelled, InputError
from unetgan.io.safety import ATTACHED
from unetgan.tta import DEFAULT_TTA, TTA_LABELS

from . import adapters, paths
from .edits import EditTracker
from .options import DEVICES, WebOptions
from .playback import Playback
from .save import Saver
from .tables import ResultTables
from .transfers import Transfers
from .views import link_views, release_render_contexts, show_volume_plane

log = logging.getLogger("unetgan.web")


class WorkflowController:
    """The session's state and actions; ``views`` are the two trame-slicer slice views (original, translated)."""

    def __init__(self, server, slicer_app, options: WebOptions, views: tuple, undo_stack=None):
        self.server = server
        self.state = server.state
        self.slicer_app = slicer_app
        self.scene = slicer_app.scene
        self.options = options
        self.views = views
        self.undo_stack = undo_stack
        self.input: loading.LoadedImage | None = None
        self.result = None
        self.results: list = []  # every run's result on this input (older ones hidden, never overwritten)
        self._cancel = threading.Event()
        self._tasks: set = set()  # background jobs (kept referenced until done)
        self.last_activity = time.monotonic()
        self.transfers = Transfers(self)
        self.tables = ResultTables(self)
        self.playback = Playback(self, undo_stack)
        self.edits = EditTracker(self, undo_stack)
        self.saving = Saver(self)
        self._init_state()
        self._bind()

    def _init_state(self):
        s = self.state
        adapter_items = adapters.adapter_items(self.options.adapter)
        s.update({
            "ug_adapters": adapter_items,
            "ug_adapter": adapters.selected_at_start(self.options.adapter),
            "ug_adapter_note": "",  # what "Automatic" means for the loaded image
            "ug_devices": DEVICES,
            "ug_device": self.options.device,
            "ug_ttas": [{"title": title, "value": value} for value, title in TTA_LABELS.items()],
            "ug_tta": DEFAULT_TTA,
            "ug_server_path": "",
            "ug_server_paths": self.options.data_root is not None,  # the field is off without --data-root
            "ug_busy": False,  # set by the server only (a server-side job is running)
            "ug_busy_text": "",
            "ug_has_input": False,
            "ug_input_name": "",
            "ug_input_info": "",
            "ug_is_cine": False,
            "ug_n_frames": 1,
            "ug_running": False,
            "ug_progress_done": 0,
            "ug_progress_total": 0,
            "ug_progress_text": "",
            "ug_has_result": False,
            "ug_has_translation": False,
            "ug_right_title": "Translated",
            "ug_segment_names": [],
            "ug_error": "",
            "ug_show_error": False,
            "ug_message": "",
            "ug_show_message": False,
            "ug_output_root": str(self.options.output_dir),
            "ug_seconds": 0.0,
            **self.transfers.state_defaults(), **ResultTables.STATE, **EditTracker.STATE, **Playback.STATE,
            **Saver.STATE,
        })

    def _bind(self):
        ctrl = self.server.controller
        # Long jobs run as tasks: a handler the client awaits would hold back its next
        # message (the Cancel click) until the job ends.
        ctrl.ug_load_phantom = self.in_background(self.load_phantom)
        ctrl.ug_load_server_path = self.in_background(self.load_server_path)
        ctrl.ug_run = self.in_background(self.run)
        ctrl.ug_cancel = self.cancel
        ctrl.ug_toggle_play = self.playback.toggle
        ctrl.ug_save = self.saving.save
        ctrl.ug_confirm_save = self.saving.confirm

    # ------------------------------------------------------------------ session
    def touch(self) -> None:
        """A user action: the session is not idle."""
        self.last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        if self.state.ug_running or self.state.ug_busy:
            self.touch()
        return time.monotonic() - self.last_activity

    def in_background(self, coroutine_function):
        def start(*args, **kwargs):
            self.touch()
            task = asynchronous.create_task(coroutine_function(*args, **kwargs))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return start

    def error(self, message: str) -> None:
        """Show an error in the page (snackbar + alert) and in the log."""
        log.error("%s", message)
        with self.state:  # flushed at once, also from background tasks
            self.state.ug_error = str(message)
            self.state.ug_show_error = True

    def message(self, text: str) -> None:
        with self.state:
            self.state.ug_message = text
            self.state.ug_show_message = True

    def report(self, err: BaseException, context: str) -> None:
        if isinstance(err, (InputError, BackendError, paths.PathRejected, export.OutputExists, ValueError, OSError)):
            self.error(f"{context}: {err}")
        else:
            log.error("%s", "".join(traceback.format_exception(err)))
            self.error(f"{context}: unexpected error ({type(err).__name__}: {err})")

    def locked(self) -> bool:
        if self.state.ug_running or self.state.ug_busy:
            self.message("Wait for the current job to finish (or cancel it).")
            return True
        return False

    async def _busy(self, text: str, job, *args):
        """Run a blocking read (no scene access) off the loop, with the page showing it is busy."""
        with self.state:
            self.state.ug_busy, self.state.ug_busy_text = True, text
        try:
            return await asyncio.get_running_loop().run_in_executor(None, job, *args)
        finally:
            with self.state:
                self.state.ug_busy, self.state.ug_busy_text = False, ""

    # ------------------------------------------------------------------ input
    def _clear(self) -> None:
        """Remove the current input and every result made from it."""
        self.playback.stop()
        editor = self.slicer_app.segmentation_editor
        editor.deactivate_effect()
        editor.clear()
        for view in self.views:
            view.set_background_volume_id(None)
        self.edits.observe(None)
        for result in self.results:
            remove_nodes(result.nodes)
        self.results, self.result = [], None
        if self.input is not None:
            loading.remove_image(self.input)
        self.input = None
        self.tables.clear()
        self.saving.forget()
        self.state.update({"ug_has_input": False, "ug_has_result": False, "ug_input_name": "", "ug_input_info": "",
                           "ug_segment_names": [], **EditTracker.STATE,
                           "ug_has_translation": False, "ug_frame": 1, "ug_frame_shown": 1, "ug_n_frames": 1,
                           "ug_is_cine": False, "ug_adapter_note": ""})

    def _show_input(self, loaded: loading.LoadedImage, description: str) -> None:
        self._clear()
        self.input = loaded
        # the backend worker starts (torch, the shipped models) while the user looks at the image, so Adapt &
        # Segment finds it ready; not at session start, where it would slow the page's own start
        runner.start_worker()
        volume_id = loaded.volume.GetID()
        for view in self.views:
            view.set_background_volume_id(volume_id)
            view.set_foreground_volume_id(None)
        link_views(self.scene)
        for view in self.views:
            show_volume_plane(view, loaded.volume)
        dims = loaded.volume.GetImageData().GetDimensions()
        spacing = loaded.volume.GetSpacing()
        frames = f"{loaded.n_frames} frames x " if loaded.is_cine else ""
        info = (f"{frames}{dims[2]} slices of {dims[0]} x {dims[1]}, "
                f"{spacing[0]:.2f} x {spacing[1]:.2f} x {spacing[2]:.2f} mm")
        self.state.update({"ug_has_input": True, "ug_input_name": description, "ug_input_info": info,
                           "ug_is_cine": loaded.is_cine, "ug_n_frames": loaded.n_frames, "ug_frame": 1,
                           "ug_frame_shown": 1, "ug_right_title": "Translated (run Adapt & Segment)",
                           "ug_adapter_note": adapters.automatic_choice(loaded).text})
        save_name = re.sub(r"[^A-Za-z0-9._-]+", "_", loaded.volume.GetName()).strip("._-") or "case"
        self.state.ug_save_name = save_name[:60]

    async def load_phantom(self):
        """A phantom cine (``unetgan.phantom``) of the configured vendor, generated on the server."""
        if self.locked():
            return
        from unetgan.io.images import Geometry
        from unetgan.phantom import make_study

        o = self.options
        try:
            study = await self._busy("Generating a phantom cine...", lambda: make_study(
                o.phantom_vendor, seed=o.phantom_seed, n_phases=o.phantom_phases, n_slices=o.phantom_slices,
                matrix=o.phantom_matrix))
            geometry = Geometry(study.spacing, study.origin, study.direction)
            with self.state:
                loaded = loading.add_image(study.image, geometry, f"phantom {study.vendor}", self.scene,
                                           trigger_times_ms=study.trigger_times_ms)
                self._show_input(loaded, f"Phantom {study.vendor} cine (seed {o.phantom_seed})")
        except Exception as err:  # noqa: BLE001 - every failure is shown in the page
            with self.state:
                self.report(err, "could not make the phantom case")

    async def load_path(self, path: Path, description: str | None = None, data_files: str = ATTACHED):
        """Read ``path`` into the scene. Files from the page (uploads, typed paths) may not point to other
        files (``ATTACHED``); the operator's INPUT on the command line may (``BESIDE``)."""
        from unetgan.io.images import read_image

        image = await self._busy(f"Reading {path.name}...", functools.partial(read_image, data_files=data_files), path)
        with self.state:
            loaded = loading.add_image(image.array, image.geometry, loading.image_name(path), self.scene,
                                       trigger_times_ms=image.trigger_times_ms)
            loading.record_dicom_origin(loaded, image)  # Save then writes the DICOM SEG and SR too
            self._show_input(loaded, description or path.name)
            self.state.ug_warnings = list(image.meta.get("warnings", []))

    async def load_server_path(self):
        if self.locked():
            return
        try:
            if self.options.data_root is None:
                raise paths.PathRejected("reading server paths is off: the server was started without --data-root")
            path = paths.check_server_path(self.state.ug_server_path, self.options.data_root)
            await self.load_path(path, str(path))
        except Exception as err:  # noqa: BLE001
            with self.state:
                self.report(err, "could not load the path")

    # ------------------------------------------------------------------ run
    async def run(self):
        if self.input is None:
            self.error("Load a cine or volume first.")
            return
        if self.locked():
            return
        self.playback.stop()
        volume = self.input.volume
        try:
            adapter, adapter_note = adapters.backend_adapter(self.state.ug_adapter, self.input)
        except Exception as err:  # noqa: BLE001 - e.g. a user's adapter file changed since it was registered
            self.report(err, "Adapt & Segment failed")
            return
        model, device, tta = self.options.model, self.state.ug_device, self.state.ug_tta
        if self.result is not None:
            editing.commit_current_frame(self.result)
        self.slicer_app.segmentation_editor.deactivate_effect()
        loop = asyncio.get_running_loop()
        self._cancel.clear()
        with self.state:
            self.state.update({"ug_running": True, "ug_progress_done": 0, "ug_progress_total": self.input.n_frames,
                               "ug_progress_text": "starting the backend...", "ug_show_error": False})

        def progress(done, total, stage):
            loop.call_soon_threadsafe(self._on_progress, done, total, stage)

        def job():
            try:
                return adapt_and_segment(volume, adapter=adapter, model=model, device=device, tta=tta,
                                         progress=progress, cancel=self._cancel.is_set)
            finally:
                release_render_contexts(self.views)

        blocked = [view.set_render_blocked(True) for view in self.views]
        result = None
        try:
            result = await loop.run_in_executor(None, job)
        except Cancelled:
            with self.state:
                self.message("Cancelled: the scene is as it was before the run.")
        except Exception as err:  # noqa: BLE001 - shown in the page
            with self.state:
                self.report(err, "Adapt & Segment failed")
        finally:
            for view, was in zip(self.views, blocked):
                view.set_render_blocked(was)
            with self.state:
                self.state.ug_running = False
        if result is not None:
            with self.state:
                self._show_result(result, adapter_note)

    def _on_progress(self, done: int, total: int, stage: str) -> None:
        with self.state:
            self.state.ug_progress_done, self.state.ug_progress_total = int(done), int(total)
            self.state.ug_progress_text = f"{done}/{total} frames" + ("" if stage in ("", "done") else f" ({stage})")

    def cancel(self):
        self.touch()
        if self.state.ug_running:
            self._cancel.set()
            self.state.ug_progress_text = "cancelling..."

    def _show_result(self, result, adapter_note: str = "") -> None:
        for previous in self.results:
            display = previous.segmentation.GetDisplayNode() if previous.segmentation is not None else None
            if display is not None:
                display.SetVisibility(False)
        self.results.append(result)
        self.result = result
        right = result.translated or result.input
        self.views[1].set_background_volume_id(right.GetID())
        link_views(self.scene)
        display = result.segmentation.GetDisplayNode()
        if display is not None:
            display.SetVisibility(True)
            display.SetAllSegmentsVisibility(True)
        self.slicer_app.segmentation_editor.set_active_segmentation(result.segmentation, result.input)
        self.edits.observe(result.segmentation)
        if self.undo_stack is not None:
            self.undo_stack.clear()
        segmentation = result.segmentation.GetSegmentation()
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        used = (result.measurements or {}).get("adapter")
        self.saving.forget()
        self.state.update({
            "ug_has_result": True, "ug_has_translation": result.translated is not None and bool(used),
            "ug_right_title": adapters.translated_title(used), "ug_segment_names": names,
            "ug_unsaved_edits": False, "ug_seconds": round(result.seconds, 1),
        })
        self.edits.show_edited(result.measurements or {})
        self.tables.refresh()
        for view in self.views:
            view.schedule_render()
        note = f" {adapter_note}." if adapter_note else ""
        self.message(f"Done in {result.seconds:.1f} s: {result.n_frames} frame(s) segmented.{note}")
