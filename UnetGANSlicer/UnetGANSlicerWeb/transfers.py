"""The session's two HTTP routes besides trame's websocket: uploads in, the saved report and SEG out.

Both answer only the page that holds this session's ticket (``ug_upload_ticket``,
random per process). The page may come from the launcher, on another port of the
same host: the answers carry CORS headers for that origin, and the page fetches
them with ``fetch`` (a download becomes a blob saved by the browser, so the tab
never navigates away, which would end the session).
"""
from __future__ import annotations

import hmac
import secrets
import shutil
import tempfile
from pathlib import Path

from unetgan.io.safety import ATTACHED

from . import paths

UPLOAD_CHUNK = 1 << 20


def same_host_cors(request) -> dict:
    """Headers that let the page (served by the launcher on another port of the same host) read the answer."""
    from urllib.parse import urlsplit

    origin = request.headers.get("Origin", "")
    if origin and urlsplit(origin).hostname == request.url.host:
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    return {}


class Transfers:
    def __init__(self, page):
        self.page = page
        self.state = page.state
        self.options = page.options
        # uploads of this session only, streamed to disk; removed when the process ends
        self.upload_dir = Path(tempfile.mkdtemp(prefix="unetgan-web-uploads-"))

    def state_defaults(self) -> dict:
        return {"ug_upload_ticket": secrets.token_urlsafe(24),  # the routes answer this page only
                "ug_upload_port": int(self.options.port),
                "ug_max_upload_bytes": int(self.options.max_upload_bytes),
                "ug_upload_suffixes": list(paths.UPLOAD_SUFFIXES),
                "ug_uploading": ""}  # set by the page while it sends a file

    def _ticket_ok(self, request) -> bool:
        given = str(request.query.get("ticket", "")).encode()
        return hmac.compare_digest(given, self.state.ug_upload_ticket.encode())

    async def receive_upload(self, request):
        """``POST /ug-upload?ticket=..&name=..``: the file streamed to this session's upload folder, the size cap
        enforced while receiving, then read (attached data only) and shown. Errors also reach the page."""
        from aiohttp import web

        page = self.page
        headers = same_host_cors(request)
        page.touch()
        if not self._ticket_ok(request):
            return web.json_response({"error": "this upload is not for this page"}, status=403, headers=headers)
        if page.locked():
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
            await page.load_path(folder / name, f"{name} (uploaded)", data_files=ATTACHED)
            return web.json_response({"loaded": name}, headers=headers)
        except Exception as err:  # noqa: BLE001
            with self.state:
                page.report(err, "could not load the upload")
            return web.json_response({"error": str(err)}, status=400, headers=headers)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    async def send_download(self, request):
        """``GET /ug-download?ticket=..&file=pdf|seg``: the report or the DICOM SEG the last Save wrote (only
        those: the name comes from the server's own record of the Save, never from the request)."""
        from aiohttp import web

        headers = same_host_cors(request)
        self.page.touch()
        if not self._ticket_ok(request):
            return web.json_response({"error": "this download is not for this page"}, status=403, headers=headers)
        path = self.page.saving.downloads.get(str(request.query.get("file", "")))
        if path is None or not path.is_file():
            return web.json_response({"error": "not saved (yet): press Save first"}, status=404, headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.FileResponse(path, headers=headers)

    def remove_uploads(self) -> None:
        shutil.rmtree(self.upload_dir, ignore_errors=True)
