"""`unetgan web`: serve the Adapt & Segment page (trame-slicer) on this machine.

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
from pathlib import Path

from .paths import MAX_UPLOAD_BYTES, exposure_warning

DEFAULT_PORT = 8080


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
    parser.set_defaults(func=run)
    return parser


def options_from_args(args: argparse.Namespace):
    from .controller import WebOptions

    output_dir = Path(args.output_dir).expanduser().resolve()
    return WebOptions(
        host=args.host, port=args.port, output_dir=output_dir, input=args.input, model=args.model,
        adapter=args.adapter, device=args.device,
        data_root=None if args.data_root is None else Path(args.data_root).expanduser().resolve(),
        max_upload_bytes=args.max_upload_mb * 2**20, phantom_vendor=args.phantom_vendor,
        phantom_seed=args.phantom_seed, phantom_phases=args.phantom_phases, phantom_slices=args.phantom_slices,
        phantom_matrix=args.phantom_matrix,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 0 on a clean stop, 1 with one `ERROR:` line when it cannot start."""
    if args.registry is not None:
        if not Path(args.registry).is_file():
            print(f"ERROR: model registry {args.registry} not found", file=sys.stderr)
            return 1
        os.environ["UNETGAN_REGISTRY"] = str(Path(args.registry).expanduser().resolve())
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # headless: no X server to try
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        options = options_from_args(args)
        options.output_dir.mkdir(parents=True, exist_ok=True)
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
    app = WebApp(options)
    print(f"UnetGANSlicer web page: http://{args.host}:{args.port}/ (output folder {options.output_dir})",
          flush=True)
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
