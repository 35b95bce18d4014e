"""The page: a trame server with trame-slicer views and segment editor, wired to :mod:`.controller`.

Layout: left panel (input, Adapt & Segment, save), two linked slice views in the
middle (original | translated, segmentation over both) with the frame slider and
play button under them, then the measurements table and the per-frame
blood-pool volume curve; the segment editor (trame-slicer's: paint, erase,
scissors, draw, smoothing, islands, threshold, undo/redo) on the right.
"""
from __future__ import annotations

import asyncio
import logging
import sys

import slicer
from trame.app import get_server
from trame.ui.vuetify3 import VAppLayout
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3
from trame_slicer import module as trame_slicer_module
from trame_slicer.app.logic import SegmentEditorLogic
from trame_slicer.app.ui import SegmentEditorUI
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from UnetGANSlicerLib import context
from unetgan.io.safety import BESIDE

from .controller import WorkflowController
from .edits import BRUSH_DIAMETER_MM, start_with_2d_brush
from .options import DOWNLOAD_PATH, UPLOAD_PATH, WebOptions
from .launcher import READY_LINE
from .views import make_slice_gutter, show_volume_plane

log = logging.getLogger("unetgan.web")

LAYOUT_ID = "unetgan-side-by-side"
ORIGINAL_VIEW, TRANSLATED_VIEW = "Original", "Translated"
TITLE = "UnetGANSlicer: Adapt & Segment"

_UPLOAD_JS = """
const files = $event && $event.target ? $event.target.files : null;
if (!files || files.length === 0) { return; }
const file = files[0];
const lower = file.name.toLowerCase();
if (!ug_upload_suffixes.some((s) => lower.endsWith(s) && lower.length > s.length)) {
  ug_error = `${file.name}: not an accepted image type (${ug_upload_suffixes.join(', ')}); for DICOM give the folder's path on the server`;
  ug_show_error = true; $event.target.value = ''; return;
}
if (file.size > ug_max_upload_bytes) {
  ug_error = `${file.name} is ${Math.round(file.size / 1048576)} MB; the limit is ${Math.round(ug_max_upload_bytes / 1048576)} MB`;
  ug_show_error = true; $event.target.value = ''; return;
}
ug_uploading = `Uploading ${file.name}...`;
// streamed to this session's process (its port: the page may come from the launcher's); no preflight: text/plain.
// Vue templates see no globals such as window or fetch: reach them through the element's document.
const win = $event.target.ownerDocument.defaultView;
const url = `${win.location.protocol}//${win.location.hostname}:${ug_upload_port}/ug-upload` +
  `?ticket=${encodeURIComponent(ug_upload_ticket)}&name=${encodeURIComponent(file.name)}`;
win.fetch(url, { method: 'POST', body: file, credentials: 'include', headers: { 'Content-Type': 'text/plain' } })
  .catch((e) => { ug_error = `${file.name}: the upload failed (${e})`; ug_show_error = true; })
  .finally(() => { ug_uploading = ''; $event.target.value = ''; });
"""

# the report or SEG the last Save wrote, fetched from this session's process (as the upload, its port) and saved
# by the browser from a blob: the tab never navigates (a navigation away, even to a download, ends the session)
_DOWNLOAD_JS = """
const win = $event.target.ownerDocument.defaultView;
const url = `${win.location.protocol}//${win.location.hostname}:${ug_upload_port}/ug-download` +
  `?ticket=${encodeURIComponent(ug_upload_ticket)}&file=${encodeURIComponent(d.kind)}`;
win.fetch(url, { credentials: 'include' })
  .then((r) => (r.ok ? r.blob() : r.json().then((j) => Promise.reject(j.error || r.statusText))))
  .then((blob) => win.trame.utils.download(d.name, blob, blob.type))
  .catch((e) => { ug_error = `${d.name}: the download failed (${e})`; ug_show_error = true; });
"""

# Leaving (closing, reloading, navigating) with edits not saved asks first. trame's client closes its session in its
# own beforeunload handler (registered first, so it runs first), and staying would find the session gone. While edits
# are unsaved, that close waits for the page to be really left (pagehide). The client's objects are frozen, so the
# page's trame.client becomes a copy whose session's close is the waiting one (every other method is the client's).
_GUARD_UNSAVED_JS = """
(function guardUnsavedEdits() {
  const trame = window.trame;
  const client = trame && trame.client;
  const connection = client && client.getConnection && client.getConnection();
  const session = connection && connection.getSession();
  if (!session) { setTimeout(guardUnsavedEdits, 500); return; }
  if (client.ugGuarded) { return; }
  const unsaved = () => !!trame.state.get('ug_unsaved_edits');
  const guardedSession = { ...session, close: (...args) => {
    if (!unsaved()) { return session.close(...args); }
    window.addEventListener('pagehide', () => session.close(...args), { once: true });
    return Promise.resolve();
  } };
  const guardedConnection = { ...connection, getSession: () => guardedSession };
  trame.client = { ...client, getConnection: () => guardedConnection, ugGuarded: true };
  window.addEventListener('beforeunload', (event) => {
    if (unsaved()) { event.preventDefault(); event.returnValue = ''; }
  });
})();
"""


def _setup_slicer(slicer_app: SlicerApp) -> None:
    """The sequences logic trame-slicer lacks, and the module logics published for the MRML layer."""
    sequences = slicer_app.register_module_logic(slicer.vtkSlicerSequencesLogic(), logic_name="Sequences")
    slicer_app.sequences_logic = sequences
    slicer.mrmlScene = slicer_app.scene
    context.publish_logics(volumes=slicer_app.volumes_logic, segmentations=slicer_app.segmentations_logic,
                           sequences=sequences)


class WebApp:
    """One page server. ``WebApp(options).start()`` blocks until the server stops."""

    def __init__(self, options: WebOptions | None = None, server=None):
        self.options = options or WebOptions()
        self.server = get_server(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state = self.server.state
        self.state.trame__title = TITLE

        self.slicer_app = SlicerApp()
        _setup_slicer(self.slicer_app)
        register_rca_factories(self.slicer_app.view_manager, self.server,
                               slice_view_ui_f=make_slice_gutter(self._reset_view))
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout(LAYOUT_ID, Layout(LayoutDirection.Horizontal, [
            ViewLayoutDefinition.slice_view("Axial", label=ORIGINAL_VIEW, color="#F34A33"),
            ViewLayoutDefinition.slice_view("Axial", label=TRANSLATED_VIEW, color="#EFD64D"),
        ]))
        self.layout_manager.set_layout(LAYOUT_ID)
        view_manager = self.slicer_app.view_manager
        self.views = (view_manager.get_view(ORIGINAL_VIEW), view_manager.get_view(TRANSLATED_VIEW))

        self.editor_logic = SegmentEditorLogic(self.server, self.slicer_app)
        self.controller = WorkflowController(self.server, self.slicer_app, self.options, self.views,
                                             undo_stack=self.slicer_app.segmentation_editor.undo_stack)
        self._build_ui()
        self.editor_logic.set_ui(self.editor_ui)
        start_with_2d_brush(self.state)
        self.server.controller.on_server_bind.add(self._bind_http)
        self.server.controller.on_server_ready.add(self._on_ready)
        self.server.controller.on_server_exited.add(
            lambda **_: self.controller.transfers.remove_uploads())
        if self.options.input:  # trame calls on_server_ready without awaiting: start a task
            start = self.controller.in_background(self._load_initial_input)
            self.server.controller.on_server_ready.add(lambda **_: start())

    def _reset_view(self, view) -> None:
        loaded = self.controller.input
        if loaded is not None:
            show_volume_plane(view, loaded.volume)
        else:
            view.reset_view()

    async def _load_initial_input(self):
        from pathlib import Path

        from . import paths

        try:
            path = paths.check_server_path(str(Path(self.options.input).expanduser().resolve()))
            await self.controller.load_path(path, str(path), data_files=BESIDE)  # the operator's own file
        except Exception as err:  # noqa: BLE001 - shown in the page
            with self.state:
                self.controller.report(err, f"could not load {self.options.input}")

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        with VAppLayout(self.server, full_height=True, theme="dark") as self.ui:
            client.Style(
                "html { overflow-y: hidden; } .ug-panel .v-card { margin-bottom: 8px; } "
                ".ug-table td, .ug-table th { padding: 0 6px !important; height: 24px !important; font-size: 12px; } "
                ".ug-views { position: relative; display: flex; flex: 1 1 auto; min-height: 0; } "
                ".ug-overlay { position: absolute; inset: 0; z-index: 5; background: rgba(0,0,0,0.35); "
                "display: flex; align-items: center; justify-content: center; }"
            )
            client.Script(_GUARD_UNSAVED_JS)
            with v3.VAppBar(density="compact", elevation=1):
                v3.VToolbarTitle(TITLE)
                v3.VSpacer()
                v3.VProgressCircular(v_show=("ug_busy || ug_running || ug_uploading",), indeterminate=True,
                                     size=20, width=2, classes="mr-2")
                html.Span("{{ ug_uploading || ug_busy_text }}", classes="text-caption mr-4")
            self._left_panel()
            self._right_panel()
            with v3.VMain(), html.Div(classes="d-flex flex-column", style="height: calc(100vh - 48px);"):
                self._views()
                self._frame_bar()
                self._results()
            self._feedback()

    def _left_panel(self) -> None:
        with v3.VNavigationDrawer(location="left", width=370, permanent=True, classes="ug-panel pa-2"):
            with v3.VCard(title="1. Input", variant="tonal", density="compact"):
                with v3.VCardText():
                    v3.VBtn("Phantom case", id="ug-phantom", prepend_icon="mdi-heart-pulse", block=True,
                            click=self.server.controller.ug_load_phantom, disabled=("ug_busy || ug_running",),
                            classes="mb-2")
                    v3.VFileInput(
                        label="Upload .nii / .nii.gz / .nrrd / .mha", id="ug-upload", density="compact",
                        accept=".nii,.nii.gz,.nrrd,.mha,.gz", prepend_icon="mdi-upload", hide_details=True,
                        disabled=("ug_busy || ug_running || !!ug_uploading",), change=_UPLOAD_JS, classes="mb-2",
                    )
                    with html.Div(classes="d-flex align-center", v_if=("ug_server_paths",)):
                        v3.VTextField(v_model=("ug_server_path",), label="DICOM folder or image on the server",
                                      id="ug-server-path", density="compact", hide_details=True,
                                      disabled=("ug_busy || ug_running",))
                        v3.VBtn("Load", click=self.server.controller.ug_load_server_path, variant="tonal",
                                classes="ml-2", disabled=("ug_busy || ug_running || !ug_server_path",))
                    with html.Div(v_if=("ug_has_input",), classes="mt-2 text-body-2", id="ug-input-name"):
                        html.Div("{{ ug_input_name }}", classes="font-weight-bold")
                        html.Div("{{ ug_input_info }}", classes="text-caption")
            with v3.VCard(title="2. Adapt & Segment", variant="tonal", density="compact"):
                with v3.VCardText():
                    v3.VSelect(v_model=("ug_adapter",), items=("ug_adapters",), label="Adapter (scanner vendor)",
                               density="compact", hide_details=True, classes="mb-1", id="ug-adapter",
                               disabled=("ug_running",))
                    html.Div("{{ ug_adapter_note }}", v_if=("ug_adapter === 'auto' && ug_adapter_note",),
                             classes="text-caption mb-2", id="ug-adapter-note")
                    v3.VSelect(v_model=("ug_device",), items=("ug_devices",), label="Device", density="compact",
                               hide_details=True, classes="mb-2", disabled=("ug_running",))
                    v3.VSelect(v_model=("ug_tta",), items=("ug_ttas",), label="Averaging over mirrored copies",
                               density="compact", persistent_hint=True, classes="mb-2", id="ug-tta",
                               hint="The segmenter also reads mirrored copies of the image and averages its masks: "
                                    "slower; one pass (the default) is usually as good.",
                               disabled=("ug_running",))
                    with html.Div(classes="d-flex"):
                        v3.VBtn("Adapt & Segment", id="ug-run", color="primary", prepend_icon="mdi-play",
                                click=self.server.controller.ug_run,
                                disabled=("!ug_has_input || ug_running || ug_busy",), classes="flex-grow-1")
                        v3.VBtn("Cancel", id="ug-cancel", color="error", variant="tonal", classes="ml-2",
                                click=self.server.controller.ug_cancel, v_show=("ug_running",))
                    with html.Div(v_show=("ug_running",), classes="mt-2"):
                        v3.VProgressLinear(
                            model_value=("ug_progress_total ? 100 * ug_progress_done / ug_progress_total : 0",),
                            height=8, color="primary", striped=True)
                        html.Div("{{ ug_progress_text }}", classes="text-caption", id="ug-progress")
                    html.Div("Segments: {{ ug_segment_names.join(', ') }} ({{ ug_seconds }} s)",
                             v_if=("ug_has_result",), classes="text-caption mt-2", id="ug-segments")
            with v3.VCard(title="3. Save", variant="tonal", density="compact"):
                with v3.VCardText():
                    html.Div("Into {{ ug_output_root }}", classes="text-caption mb-1")
                    v3.VTextField(v_model=("ug_save_folder",), label="Sub-folder (optional)", density="compact",
                                  hide_details=True, classes="mb-2", id="ug-save-folder")
                    v3.VTextField(v_model=("ug_save_name",), label="File name", density="compact",
                                  hide_details=True, classes="mb-2", id="ug-save-name")
                    v3.VBtn("Save", id="ug-save", prepend_icon="mdi-content-save", block=True,
                            click=self.server.controller.ug_save, disabled=("!ug_has_result || ug_running",))
                    with html.Div(v_if=("ug_saved_files.length",), classes="text-caption mt-2", id="ug-saved"):
                        html.Div("{{ f }}", v_for="f in ug_saved_files", key="f")
                    v3.VBtn("{{ d.label }}", v_for="d in ug_downloads", key="d.kind", id=("`ug-download-${d.kind}`",),
                            prepend_icon="mdi-download", block=True, variant="tonal", classes="mt-2",
                            click=_DOWNLOAD_JS)
            v3.VAlert(v_if=("ug_error",), type="error", density="compact", variant="tonal", closable=True,
                      text=("ug_error",), classes="mb-2", id="ug-error-alert", click_close="ug_error = ''")

    def _right_panel(self) -> None:
        with v3.VNavigationDrawer(location="right", width=330, permanent=True):
            with html.Div(classes="d-flex align-center pa-2"):
                html.Span("Segment editor", classes="text-subtitle-1 flex-grow-1")
                html.Span("edited: frame {{ ug_edited_frames.join(', ') }}", v_if=("ug_edited",),
                          classes="text-caption text-warning mr-2", id="ug-edited")
            html.Div(f"Paint and Erase start with a {BRUSH_DIAMETER_MM} mm brush on the slice shown; the sphere "
                     "button paints neighbouring slices too.", classes="text-caption px-2", id="ug-brush-hint")
            with html.Div(classes="d-flex justify-center"):
                self.undo_redo = html.Div(classes="d-flex")
            with html.Div(style="height: calc(100% - 90px);", id="ug-segment-editor"):
                self.editor_ui = SegmentEditorUI()
            with self.undo_redo:
                self.editor_ui.build_undo_redo_buttons()

    def _views(self) -> None:
        with v3.VAlert(v_if=("ug_warnings.length",), type="warning", density="compact", variant="tonal",
                       title=("`Check the result (${ug_warnings.length} "
                              "warning${ug_warnings.length > 1 ? 's' : ''})`",),
                       id="ug-warnings", classes="ma-2", style="flex: 0 0 auto;"):
            with html.Div(style="max-height: 16vh; overflow-y: auto;"):
                html.Div("{{ w }}", v_for="w in ug_warnings", key="w", classes="text-caption")
        with html.Div(classes="d-flex text-caption px-2", style="flex: 0 0 auto;"):
            html.Div("Original", classes="flex-grow-1 text-center", style="flex-basis: 0;")
            html.Div("{{ ug_right_title }}", classes="flex-grow-1 text-center", style="flex-basis: 0;",
                     id="ug-right-title")
        with html.Div(classes="ug-views", id="ug-views"):
            self.layout_manager.initialize_layout_grid(self.ui)
            with html.Div(v_if=("ug_running || ug_busy",), classes="ug-overlay"):
                html.Div("{{ ug_running ? ug_progress_text : ug_busy_text }}", classes="text-h6")

    def _frame_bar(self) -> None:
        with html.Div(v_show=("ug_is_cine",), classes="d-flex align-center px-4", style="flex: 0 0 auto;",
                      id="ug-frame-bar"):
            v3.VBtn(icon=("ug_playing ? 'mdi-pause' : 'mdi-play'",), size="small", variant="tonal",
                    click=self.server.controller.ug_toggle_play, disabled=("ug_running || ug_busy",),
                    id="ug-play")
            v3.VSlider(v_model=("ug_frame",), min=1, max=("ug_n_frames",), step=1, hide_details=True,
                       classes="mx-4", disabled=("ug_running || ug_busy",), id="ug-frame-slider")
            html.Span("frame {{ ug_frame }} / {{ ug_n_frames }}", classes="text-caption", style="min-width: 90px;",
                      id="ug-frame-label")

    def _results(self) -> None:
        with html.Div(v_show=("ug_has_result",), classes="d-flex px-2 pb-2", style="flex: 0 0 240px; gap: 8px;",
                      id="ug-results"):
            with v3.VCard(variant="tonal", style="flex: 1 1 0; overflow-y: auto;", title="Measurements",
                          density="compact"):
                with v3.VTable(density="compact", classes="ug-table", id="ug-summary"):
                    with html.Tbody():
                        with html.Tr(v_for="row in ug_summary", key="row.name"):
                            html.Td("{{ row.name }}")
                            html.Td("{{ row.value }}", classes="text-right")
                            html.Td("{{ row.unit }}")
            with v3.VCard(variant="tonal", style="flex: 1.3 1 0; overflow: auto;", title="Per frame",
                          density="compact"):
                with v3.VTable(density="compact", classes="ug-table", id="ug-frames"):
                    with html.Thead(), html.Tr():
                        html.Th("Frame")
                        html.Th("Blood pool mL")
                        html.Th("Myocard. mL")
                        html.Th("Mass g")
                    with html.Tbody():
                        with html.Tr(v_for="row in ug_frame_rows", key="row.frame",
                                     classes=("row.frame === ug_frame ? 'bg-primary' : ''",)):
                            html.Td("{{ row.frame }}")
                            html.Td("{{ row.blood }}", classes="ug-blood")
                            html.Td("{{ row.myo }}")
                            html.Td("{{ row.mass }}")
            with v3.VCard(variant="tonal", style="flex: 0 0 400px;", density="compact"):
                html.Img(src=("ug_curve",), v_if=("ug_curve",), style="width: 100%; height: auto;", id="ug-curve",
                         alt="blood-pool volume per frame")

    def _feedback(self) -> None:
        with v3.VSnackbar(v_model=("ug_show_error",), color="error", timeout=-1, multi_line=True,
                          location="top", id="ug-error"):
            html.Div("{{ ug_error }}")
            with v3.Template(v_slot_actions=True):
                v3.VBtn("Close", variant="text", click="ug_show_error = false")
        v3.VSnackbar(v_model=("ug_show_message",), text=("ug_message",), timeout=4000, location="bottom",
                     id="ug-message")
        with v3.VDialog(v_model=("ug_confirm_overwrite",), max_width=520), v3.VCard(title="Overwrite files?"):
            with v3.VCardText():
                html.Div("These files exist already and would be replaced:")
                html.Div("{{ f }}", v_for="f in ug_confirm_files", key="f", classes="text-caption")
            with v3.VCardActions():
                v3.VSpacer()
                v3.VBtn("Keep them", click="ug_confirm_overwrite = false", id="ug-keep")
                v3.VBtn("Overwrite", color="error", click=self.server.controller.ug_confirm_save, id="ug-overwrite")

    # ------------------------------------------------------------------ serving
    def _bind_http(self, wslink_server) -> None:
        """Before the server starts: sign-in on every request, and the streamed upload route."""
        if self.options.sign_in is not None:
            self.options.sign_in.protect(wslink_server.app)
        wslink_server.app.router.add_post(UPLOAD_PATH, self.controller.transfers.receive_upload)
        wslink_server.app.router.add_get(DOWNLOAD_PATH, self.controller.transfers.send_download)

    def _on_ready(self, **_) -> None:
        with self.state:
            self.state.ug_upload_port = int(self.server.port)
        if self.options.session_id:
            print(READY_LINE, flush=True)  # the launcher waits for this line
            if self.options.idle_minutes > 0:  # counted from now: the start itself may take a minute
                self.controller.in_background(self._end_when_idle)()

    async def _end_when_idle(self) -> None:
        """A session process ends after ``idle_minutes`` without a user action (never during a job)."""
        limit_s = self.options.idle_minutes * 60
        while self.controller.idle_seconds() < limit_s:
            await asyncio.sleep(max(1.0, min(30.0, limit_s / 4)))
        log.info("session idle for %.0f min: ending it", self.options.idle_minutes)
        await self.server.stop()

    def start(self, **kwargs):
        """Serve (blocking). trame would otherwise also parse ``sys.argv``: it gets only our settings (and the
        session's websocket secret from the launcher)."""
        saved = sys.argv
        sys.argv = [saved[0]] + (["--authKey", self.options.auth_key] if self.options.auth_key else [])
        try:
            return self.server.start(host=self.options.host, port=self.options.port, open_browser=False,
                                     timeout=self.options.closed_grace_s, show_connection_info=False, **kwargs)
        finally:
            sys.argv = saved
