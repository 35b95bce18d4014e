"""Self-training: label unlabelled target-vendor volumes with the pipeline, keep only the plausible ones.

The usual failure of self-training is a network confirming its own mistakes, so the filter is
strict: flip-averaged predictions (better labels for 4x the work), then every out-of-distribution
check of the product (quality.frame_warnings: confidence, closed myocardial ring, bright-blood
contrast) plus a higher confidence bar and a ring on nearly every slice. The kept volumes become a
manifest (`pseudo_labelled` split) that `train-unet --pseudo-manifest` mixes with the source labels.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..histogram import match_to_reference
from ..inference import adapt_and_segment
from ..io.images import read_image, write_image
from ..io.manifest import read_manifest
from ..networks.lvunet import FlipAveraged
from ..quality import frame_warnings, ring_fraction

MIN_PSEUDO_CONFIDENCE = 0.90
MIN_PSEUDO_RING = 0.8
PSEUDO_SPLIT = "pseudo_labelled"


def pseudo_label(manifest, vendor: str, splits, model, generator, out_dir: Path, progress: bool = True,
                 min_confidence: float = MIN_PSEUDO_CONFIDENCE, min_ring: float = MIN_PSEUDO_RING,
                 histogram_reference: np.ndarray | None = None) -> dict:
    """Label every volume of `vendor`/`splits` (translated by `generator`, or histogram-matched to
    `histogram_reference`, when given); write the kept labels and `manifest.csv` into out_dir;
    return per-volume figures and the reasons for dropping."""
    out_dir = Path(out_dir)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    network = FlipAveraged(model).eval()
    rows, report = [], []
    for item in tqdm(read_manifest(manifest, [vendor], splits), desc="pseudo-labelling", disable=not progress):
        image = read_image(item.image)
        if image.is_cine:  # cines would need one row per frame; the target data here are ED/ES volumes
            raise ValueError(f"{item.subject}: pseudo-labelling takes 3D volumes, got a cine")
        frames = image.frames if histogram_reference is None else match_to_reference(image.frames, histogram_reference)
        result = adapt_and_segment(frames, image.geometry, network, generator, "cpu")
        labels, confidence = result.labels[0], result.confidence[0]
        ring = ring_fraction(labels)
        reasons = frame_warnings(labels, confidence, image.geometry.voxel_volume_ml, image=image.frames[0])
        if confidence < min_confidence:
            reasons.append(f"confidence {confidence:.3f} < {min_confidence}")
        if ring < min_ring:
            reasons.append(f"myocardial ring on {ring:.2f} of slices < {min_ring}")
        entry = {"subject": item.subject, "phase": item.phase, "confidence": round(confidence, 4),
                 "ring_fraction": round(ring, 3), "kept": not reasons, "reasons": reasons}
        report.append(entry)
        if reasons:
            continue
        label_file = out_dir / "labels" / f"{item.subject}_{item.phase}.nii.gz"
        write_image(labels.astype(np.uint8), image.geometry, label_file)
        rows.append({"subject": item.subject, "vendor": vendor, "phase": item.phase,
                     "image": str(Path(item.image).resolve()), "label": str(label_file.resolve()), "split": PSEUDO_SPLIT})
    with open(out_dir / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["subject", "vendor", "phase", "image", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {"vendor": vendor, "splits": list(splits), "kept": len(rows), "total": len(report),
               "min_confidence": min_confidence, "min_ring": min_ring, "volumes": report}
    (out_dir / "pseudo_labels.json").write_text(json.dumps(summary, indent=1))
    return summary
