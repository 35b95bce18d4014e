"""Security helpers of the web page: what may be uploaded, read and written, and where.

The page runs with the server user's rights and may be reachable by others (when
bound to another address than 127.0.0.1), so every name that comes from the
browser is checked here, in one place, without trusting the client:

- uploads: a plain file name (no folders), an allowed image type
  (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``), at most ``max_bytes``;
- output: a sub-folder of the configured output folder given as a relative path
  without ``..``; after resolving symbolic links it must still be inside the
  output folder (so a link pointing out is refused); file names are plain names;
- server paths (a DICOM folder or an image typed into the page): must exist and,
  when a data root is configured, resolve inside it.
"""
from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

UPLOAD_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
SERVER_FILE_SUFFIXES = UPLOAD_SUFFIXES + (".nhdr", ".mhd", ".dcm")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ ()+-]*$")
MAX_NAME_LENGTH = 120


class PathRejected(ValueError):
    """A name or path from the page is not allowed; the message says why (shown to the user)."""


class UploadRejected(PathRejected):
    """An upload of the wrong type or size."""


def _plain(text: str) -> str:
    if not isinstance(text, str):
        raise PathRejected("expected a text name")
    return unicodedata.normalize("NFC", text)


def check_file_name(name: str, what: str = "file name") -> str:
    """A single path component: letters, digits and ``. _ - ( ) +`` and spaces; not hidden, no separators."""
    name = _plain(name).strip()
    if not name:
        raise PathRejected(f"empty {what}")
    if len(name) > MAX_NAME_LENGTH:
        raise PathRejected(f"{what} longer than {MAX_NAME_LENGTH} characters")
    if "/" in name or "\\" in name or "\x00" in name:
        raise PathRejected(f"{what} {name!r} must not contain folder separators")
    if name in (".", "..") or ".." in name:
        raise PathRejected(f"{what} {name!r} must not contain '..'")
    if not _NAME.match(name):
        raise PathRejected(
            f"{what} {name!r} may only use letters, digits, spaces and . _ - ( ) +, "
            "and must start with a letter or digit"
        )
    return name


def upload_suffix(name: str) -> str:
    """The allowed image suffix of ``name`` (lower case), or '' if none."""
    lower = _plain(name).lower()
    for suffix in UPLOAD_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return suffix
    return ""


def check_upload(name: str, size: int | None, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """The upload's safe file name, or :class:`UploadRejected` (wrong type, too large, empty, odd name)."""
    if not isinstance(name, str) or not name.strip():
        raise UploadRejected("the upload has no file name")
    # browsers send a base name, but never trust that: keep the last component only
    base = PureWindowsPath(PurePosixPath(_plain(name)).name).name.strip()
    suffix = upload_suffix(base)
    if not suffix:
        raise UploadRejected(
            f"{base!r} is not an accepted image type: upload {', '.join(UPLOAD_SUFFIXES)} "
            "(for DICOM, give the folder's path on the server)"
        )
    if size is None or not isinstance(size, int) or size < 0:
        raise UploadRejected(f"{base!r}: unknown file size")
    if size == 0:
        raise UploadRejected(f"{base!r} is empty")
    if size > max_bytes:
        raise UploadRejected(f"{base!r} is {size / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    stem = base[: -len(suffix)]
    safe_stem = re.sub(r"[^A-Za-z0-9._()+-]+", "_", stem).strip("._") or "upload"
    return check_file_name(safe_stem[:MAX_NAME_LENGTH - len(suffix)] + suffix, "upload name")


def _relative_parts(relative: str) -> list[str]:
    text = _plain(relative or "").strip()
    if not text or text == ".":
        return []
    if "\x00" in text:
        raise PathRejected("the output sub-folder contains a NUL character")
    if text.startswith(("/", "\\", "~")) or PureWindowsPath(text).drive or PureWindowsPath(text).root:
        raise PathRejected(f"output sub-folder {text!r} must be relative to the output folder, not absolute")
    parts = [p for p in re.split(r"[\\/]+", text) if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PathRejected(f"output sub-folder {text!r} must not contain '..'")
    return [check_file_name(p, "folder name") for p in parts]


def resolve_output_folder(root: str | os.PathLike, relative: str = "", create: bool = False) -> Path:
    """``root / relative`` as a real path inside ``root``; ``..``, absolute paths and links out are refused.

    With ``create``, missing folders are made (after the checks, then checked again,
    so a link planted in between is caught).
    """
    root_real = Path(os.path.realpath(root))
    parts = _relative_parts(relative)
    target = root_real.joinpath(*parts)

    def inside(path: Path) -> Path:
        real = Path(os.path.realpath(path))
        if real != root_real and root_real not in real.parents:
            raise PathRejected(f"output sub-folder {relative!r} leads outside the output folder (a symbolic link?)")
        return real

    inside(target)
    if create:
        root_real.mkdir(parents=True, exist_ok=True)
        current = root_real
        for part in parts:
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                inside(current)
                if not current.is_dir():
                    raise PathRejected(f"{part!r} exists and is not a folder")
            current.mkdir(exist_ok=True)
            current = inside(current)
        return current
    return inside(target)


def check_inside(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` (a file to write) if its folder resolves inside ``root`` and it is not a symbolic link.

    Writers (MRML storage nodes) open the path and would write through a link, so a
    link in the output folder is refused, wherever it points.
    """
    path = Path(path)
    check_file_name(path.name)
    root_real = Path(os.path.realpath(root))
    folder_real = Path(os.path.realpath(path.parent))
    if folder_real != root_real and root_real not in folder_real.parents:
        raise PathRejected(f"{path.name!r} would be written outside the output folder")
    target = folder_real / path.name
    if target.is_symlink():
        raise PathRejected(f"{path.name!r} is a symbolic link in the output folder: remove it or choose another name")
    return target


def check_server_path(text: str, data_root: str | os.PathLike | None = None) -> Path:
    """A DICOM folder or image file on the server named in the page; must exist (and be inside ``data_root``)."""
    text = _plain(text or "").strip()
    if not text:
        raise PathRejected("give the path of a DICOM folder or an image file on the server")
    if "\x00" in text:
        raise PathRejected("the path contains a NUL character")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        raise PathRejected(f"{text!r}: give an absolute path on the server")
    real = Path(os.path.realpath(path))
    if data_root is not None:
        root = Path(os.path.realpath(data_root))
        if real != root and root not in real.parents:
            raise PathRejected(f"{text!r} is outside the data folder this server may read ({root})")
    if not real.exists():
        raise PathRejected(f"{text!r} does not exist on the server")
    if real.is_file():
        lower = real.name.lower()
        if not any(lower.endswith(s) for s in SERVER_FILE_SUFFIXES):
            raise PathRejected(
                f"{real.name!r} is not an image type this page reads ({', '.join(SERVER_FILE_SUFFIXES)})")
    elif not real.is_dir():
        raise PathRejected(f"{text!r} is neither a file nor a folder")
    return real


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def reachable_host(host: str) -> str:
    """The host to print in the page's link: a wildcard address (0.0.0.0, ::) is not one a browser can open, so
    it becomes this machine's address on the network (its outgoing interface), else its host name."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    import socket

    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    probe = ("2001:db8::1", 9) if family == socket.AF_INET6 else ("192.0.2.1", 9)  # documentation addresses
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(probe)  # a UDP "connect" sends nothing: it only picks the interface a packet would leave by
            address = sock.getsockname()[0]
        if not ipaddress.ip_address(address).is_loopback:
            return f"[{address}]" if family == socket.AF_INET6 else address
    except OSError:  # no network route: the name is all there is
        pass
    return socket.gethostname()


def exposure_warning(host: str) -> str | None:
    """The warning to print when the page is reachable from other machines, else None."""
    if is_loopback(host):
        return None
    return (
        f"WARNING: serving on {host}, not on 127.0.0.1: every signed-in user can upload images, run the models on "
        "this machine and save into the output folder (server paths only inside --data-root). The page is plain "
        "HTTP: the token or password crosses the network readable; put an HTTPS proxy in front or use an SSH tunnel."
    )
