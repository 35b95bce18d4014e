"""One page process per browser session, started by wslink's launcher (trame's documented multi-user deployment).

The launcher (wslink's ``LauncherResource``: its session and process managers)
serves the page's static files and, on each page load, starts
``python -m UnetGANSlicerWeb --session-id ID --port P --authKey SECRET ...``: a
process with its own MRML scene, its own backend runs, its own output
sub-folder and upload folder. The page's trame client asks the launcher
(``POST /paraview/``) for a session, then opens its websocket on that process's
port with the session's secret, which only that browser tab receives: a second
tab gets a second process. A session process ends when its tab has been closed
for :data:`CLOSED_GRACE_S` seconds or when it has been idle for ``--idle-minutes``;
the launcher then frees its port (memory goes back with the process).

What this module adds to wslink's launcher: the sign-in middleware (the
launcher's page, its endpoint and every session port), a cryptographic session
secret (wslink's default uses ``random``), a launch request the client cannot
extend (only the application name is read from it), a reaper that frees ended
sessions' ports, and the static content written once by a child process (the
launcher itself never imports VTK or MRML). Without a reverse proxy the browser
reaches each session's port directly, so the launcher's host must be reachable
on the session ports too (``--session-ports``).
"""
from __future__ import annotations

import asyncio
import html
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import auth

log = logging.getLogger("unetgan.web.launcher")

APPLICATION = "trame"  # what the trame client asks the launcher for
ENDPOINT = "/paraview/"  # the trame client's default session-manager address (document base + "paraview/")
READY_LINE = "UNETGAN SESSION READY"
CLOSED_GRACE_S = 30  # a reload reconnects within this; then the session ends
SESSION_START_S = 180  # first import of VTK, MRML and torch on a loaded machine
REAP_EVERY_S = 5.0


def write_static_content(folder: Path) -> None:
    """The page's static files (trame client plus every module the page enables), written by a child process."""
    done = subprocess.run([sys.executable, "-m", "UnetGANSlicerWeb", "--write-static-content", str(folder)],
                          capture_output=True, text=True, timeout=SESSION_START_S)
    if done.returncode != 0 or not (folder / "index.html").is_file():
        raise RuntimeError(f"could not write the page's static files: {(done.stderr or done.stdout).strip()[-500:]}")


def copy_static_content(server, folder: Path) -> None:
    """What trame serves for ``server`` (its client and its modules' folders) copied into ``folder``."""
    shutil.copytree(server._www, folder, dirs_exist_ok=True)
    for sub_path, source in server.serve.items():
        source = source[0] if isinstance(source, (list, tuple)) else source
        shutil.copytree(source, folder / sub_path, dirs_exist_ok=True)


def session_limit_message(sessions: int) -> str:
    """What a tab refused by the session limit is told (the page, and the session endpoint's error)."""
    return (f"This page did not open: all the sessions this server allows ({sessions}) are in use, one per open "
            "tab of this page. Nothing of yours was lost: other tabs keep their work. Close a tab of this page you "
            f"no longer need (its session ends about {CLOSED_GRACE_S} seconds later), or wait for an idle one to "
            "end, then reload this tab.")


def session_limit_page(sessions: int) -> str:
    """The HTML a refused tab gets instead of the page."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>UnetGANSlicer: no free session"
            "</title></head><body style=\"font-family: sans-serif; max-width: 40em; margin: 4em auto;\">"
            "<h1>No free session</h1>"
            f"<p>{html.escape(session_limit_message(sessions))}</p>"
            "<p><a href=\"./\">Try again</a></p></body></html>")


def launcher_config(host: str, port: int, session_ports: tuple[int, int], content: Path, workdir: Path,
                    session_command: list[str]) -> dict:
    """wslink's launcher configuration. ``USE_HOSTNAME`` is replaced by the trame client with the page's host."""
    return {
        "configuration": {
            "host": host, "port": port, "endpoint": ENDPOINT.strip("/"), "content": str(content),
            "proxy_file": str(workdir / "proxy-mapping.txt"), "sessionURL": "ws://USE_HOSTNAME:${port}/ws",
            "timeout": SESSION_START_S, "log_dir": str(workdir), "fields": [], "sanitize": {},
        },
        "resources": [{"host": host, "port_range": list(session_ports)}],
        "properties": {},
        "apps": {APPLICATION: {"cmd": [*session_command, "--session-id", "${id}", "--port", "${port}",
                                       "--authKey", "${secret}"],
                               "ready_line": READY_LINE}},
    }


def build_launcher_app(config: dict, sign_in: auth.SignIn):
    """The launcher's aiohttp application: sign-in, wslink's session endpoint, the static page."""
    from aiohttp import web
    from wslink.backends.aiohttp import _root_handler
    from wslink.backends.aiohttp.launcher import LauncherResource

    class SessionLauncher(LauncherResource):
        async def handle_post(self, request):
            # The client posts its URL's parameters too: none may reach the session's command line.
            try:
                await request.json()
            except ValueError:
                return web.json_response({"error": "expected a JSON launch request"}, status=400)
            payload = {"application": APPLICATION, "secret": secrets.token_urlsafe(24)}
            self.reap()
            session = self.session_manager.createSession(payload)
            if not session:
                return web.json_response({"error": session_limit_message(len(self.session_manager.sessions))},
                                         status=503)
            if not self.process_manager.startProcess(session):
                self.session_manager.deleteSession(session["id"])
                return web.json_response({"error": "the session process did not start"}, status=503)
            log.info("session %s started on port %s", session["id"], session["port"])
            return await self._waitForReady(session, request)

        def full(self) -> bool:
            """No port left for one more session (after freeing those of ended sessions)."""
            self.reap()
            return not any(host["available"] for host in self.session_manager.resources.resources.values())

        def reap(self) -> list[str]:
            """Free the ports of sessions whose process has ended (closed or idle tabs)."""
            ended = self.process_manager.listEndedProcess()
            for session_id in ended:
                self.session_manager.deleteSession(session_id)
                self.process_manager.stopProcess(session_id)
                log.info("session %s ended", session_id)
            return ended

        def stop_all(self) -> None:
            for session_id, process in list(self.process_manager.processes.items()):
                process.terminate()
            for process in list(self.process_manager.processes.values()):
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()

    launcher = SessionLauncher(None, config)
    app = web.Application()
    sign_in.protect(app)
    index = Path(config["configuration"]["content"]) / "index.html"

    async def page(_request):
        """The page, or, when every session is taken, a page saying so. (The trame client shows only "try/catch
        on connect()" when the launcher refuses it a session; this says what happened. A session taken between
        this answer and the client's request still gets the client's words.)"""
        fresh = {"Cache-Control": "no-store"}  # asked for at every load: a cached page would skip this check
        if launcher.full():
            return web.Response(text=session_limit_page(len(launcher.session_manager.sessions)), status=503,
                                content_type="text/html", headers=fresh)
        return web.FileResponse(index, headers=fresh)

    app.add_routes([web.post(ENDPOINT, launcher.handle_post), web.get("/", _root_handler),
                    web.get("/index.html", page), web.static("/", config["configuration"]["content"])])

    async def reaper(_app):
        async def loop():
            while True:
                await asyncio.sleep(REAP_EVERY_S)
                launcher.reap()

        task = asyncio.get_running_loop().create_task(loop())
        yield
        task.cancel()
        launcher.stop_all()

    app.cleanup_ctx.append(reaper)
    app["launcher"] = launcher
    return app


def hand_down_sign_in(sign_in: auth.SignIn, environ=os.environ) -> None:
    """Session processes inherit the launcher's cookie secret when it requires sign-in (in their environment,
    not on the command line that other users can list); without sign-in they must not ask for a cookie."""
    if sign_in.required:
        environ[auth.COOKIE_ENV] = sign_in.cookie_secret
    else:
        environ.pop(auth.COOKIE_ENV, None)


def serve_sessions(host: str, port: int, session_ports: tuple[int, int], sign_in: auth.SignIn,
                   session_arguments: list[str], print_address) -> int:
    """Run the launcher until interrupted. ``session_arguments``: the page options every session gets."""
    from aiohttp import web

    workdir = Path(tempfile.mkdtemp(prefix="unetgan-web-launcher-"))
    try:
        content = workdir / "www"
        write_static_content(content)
        hand_down_sign_in(sign_in)
        command = [sys.executable, "-m", "UnetGANSlicerWeb", *session_arguments, "--host", host]
        app = build_launcher_app(launcher_config(host, port, session_ports, content, workdir, command), sign_in)
        print_address()
        web.run_app(app, host=host, port=port, print=None, handle_signals=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
