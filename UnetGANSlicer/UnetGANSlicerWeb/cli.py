"""`unetgan web`: serve the Adapt & Segment page (trame-slicer) on this machine.

By default wslink's launcher gives each browser session its own page process
(:mod:`.launcher`); ``--single-session`` serves one process whose scene every tab
shares. Beyond 127.0.0.1 a token or a password is required (:mod:`.auth`).

The lead's `unetgan/cli.py` adds it with::

    try:
        from UnetGANSlicerWeb import cli as web_cli
    except ImportError:  # trame-slicer not installed
        web_cli = None
    if web_cli is not None:
        web_cli.add_parser(sub)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import auth
from .paths import MAX_UPLOAD_BYTES, exposure_warning, is_loopback, reachable_host

DEFAULT_PORT = 8080
DEFAULT_SESSIONS = 4
DEFAULT_IDLE_MINUTES = 30


def _port_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        first, last = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST port numbers, got {text}") from None
    if not 0 < first <= last < 65536:
        raise argparse.ArgumentTypeError(f"expected 0 < FIRST <= LAST < 65536, got {text}")
    return first, last


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `web` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "web",
        help="serve the Adapt & Segment web page (trame-slicer) on 127.0.0.1",
        description="Serve a web page to load a cine MRI (file, upload, DICOM folder or phantom), translate it "
                    "to the source vendor's look, segment the LV, correct the mask, measure EDV/ESV/EF and save.",
    )
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="image (.nii.gz, .nrrd, .mha; 3D or 4D) or DICOM folder to open at start")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; any other exposes the page: see the warning)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--output-dir", type=Path, default=Path("unetgan-web-output"), metavar="DIR",
                        help="folder the page saves into (created if missing; default ./unetgan-web-output)")
    parser.add_argument("--model", metavar="NAME|FILE", help="LV-Unet: registry name or .safetensors file "
                        "(default: the one the adapter was trained with, else the registry's default)")
    parser.add_argument("--adapter", metavar="NAME|FILE",
                        help="adapter selected at start: registry name, target vendor or .safetensors file")
    parser.add_argument("--registry", type=Path, metavar="FILE",
                        help="models.json to use instead of the bundled one (sets UNETGAN_REGISTRY)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default device")
    parser.add_argument("--data-root", type=Path, metavar="DIR",
                        help="only read server paths typed into the page from inside DIR")
    parser.add_argument("--max-upload-mb", type=_positive_int, default=MAX_UPLOAD_BYTES // 2**20, metavar="MB",
                        help=f"largest upload accepted (default {MAX_UPLOAD_BYTES // 2**20} MB)")
    parser.add_argument("--phantom-vendor", default="Siemens", help="vendor of the 'Phantom case' (default Siemens)")
    parser.add_argument("--phantom-seed", type=int, default=0, help="seed of the 'Phantom case' (default 0)")
    parser.add_argument("--phantom-phases", type=_positive_int, metavar="T",
                        help="cardiac phases of the phantom (default: the vendor profile's)")
    parser.add_argument("--phantom-slices", type=_positive_int, metavar="Z",
                        help="slices of the phantom (default: the vendor profile's)")
    parser.add_argument("--phantom-matrix", type=_positive_int, metavar="N",
                        help="phantom recon matrix N x N (default: the profile's)")
    parser.add_argument("--token", nargs="?", const="auto", metavar="TOKEN",
                        help="require this token (alone: a random one, printed in the link); also $UNETGAN_WEB_TOKEN")
    parser.add_argument("--password-file", type=Path, metavar="FILE",
                        help="require the password on the first line of FILE (also $UNETGAN_WEB_PASSWORD)")
    parser.add_argument("--sessions", type=_positive_int, default=DEFAULT_SESSIONS, metavar="N",
                        help=f"browser sessions served at once, one process each (default {DEFAULT_SESSIONS})")
    parser.add_argument("--session-ports", type=_port_range, metavar="FIRST-LAST",
                        help="ports of the session processes (default: the N ports after --port)")
    parser.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_MINUTES, metavar="MIN",
                        help=f"end a session left idle this long (default {DEFAULT_IDLE_MINUTES}; 0: never)")
    parser.add_argument("--single-session", action="store_true",
                        help="one process and one scene shared by every tab (no launcher)")
    # set by the launcher for the session processes it starts; not for users
    parser.add_argument("--session-id", help=argparse.SUPPRESS)
    parser.add_argument("--authKey", help=argparse.SUPPRESS)
    parser.add_argument("--write-static-content", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)
    return parser


def options_from_args(args: argparse.Namespace, sign_in: auth.SignIn | None = None):
    from .options import WebOptions
    from .launcher import CLOSED_GRACE_S

    output_dir = Path(args.output_dir).expanduser().resolve()
    if args.session_id:  # a session of the launcher: its own output sub-folder
        output_dir = output_dir / f"session-{time.strftime('%Y%m%d-%H%M%S')}-{args.session_id[:8]}"
    return WebOptions(
        host=args.host, port=args.port, output_dir=output_dir, input=args.input, model=args.model,
        adapter=args.adapter, device=args.device,
        data_root=None if args.data_root is None else Path(args.data_root).expanduser().resolve(),
        max_upload_bytes=args.max_upload_mb * 2**20, phantom_vendor=args.phantom_vendor,
        phantom_seed=args.phantom_seed, phantom_phases=args.phantom_phases, phantom_slices=args.phantom_slices,
        phantom_matrix=args.phantom_matrix, sign_in=sign_in, session_id=args.session_id, auth_key=args.authKey,
        idle_minutes=args.idle_minutes, closed_grace_s=CLOSED_GRACE_S if args.session_id else 0,
    )


def session_arguments(args: argparse.Namespace) -> list[str]:
    """The page options every session process of the launcher gets (the launcher adds id, port and secret)."""
    values = {"--output-dir": Path(args.output_dir).expanduser().resolve(), "--model": args.model,
              "--adapter": args.adapter, "--device": args.device, "--data-root": args.data_root,
              "--max-upload-mb": args.max_upload_mb, "--phantom-vendor": args.phantom_vendor,
              "--phantom-seed": args.phantom_seed, "--phantom-phases": args.phantom_phases,
              "--phantom-slices": args.phantom_slices, "--phantom-matrix": args.phantom_matrix,
              "--idle-minutes": args.idle_minutes}
    arguments = [str(a) for flag, value in values.items() if value is not None for a in (flag, value)]
    return arguments + ([str(Path(args.input).expanduser().resolve())] if args.input else [])


def _sign_in(args: argparse.Namespace) -> auth.SignIn:
    if args.session_id:  # started by the launcher: the launcher's cookie, if it requires sign-in
        cookie = os.environ.get(auth.COOKIE_ENV)
        return auth.SignIn(cookie_secret=cookie, required=bool(cookie))
    return auth.SignIn.from_options(is_loopback(args.host), args.token, args.password_file)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop, 1 with one `ERROR:` line when it cannot start."""
    if args.registry is not None:
        if not Path(args.registry).is_file():
            print(f"ERROR: model registry {args.registry} not found", file=sys.stderr)
            return 1
        os.environ["UNETGAN_REGISTRY"] = str(Path(args.registry).expanduser().resolve())
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # headless: no X server to try
    try:
        sign_in = _sign_in(args)
    except auth.SignInError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    warning = exposure_warning(args.host)
    if warning and not args.session_id:
        print(warning, file=sys.stderr, flush=True)
    try:
        options = options_from_args(args, sign_in)
        # a session's own sub-folder appears with its first save (tabs that save nothing leave nothing)
        if not args.write_static_content:
            (options.output_dir.parent if args.session_id else options.output_dir).mkdir(parents=True, exist_ok=True)
        from .app import WebApp  # trame, VTK and MRML are imported only now
    except ImportError as err:
        print(f"ERROR: the web page needs trame-slicer: pip install 'trame-slicer[standalone]==2.0.0' ({err})",
              file=sys.stderr)
        return 1
    except OSError as err:
        print(f"ERROR: cannot use the output folder {args.output_dir}: {err}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("unetgan.web").setLevel(logging.INFO)

    def print_address():
        shown = f"http://{reachable_host(args.host)}:{args.port}/"
        print(f"UnetGANSlicer web page: {sign_in.link(shown)} (output folder {options.output_dir})", flush=True)

    if args.write_static_content:
        from .launcher import copy_static_content

        copy_static_content(WebApp(options).server, args.write_static_content)
        return 0
    if not args.single_session and not args.session_id:
        from .launcher import serve_sessions

        ports = args.session_ports or (args.port + 1, args.port + args.sessions)
        return serve_sessions(args.host, args.port, ports, sign_in, session_arguments(args), print_address)
    app = WebApp(options)
    if not args.session_id:
        print_address()
    try:
        app.start()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: `python -m UnetGANSlicerWeb [options] [INPUT]`."""
    parser = argparse.ArgumentParser(prog="unetgan")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "web":
        argv = ["web", *argv]
    args = parser.parse_args(argv)
    return args.func(args)
