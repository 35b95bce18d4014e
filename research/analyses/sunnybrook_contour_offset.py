"""Question: where do the Sunnybrook contours sit on their images? Answer: docs/sunnybrook_contour_offset.json, used by docs/results.md.

Where do the Sunnybrook contours sit on their images? The offset that puts them on the image's edges.

    python research/analyses/sunnybrook_contour_offset.py --manifest ../shared/data/manifest.csv --out docs

For every contour of the GE (Sunnybrook) rows, the image's gradient magnitude (Gaussian sigma 1 px,
normalised per image) is sampled along the contour read as if its coordinates were `array index + offset`,
for offsets -1.5..1.5 px in x and y. Endocardial and epicardial contours follow tissue edges, so the
mean edge strength peaks at the files' true convention, independently of any model. Writes
docs/sunnybrook_contour_offset.json; io/sunnybrook.py's CONTOUR_ORIGIN is set from it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetgan.io.images import read_image
from unetgan.io.manifest import read_manifest
from unetgan.io.sunnybrook import contour_files, read_contour

OFFSETS = np.arange(-1.5, 1.51, 0.25)


def edge_strength_by_offset(manifest) -> tuple[np.ndarray, int]:
    total, count = np.zeros((OFFSETS.size, OFFSETS.size)), 0
    for item in read_manifest(manifest, ["GE"], require_labels=True):
        cine = read_image(item.image)
        where = {int(Path(p).stem): (z, t) for z, row in enumerate(cine.meta["files"]) for t, p in enumerate(row)}
        for number, kinds in contour_files(item.label).items():
            z, t = where[number]
            image = ndimage.gaussian_filter(cine.array[t, z].astype(float), 1.0)
            edges = np.hypot(ndimage.sobel(image, 0), ndimage.sobel(image, 1))
            edges /= edges.mean()
            for path in kinds.values():
                points = read_contour(path)
                for i, dy in enumerate(OFFSETS):
                    for j, dx in enumerate(OFFSETS):
                        total[i, j] += ndimage.map_coordinates(edges, [points[:, 1] - dy, points[:, 0] - dx], order=1).mean()
                count += 1
    return total / count, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    strength, count = edge_strength_by_offset(args.manifest)
    i, j = np.unravel_index(strength.argmax(), strength.shape)
    zero = int(np.argmin(np.abs(OFFSETS)))
    report = {"command": f"python research/analyses/sunnybrook_contour_offset.py --manifest {args.manifest} --out {args.out}",
              "contours": count, "best_offset_px": {"y": float(OFFSETS[i]), "x": float(OFFSETS[j])},
              "edge_strength_at_best": float(strength[i, j]), "edge_strength_at_0": float(strength[zero, zero]),
              "offsets_px": OFFSETS.tolist(), "edge_strength": strength.round(4).tolist()}
    (Path(args.out) / "sunnybrook_contour_offset.json").write_text(json.dumps(report, indent=1))
    print(f"{count} contours: edge strength peaks at coordinate = index + ({OFFSETS[j]:+.2f} x, {OFFSETS[i]:+.2f} y) px "
          f"({strength[i, j]:.3f} vs {strength[zero, zero]:.3f} at 0)")


if __name__ == "__main__":
    main()
