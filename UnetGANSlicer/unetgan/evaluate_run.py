"""`unetgan evaluate`: run a method over a labelled manifest and tabulate Dice and EF agreement."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tqdm import tqdm

from .evaluation import format_table, score_volume, summarise
from .inference import pick_device
from .io.manifest import load_item, read_manifest
from .io.sunnybrook import cine_phase_names
from .methods import make_segmenter


def evaluate_manifest(manifest, vendors=None, splits=None, method="clean", model=None, adapter=None, json_path=None,
                      convention="mnms", device="auto", progress=True) -> dict:
    items = read_manifest(manifest, vendors, splits, require_labels=True)
    segmenter = make_segmenter(method, model=model, adapter=adapter, device=pick_device(device))
    per_volume = []
    for item in tqdm(items, desc=f"evaluating {method}", disable=not progress, leave=False):
        for volume in cine_phase_names(load_item(item, convention)):
            result = segmenter(volume.image.array, volume.image.geometry.spacing)
            per_volume.append(score_volume(volume, result.labels))
    report = {"method": method, "model": model, "adapter": adapter, "manifest": str(manifest),
              "summary": summarise(per_volume), "per_volume": per_volume}
    print(format_table(report["summary"], f"method: {method}"))
    if json_path:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(report, handle, indent=1)
        os.replace(tmp, path)
    return report
