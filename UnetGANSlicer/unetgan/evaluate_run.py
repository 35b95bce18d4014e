"""`unetgan evaluate`: run a method over a labelled manifest and tabulate Dice and EF agreement."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tqdm import tqdm

from .evaluation import dice_per_structure, format_table, score_volume, summarise
from .inference import adapt_and_segment_frame, pick_device
from .io.manifest import load_item, read_manifest
from .io.sunnybrook import cine_phase_names
from .methods import make_segmenter


def evaluate_manifest(manifest, vendors=None, splits=None, method="clean", model=None, adapter=None, json_path=None,
                      convention="mnms", device="auto", progress=True, histogram=None, quiet=False, subjects=None) -> dict:
    items = read_manifest(manifest, vendors, splits, require_labels=True, subjects=subjects)
    segmenter = make_segmenter(method, model=model, adapter=adapter, histogram=histogram, device=pick_device(device))
    per_volume = []
    for item in tqdm(items, desc=f"evaluating {method}", disable=not progress, leave=False):
        for volume in cine_phase_names(load_item(item, convention)):
            result = segmenter(volume.image.array, volume.image.geometry.spacing)
            row = score_volume(volume, result.labels)
            if segmenter.generator is not None:  # does the translation move anatomy? compare with the untranslated masks
                plain = adapt_and_segment_frame(volume.image.array, volume.image.geometry.spacing, segmenter.model, None,
                                                segmenter.device)
                row["dice_translated_vs_original"] = dice_per_structure(result.labels, plain.labels)["mean"]
            per_volume.append(row)
    report = {"method": method, "model": model, "adapter": adapter, "manifest": str(manifest),
              "summary": summarise(per_volume), "per_volume": per_volume}
    if not quiet:
        print(format_table(report["summary"], f"method: {method}"))
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(report, handle, indent=1)
        os.replace(tmp, path)
    return report
