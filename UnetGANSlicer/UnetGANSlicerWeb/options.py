"""Settings of one page server (the command line's options) and the page's fixed choices."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import paths

DEVICES = [{"title": "Automatic", "value": "auto"}, {"title": "CPU", "value": "cpu"},
           {"title": "GPU (CUDA)", "value": "cuda"}]
UPLOAD_PATH = "/ug-upload"
DOWNLOAD_PATH = "/ug-download"


@dataclass
class WebOptions:
    """Settings of one page server (the command line's options)."""

    host: str = "127.0.0.1"
    port: int = 8080
    output_dir: Path = field(default_factory=lambda: Path.cwd() / "unetgan-web-output")
    input: str | None = None
    model: str | None = None  # segmenter: registry name or file (None: the registry's default)
    adapter: str | None = None  # adapter offered first: registry name, target vendor or file (None: Automatic)
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
