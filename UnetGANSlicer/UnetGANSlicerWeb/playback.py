"""The cine's frame slider and play button: the frame shown is the sequence browser's."""
from __future__ import annotations

import asyncio

from trame_server.utils import asynchronous

from UnetGANSlicerLib import editing

PLAY_FPS = 6.0


class Playback:
    STATE = {"ug_frame": 1, "ug_frame_shown": 1, "ug_playing": False}

    def __init__(self, page, undo_stack=None):
        self.page = page
        self.state = page.state
        self.undo_stack = undo_stack
        self.switching = False  # the browser is changing frame: segmentation events are not edits
        self._task = None
        self.state.change("ug_frame")(self.on_frame_changed)

    def on_frame_changed(self, ug_frame=1, **_):
        page = self.page
        page.touch()
        loaded = page.input
        if loaded is None or not loaded.is_cine or self.state.ug_running:
            return
        try:
            index = min(max(int(ug_frame) - 1, 0), loaded.n_frames - 1)  # the slider counts from 1
        except (TypeError, ValueError):
            return
        if index == loaded.browser.GetSelectedItemNumber():
            return
        self.switching = True
        try:
            if page.result is not None:
                editing.commit_current_frame(page.result)
            loaded.browser.SetSelectedItemNumber(index)
        finally:
            self.switching = False
        self.state.ug_frame_shown = index + 1
        if self.undo_stack is not None:
            self.undo_stack.clear()  # undo steps belong to the frame they were made on
        for view in page.views:
            view.schedule_render()
        if page.result is not None:
            page.tables.refresh_curve()

    def toggle(self):
        self.page.touch()
        loaded = self.page.input
        if self.state.ug_playing:
            self.stop()
        elif loaded is not None and loaded.is_cine and not self.state.ug_running:
            self.state.ug_playing = True
            self._task = asynchronous.create_task(self._play())

    def stop(self):
        self.state.ug_playing = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _play(self):
        while self.state.ug_playing and self.page.input is not None and self.page.input.is_cine:
            with self.state:
                self.state.ug_frame = int(self.state.ug_frame) % self.page.input.n_frames + 1
            await asyncio.sleep(1.0 / PLAY_FPS)
