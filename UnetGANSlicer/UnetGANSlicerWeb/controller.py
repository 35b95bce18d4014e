"""What the page's controls do: state and actions, wired to the MRML layer (``UnetGANSlicerLib``).

Nothing here computes images, masks or numbers: loading goes through
``UnetGANSlicerLib.loading``, Adapt & Segment through ``UnetGANSlicerLib.adapt_and_segment``
(the backend CLI in a subprocess), measurements after edits through
``UnetGANSlicerLib.editing``, files through ``UnetGANSlicerLib.export``; names from
the browser are checked by :mod:`.paths`.

Threads: trame runs on one asyncio loop, which also renders the views. A run of
Adapt & Segment (seconds to minutes) goes to a worker thread so the page stays
responsive (progress, Cancel); meanwhile rendering is blocked and the controls
are disabled, so only the worker touches the scene; progress reaches the loop
through ``call_soon_threadsafe``. Everything else runs on the loop.
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from trame_server.utils import asynchronous

from UnetGANSlicerLib import BackendError, adapt_and_segment, dicom_export, editing, export, loading, runner
from UnetGANSlicerLib.measurements import table_rows
from UnetGANSlicerLib.nodes import remove_nodes
from unetgan.errors import Cancelled, InputError
from unetgan.io.safety import ATTACHED
from unetgan.tta import DEFAULT_TTA, TTA_LABELS

from . import paths
from .plot import as_data_url, volume_curve_png
from .views import show_volume_plane

log = logging.getLogger("unetgan.web")

NO_ADAPTER = "none"
DEVICES = [{"title": "Automatic", "value": "auto"}, {"title": "CPU", "value": "cpu"},
           {"title": "GPU (CUDA)", "value": "cuda"}]
PLAY_FPS = 6.0
EDIT_SETTLE_S = 0.3


@dataclass
class WebOptions:
    """Settings of one page server (the command line's options)."""

    host: str = "127.0.0.1"
    port: int = 8080
    output_dir: Path = field(default_factory=lambda: Path.cwd() / "unetgan-web-output")
    input: str | None = None
    model: str | None = None  # segmenter: registry name or file (None: the registry's default)
    adapter: str | None = None  # adapter offered first: registry name, target vendor or file
    device: str = "auto"
    data_root: Path | None = None  # when set, server paths typed in the page must be inside it
    max_upload_bytes: int = paths.MAX_UPLOAD_BYTES
    phantom_vendor: str = "Siemens"
    phantom_seed: int = 0
    phantom_phases: int | None = None
    phantom_slices: int | None = None
    phantom_matrix: int | None = None
    sign_in: object | None = None  # auth.SignIn of the server (None: nobody signs in)
    session_id: str | None = None  # set in a session process of the launcher
    auth_key: str | None = None  # the session's websocket secret (from the launcher)
    idle_minutes: float = 30.0  # a session process ends after this long without a user action (0: never)
    closed_grace_s: int = 0  # a session process ends this long after its last tab closed (0: never)


UPLOAD_PATH = "/ug-upload"
DOWNLOAD_PATH = "/ug-download"
DOWNLOADS = {"pdf": ("report", "Report (PDF)"), "seg": ("dicom", "DICOM SEG")}  # kind: (export group, button)
UPLOAD_CHUNK = 1 << 20


def adapter_choices(preferred: str | None = None) -> list[dict]:
    """Select items: the registry's adapters, a preferred adapter file, and "none"."""
    items = []
    try:
        from unetgan.registry import read_registry

        entries = [e for e in read_registry() if e.kind == "adapter"]
    except Exception as err:  # a broken registry must not stop the page; it is reported on use
        log.warning("cannot read the model registry: %s", err)
        entries = []
    for entry in entries:
        title = f"{entry.target_vendor} ({entry.name})" if entry.target_vendor else entry.name
        if not entry.file.is_file():
            title += " - file missing"
        items.append({"title": title, "value": entry.name})
    if preferred and preferred not in [i["value"] for i in items]:
        items.insert(0, {"title": f"{Path(preferred).name} (file)" if Path(preferred).suffix else preferred,
                         "value": preferred})
    items.append({"title": "none (segment the image as it is)", "value": NO_ADAPTER})
    return items


def _number(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "-"
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e6 else f"{value:.1f}"


def _same_host_cors(request) -> dict:
    """Headers that let the page (served by the launcher on another port of the same host) read the answer."""
    from urllib.parse import urlsplit

    origin = request.headers.get("Origin", "")
    if origin and urlsplit(origin).hostname == request.url.host:
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    return {}


def release_render_contexts(views) -> None:
    """Unbind the views' OpenGL contexts from the calling (worker) thread.

    Making nodes in the worker lets VTK make the views' contexts current there
    (EGL then refuses them to the loop's thread: "Unable to eglMakeCurrent"); the
    worker gives them back before it ends.
    """
    for view in views:
        window = view.render_window()
        if window.IsCurrent() and hasattr(window, "ReleaseCurrent"):
            window.ReleaseCurrent()


class WorkflowController:
    """State and actions of the page; ``views`` are the two trame-slicer slice views (original, translated)."""

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
        self.downloads: dict[str, Path] = {}  # kind -> file the last Save wrote (send_download)
        self.results: list = []  # every run's result on this input (older ones hidden, never overwritten)
        self._cancel = threading.Event()
        self._switching_frame = False
        self._edit_task = None
        self._play_task = None
        self._observed: list[tuple] = []  # (node, observer id) on the shown segmentation
        self._tasks: set = set()  # background jobs (kept referenced until done)
        # uploads of this session only, streamed to disk; removed when the process ends
        self.upload_dir = Path(tempfile.mkdtemp(prefix="unetgan-web-uploads-"))
        self.last_activity = time.monotonic()
        self._init_state()
        self._bind()

    # ------------------------------------------------------------------ state
    def _init_state(self):
        s = self.state
        adapters = adapter_choices(self.options.adapter)
        s.update({
            "ug_adapters": adapters,
            "ug_adapter": self.options.adapter or next(
                (a["value"] for a in adapters if a["value"] != NO_ADAPTER), NO_ADAPTER),
            "ug_devices": DEVICES,
            "ug_device": self.options.device,
            "ug_ttas": [{"title": title, "value": value} for value, title in TTA_LABELS.items()],
            "ug_tta": DEFAULT_TTA,
            "ug_server_path": "",
            "ug_server_paths": self.options.data_root is not None,  # the field is off without --data-root
            "ug_upload_ticket": secrets.token_urlsafe(24),  # the upload route answers this page only
            "ug_upload_port": int(self.options.port),
            "ug_max_upload_bytes": int(self.options.max_upload_bytes),
            "ug_upload_suffixes": list(paths.UPLOAD_SUFFIXES),
            "ug_busy": False,  # set by the server only (a server-side job is running)
            "ug_busy_text": "",
            "ug_uploading": "",  # set by the page while it sends a file
            "ug_has_input": False,
            "ug_input_name": "",
            "ug_input_info": "",
            "ug_is_cine": False,
            "ug_n_frames": 1,
            "ug_frame": 1,
            "ug_frame_shown": 1,  # the frame the server's views show (follows ug_frame)
            "ug_playing": False,
            "ug_running": False,
            "ug_progress_done": 0,
            "ug_progress_total": 0,
            "ug_progress_text": "",
            "ug_has_result": False,
            "ug_has_translation": False,
            "ug_right_title": "Translated",
            "ug_segment_names": [],
            "ug_summary": [],
            "ug_frame_rows": [],
            "ug_curve": "",
            "ug_edited": False,
            "ug_warnings": [],
            "ug_error": "",
            "ug_show_error": False,
            "ug_message": "",
            "ug_show_message": False,
            "ug_output_root": str(self.options.output_dir),
            "ug_save_folder": "",
            "ug_save_name": "case",
            "ug_confirm_files": [],
            "ug_confirm_overwrite": False,
            "ug_saved_files": [],
            "ug_downloads": [],  # [{kind, label, name}]: what the last Save wrote that the page offers (see send_download)
            "ug_seconds": 0.0,
        })

    def _bind(self):
        self.state.change("ug_frame")(self._on_frame_changed)
        ctrl = self.server.controller
        # Long jobs run as tasks: a handler the client awaits would hold back its next
        # message (the Cancel click) until the job ends.
        ctrl.ug_load_phantom = self._in_background(self.load_phantom)
        ctrl.ug_load_server_path = self._in_background(self.load_server_path)
        ctrl.ug_run = self._in_background(self.run)
        ctrl.ug_cancel = self.cancel
        ctrl.ug_toggle_play = self.toggle_play
        ctrl.ug_save = self.save
        ctrl.ug_confirm_save = self.confirm_save
        self.slicer_app.segmentation_editor.segmentation_modified.connect(self._on_segmentation_modified)
        if self.undo_stack is not None:
            self.undo_stack.index_changed.connect(self._on_segmentation_modified)

    def touch(self) -> None:
        """A user action: the session is not idle."""
        self.last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        if self.state.ug_running or self.state.ug_busy:
            self.touch()
        return time.monotonic() - self.last_activity

    def _in_background(self, coroutine_function):
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

    # ------------------------------------------------------------------ input
    def _clear(self) -> None:
        """Remove the current input and every result made from it."""
        self.stop_play()
        editor = self.slicer_app.segmentation_editor
        editor.deactivate_effect()
        editor.clear()
        for view in self.views:
            view.set_background_volume_id(None)
        self._observe_segmentation(None)
        for result in self.results:
            remove_nodes(result.nodes)
        self.results, self.result = [], None
        if self.input is not None:
            loading.remove_image(self.input)
        self.input = None
        self.state.update({"ug_has_input": False, "ug_has_result": False, "ug_input_name": "", "ug_input_info": "",
                           "ug_summary": [], "ug_frame_rows": [], "ug_curve": "", "ug_warnings": [],
                           "ug_segment_names": [], "ug_saved_files": [], "ug_downloads": [], "ug_edited": False,
                           "ug_has_translation": False, "ug_frame": 1, "ug_frame_shown": 1, "ug_n_frames": 1,
                           "ug_is_cine": False})

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
        self._link_views()
        for view in self.views:
            show_volume_plane(view, loaded.volume)
        dims = loaded.volume.GetImageData().GetDimensions()
        spacing = loaded.volume.GetSpacing()
        frames = f"{loaded.n_frames} frames x " if loaded.is_cine else ""
        info = (f"{frames}{dims[2]} slices of {dims[0]} x {dims[1]}, "
                f"{spacing[0]:.2f} x {spacing[1]:.2f} x {spacing[2]:.2f} mm")
        self.state.update({"ug_has_input": True, "ug_input_name": description, "ug_input_info": info,
                           "ug_is_cine": loaded.is_cine, "ug_n_frames": loaded.n_frames, "ug_frame": 1,
                           "ug_frame_shown": 1, "ug_right_title": "Translated (run Adapt & Segment)"})
        save_name = re.sub(r"[^A-Za-z0-9._-]+", "_", loaded.volume.GetName()).strip("._-") or "case"
        self.state.ug_save_name = save_name[:60]

    def _link_views(self) -> None:
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
            composite = self.scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
            composite.SetLinkedControl(True)
            composite.SetHotLinkedControl(True)

    async def _busy(self, text: str, job, *args):
        """Run a blocking read (no scene access) off the loop, with the page showing it is busy."""
        with self.state:
            self.state.ug_busy, self.state.ug_busy_text = True, text
        try:
            return await asyncio.get_running_loop().run_in_executor(None, job, *args)
        finally:
            with self.state:
                self.state.ug_busy, self.state.ug_busy_text = False, ""

    async def load_phantom(self):
        """A phantom cine (``unetgan.phantom``) of the configured vendor, generated on the server."""
        if self._locked():
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
                self._report(err, "could not make the phantom case")

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
        if self._locked():
            return
        try:
            if self.options.data_root is None:
                raise paths.PathRejected("reading server paths is off: the server was started without --data-root")
            path = paths.check_server_path(self.state.ug_server_path, self.options.data_root)
            await self.load_path(path, str(path))
        except Exception as err:  # noqa: BLE001
            with self.state:
                self._report(err, "could not load the path")

    async def receive_upload(self, request):
        """``POST /ug-upload?ticket=..&name=..``: the file streamed to this session's upload folder, the size cap
        enforced while receiving, then read (attached data only) and shown. Errors also reach the page."""
        from aiohttp import web

        headers = _same_host_cors(request)
        self.touch()
        if not hmac.compare_digest(str(request.query.get("ticket", "")).encode(), self.state.ug_upload_ticket.encode()):
            return web.json_response({"error": "this upload is not for this page"}, status=403, headers=headers)
        if self._locked():
            return web.json_response({"error": "busy"}, status=409, headers=headers)
        folder = None
        try:
            declared = request.content_length
            name = paths.check_upload(request.query.get("name", ""), declared, self.options.max_upload_bytes)
            folder = Path(tempfile.mkdtemp(dir=self.upload_dir))
            received = 0
            with open(folder / name, "wb") as out:
                async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                    received += len(chunk)
                    if received > declared:  # declared is within the cap (checked above)
                        raise paths.UploadRejected(f"{name!r} is larger than announced; the limit is "
                                                   f"{self.options.max_upload_bytes / 2**20:.0f} MB")
                    out.write(chunk)
            if received != declared:
                raise paths.UploadRejected(f"{name!r}: the upload is incomplete ({received} of {declared} bytes)")
            await self.load_path(folder / name, f"{name} (uploaded)", data_files=ATTACHED)
            return web.json_response({"loaded": name}, headers=headers)
        except Exception as err:  # noqa: BLE001
            with self.state:
                self._report(err, "could not load the upload")
            return web.json_response({"error": str(err)}, status=400, headers=headers)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _locked(self) -> bool:
        if self.state.ug_running or self.state.ug_busy:
            self.message("Wait for the current job to finish (or cancel it).")
            return True
        return False

    def _report(self, err: BaseException, context: str) -> None:
        if isinstance(err, (InputError, BackendError, paths.PathRejected, export.OutputExists, ValueError, OSError)):
            self.error(f"{context}: {err}")
        else:
            log.error("%s", "".join(traceback.format_exception(err)))
            self.error(f"{context}: unexpected error ({type(err).__name__}: {err})")

    # ------------------------------------------------------------------ run
    async def run(self):
        if self.input is None:
            self.error("Load a cine or volume first.")
            return
        if self._locked():
            return
        self.stop_play()
        volume = self.input.volume
        adapter = self.state.ug_adapter
        adapter = None if adapter in (None, "", NO_ADAPTER) else adapter
        model, device, tta = self.options.model, self.state.ug_device, self.state.ug_tta
        if self.result is not None:
            editing.commit_current_frame(self.result)
        editor = self.slicer_app.segmentation_editor
        editor.deactivate_effect()
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
                self._report(err, "Adapt & Segment failed")
        finally:
            for view, was in zip(self.views, blocked):
                view.set_render_blocked(was)
            with self.state:
                self.state.ug_running = False
        if result is not None:
            with self.state:
                self._show_result(result)

    def _on_progress(self, done: int, total: int, stage: str) -> None:
        with self.state:
            self.state.ug_progress_done, self.state.ug_progress_total = int(done), int(total)
            self.state.ug_progress_text = f"{done}/{total} frames" + ("" if stage in ("", "done") else f" ({stage})")

    def cancel(self):
        self.touch()
        if self.state.ug_running:
            self._cancel.set()
            self.state.ug_progress_text = "cancelling..."

    def _show_result(self, result) -> None:
        for previous in self.results:
            display = previous.segmentation.GetDisplayNode() if previous.segmentation is not None else None
            if display is not None:
                display.SetVisibility(False)
        self.results.append(result)
        self.result = result
        right = result.translated or result.input
        self.views[1].set_background_volume_id(right.GetID())
        self._link_views()
        display = result.segmentation.GetDisplayNode()
        if display is not None:
            display.SetVisibility(True)
            display.SetAllSegmentsVisibility(True)
        self.slicer_app.segmentation_editor.set_active_segmentation(result.segmentation, result.input)
        self._observe_segmentation(result.segmentation)
        if self.undo_stack is not None:
            self.undo_stack.clear()
        segmentation = result.segmentation.GetSegmentation()
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        self.state.update({
            "ug_has_result": True, "ug_has_translation": result.translated is not None,
            "ug_right_title": "Translated to the source look" if result.translated is not None
            else "No adapter: the image as it is",
            "ug_segment_names": names, "ug_warnings": list(result.warnings), "ug_edited": False,
            "ug_seconds": round(result.seconds, 1), "ug_saved_files": [], "ug_downloads": [],
        })
        self._refresh_tables()
        for view in self.views:
            view.schedule_render()
        self.message(f"Done in {result.seconds:.1f} s: {result.n_frames} frame(s) segmented.")

    # ------------------------------------------------------------------ tables and curve
    def _refresh_tables(self) -> None:
        result = self.result
        if result is None:
            return
        summary = [{"name": r["Measurement"], "value": _number(r["Value"]), "unit": r["Unit"]}
                   for r in table_rows(result.table)]
        rows = table_rows(result.frames_table)
        frames = [{"frame": int(r["Frame"]), "blood": _number(r["Blood pool"]), "myo": _number(r["Myocardium"]),
                   "mass": _number(r["Myocardial mass"])} for r in rows]
        self.state.ug_summary = summary
        self.state.ug_frame_rows = frames
        self._refresh_curve()

    def _refresh_curve(self) -> None:
        result = self.result
        if result is None:
            self.state.ug_curve = ""
            return
        rows = table_rows(result.frames_table)
        measurements = result.measurements or {}
        ed, es = measurements.get("ed_frame"), measurements.get("es_frame")
        png = volume_curve_png([int(r["Frame"]) for r in rows], [float(r["Blood pool"]) for r in rows],
                               current=int(self.state.ug_frame) if self.input and self.input.is_cine else None,
                               ed=None if ed is None else ed + 1, es=None if es is None else es + 1,
                               edited=bool(self.state.ug_edited))
        self.state.ug_curve = as_data_url(png)

    def _observe_segmentation(self, node) -> None:
        """Edits (paint, erase, undo...) modify segments: observe them on the node itself."""
        import slicer

        for observed, tag in self._observed:
            observed.RemoveObserver(tag)
        self._observed = []
        if node is None:
            return
        for event in (slicer.vtkSegmentation.SegmentModified, slicer.vtkSegmentation.RepresentationModified,
                      slicer.vtkSegmentation.SegmentAdded, slicer.vtkSegmentation.SegmentRemoved):
            self._observed.append((node, node.AddObserver(event, self._on_segmentation_modified)))

    def _on_segmentation_modified(self, *_):
        """The segment editor changed the mask: recompute the measurements once edits settle."""
        if self.result is None or self._switching_frame or self.state.ug_running:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # only the loop's thread schedules work
        self.touch()
        if self._edit_task is None or self._edit_task.done():
            self._edit_task = asynchronous.create_task(self._apply_edits_soon())

    async def _apply_edits_soon(self):
        await asyncio.sleep(EDIT_SETTLE_S)
        with self.state:
            self.apply_edits()

    def apply_edits(self) -> bool:
        """Recompute from the segmentation now; True if any number changed (the tables are then marked edited)."""
        result = self.result
        if result is None or self.state.ug_running:
            return False
        before = [(f["blood_pool_ml"], f["myocardium_ml"]) for f in (result.measurements or {}).get("frames", [])]
        try:
            measurements = editing.apply_edits(result)
        except Exception as err:  # noqa: BLE001
            self._report(err, "could not update the measurements")
            return False
        after = [(f["blood_pool_ml"], f["myocardium_ml"]) for f in measurements["frames"]]
        changed = before != after
        if changed:
            self.state.ug_edited = True
        self._refresh_tables()
        return changed

    # ------------------------------------------------------------------ frames
    def _on_frame_changed(self, ug_frame=1, **_):
        self.touch()
        loaded = self.input
        if loaded is None or not loaded.is_cine or self.state.ug_running:
            return
        try:
            index = min(max(int(ug_frame) - 1, 0), loaded.n_frames - 1)
        except (TypeError, ValueError):
            return
        if index == loaded.browser.GetSelectedItemNumber():
            return
        self._switching_frame = True
        try:
            if self.result is not None:
                editing.commit_current_frame(self.result)
            loaded.browser.SetSelectedItemNumber(index)
        finally:
            self._switching_frame = False
        self.state.ug_frame_shown = index + 1
        if self.undo_stack is not None:
            self.undo_stack.clear()  # undo steps belong to the frame they were made on
        for view in self.views:
            view.schedule_render()
        if self.result is not None:
            self._refresh_curve()

    def toggle_play(self):
        self.touch()
        if self.state.ug_playing:
            self.stop_play()
        elif self.input is not None and self.input.is_cine and not self.state.ug_running:
            self.state.ug_playing = True
            self._play_task = asynchronous.create_task(self._play())

    def stop_play(self):
        self.state.ug_playing = False
        if self._play_task is not None and not self._play_task.done():
            self._play_task.cancel()
        self._play_task = None

    async def _play(self):
        while self.state.ug_playing and self.input is not None and self.input.is_cine:
            with self.state:
                self.state.ug_frame = int(self.state.ug_frame) % self.input.n_frames + 1
            await asyncio.sleep(1.0 / PLAY_FPS)

    # ------------------------------------------------------------------ save
    def _save_target(self):
        root = self.options.output_dir
        folder = paths.resolve_output_folder(root, self.state.ug_save_folder or "", create=True)
        base = paths.check_file_name(self.state.ug_save_name or "", "file name")
        export.check_base_name(base)
        for group in export.planned_files(self.result, folder, base).values():
            for path in group:
                paths.check_inside(path, root)
        return folder, base

    def save(self, overwrite: bool = False):
        self.touch()
        if self.result is None:
            self.error("Nothing to save yet: run Adapt & Segment first.")
            return
        try:
            self.apply_edits()  # the files hold the mask and numbers as they are now
            folder, base = self._save_target()
            existing = export.existing_files(self.result, folder, base)
            if existing and not overwrite:
                self.state.ug_confirm_files = [self._shown(p) for p in existing]
                self.state.ug_confirm_overwrite = True
                return
            files = export.save_result(self.result, folder, base, overwrite=overwrite,
                                       database=self.input.dicom_index if self.input is not None else None)
        except Exception as err:  # noqa: BLE001
            self._report(err, "could not save")
            return
        saved = [self._shown(p) for group in files.values() for p in group]
        self.state.ug_saved_files = saved
        self.downloads = {kind: files[group][0] for kind, (group, _) in DOWNLOADS.items() if group in files}
        self.state.ug_downloads = [{"kind": kind, "label": DOWNLOADS[kind][1], "name": path.name}
                                   for kind, path in self.downloads.items()]
        note = dicom_export.no_dicom_note(self.result.input)
        self.message(f"Saved {len(saved)} file(s) in {folder}" + (f". {note}" if note else ""))

    async def send_download(self, request):
        """``GET /ug-download?ticket=..&file=pdf|seg``: the report or the DICOM SEG the last Save wrote, as a download
        (only those: the name comes from the server's own record of the Save, never from the request)."""
        from aiohttp import web

        headers = _same_host_cors(request)
        self.touch()
        if not hmac.compare_digest(str(request.query.get("ticket", "")).encode(), self.state.ug_upload_ticket.encode()):
            return web.json_response({"error": "this download is not for this page"}, status=403, headers=headers)
        path = self.downloads.get(str(request.query.get("file", "")))
        if path is None or not path.is_file():
            return web.json_response({"error": "not saved (yet): press Save first"}, status=404, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.FileResponse(path, headers=headers)

    def confirm_save(self):
        self.state.ug_confirm_overwrite = False
        self.save(overwrite=True)

    def _shown(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(Path(self.options.output_dir).resolve()))
        except ValueError:
            return str(path)
