"""`unetgan phantom`: write a multi-vendor phantom dataset (images, labels, manifest.csv)."""
from __future__ import annotations

import argparse
import sys

from .subjects import HEART_KINDS
from .profiles import VENDORS
from .writer import FORMATS, write_dataset


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `phantom` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic multi-vendor cardiac cine dataset with exact labels",
        description="Simulate short-axis bSSFP cine studies of random subjects as scanned by each "
                    "vendor's protocol, and write them with their labels and a manifest.csv.",
    )
    parser.add_argument("--vendor", action="append", metavar="NAME",
                        help=f"vendor to simulate: {', '.join(VENDORS)}; repeat for several "
                             "(default: all three, unless --profile is given)")
    parser.add_argument("--profile", action="append", metavar="FILE",
                        help="scanner profile JSON (see docs/phantom.md); repeat for several")
    parser.add_argument("--subjects", type=int, default=1, metavar="N", help="subjects per vendor (default 1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("-o", "--output", dest="output_dir", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="nifti",
                        help="cine format: a 4D NIfTI, or a DICOM study (short-axis cine, localiser, long-axis cine) "
                             "with 4D NIfTI labels (default nifti)")
    parser.add_argument("--phases", type=int, metavar="T", help="cardiac phases (default: the profile's)")
    parser.add_argument("--slices", type=int, metavar="Z", help="slices (default: the profile's)")
    parser.add_argument("--matrix", type=int, metavar="N", help="larger recon matrix dimension (the other keeps the profile's aspect); same field of view")
    parser.add_argument("--dev-subjects", type=int, default=0, metavar="K",
                        help="mark the last K subjects of each non-source vendor dev_labelled (default 0)")
    parser.add_argument("--source-vendor", default="Philips", metavar="NAME",
                        help="vendor whose subjects are train_labelled (default Philips)")
    parser.add_argument("--heart", choices=HEART_KINDS, default="normal",
                        help="kind of heart: normal; dilated (end-diastolic volume 250-400 mL, thin walls, EF 15-35 %%); "
                             "hypertrophic (walls 15-30 mm, end-systolic cavity 10-30 mL, EF 70-85 %%); infarct (a "
                             "thinned, akinetic wall segment) (default normal)")
    parser.add_argument("--no-cine", dest="cine", action="store_false",
                        help="write only the ED/ES volumes and labels, not the whole cine")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the dataset; 0 on success, 1 with one `ERROR:` line on stderr otherwise."""
    sources = list(args.vendor or []) + list(args.profile or [])
    if not sources:
        sources = list(VENDORS)

    def progress(done: int, total: int, subject: str) -> None:
        print(f"PROGRESS {done} {total} {subject}", flush=True)

    try:
        manifest = write_dataset(
            args.output_dir, vendors=sources, subjects=args.subjects, seed=args.seed, fmt=args.fmt,
            n_phases=args.phases, n_slices=args.slices, matrix=args.matrix, source_vendor=args.source_vendor,
            dev_subjects=args.dev_subjects, cine=args.cine, progress=progress,
            heart=args.heart,
        )
    except (ValueError, OSError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print(f"wrote {manifest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: `python -m unetgan.phantom.cli phantom ...`."""
    parser = argparse.ArgumentParser(prog="unetgan")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
