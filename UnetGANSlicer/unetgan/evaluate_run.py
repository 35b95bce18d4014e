"""`unetgan evaluate`: run a method over a labelled manifest and tabulate Dice and EF agreement."""
from __future__ import annotations

import json
from pathlib import Path

from tqdm import tqdm

from . import postprocess
from .evaluation import dice_per_structure, format_table, score_volume, summarise
from .inference import adapt_and_segment_frame, pick_device
from .io.images import read_image
from .io.manifest import load_item, read_manifest
from .io.sunnybrook import cine_phase_names
from .methods import make_segmenter, weight_files
from .tta import DEFAULT_TTA
from .runtime import resolve_runtime
from .outputs import atomic_path


def predicted_volumes(segmenter, item, convention="mnms") -> list[tuple]:
    """(labelled volume, predicted labels) for a manifest row. A cine row (a DICOM cine with contours on
    some frames) runs as the whole cine, as the command line would run it; its contoured frames are returned."""
    volumes = cine_phase_names(load_item(item, convention))
    if not item.is_cine:
        return [(v, segmenter(v.image.array, v.image.geometry.spacing).labels) for v in volumes]
    cine = read_image(item.image)
    result = segmenter.study(cine.frames, cine.geometry)
    return [(v, result.labels[v.image.meta["frame"]]) for v in volumes]


def evaluate_manifest(manifest, vendors=None, splits=None, method="clean", model=None, adapter=None, json_path=None,
                      convention="mnms", device="auto", progress=True, histogram=None, quiet=False, subjects=None,
                      runtime="auto", tta=DEFAULT_TTA) -> dict:
    """Score a method on every labelled volume of a manifest (cine rows: see predicted_volumes)."""
    items = read_manifest(manifest, vendors, splits, require_labels=True, subjects=subjects)
    segmenter = make_segmenter(method, model=model, adapter=adapter, histogram=histogram, device=pick_device(device),
                               runtime=runtime, tta=tta)
    per_volume = []
    for item in tqdm(items, desc=f"evaluating {method}", disable=not progress, leave=False):
        for volume, labels in predicted_volumes(segmenter, item, convention):
            row = score_volume(volume, labels)
            if segmenter.generator is not None:  # does the translation move anatomy? compare with the untranslated masks
                plain = adapt_and_segment_frame(volume.image.array, volume.image.geometry.spacing, segmenter.model, None,
                                                segmenter.device)
                row["dice_translated_vs_original"] = dice_per_structure(labels, plain.labels)["mean"]
            per_volume.append(row)
    report = {"method": method, "model": model, "adapter": adapter, "weights": weight_files(method, model, adapter),
              "runtime": resolve_runtime(runtime, pick_device(device)), "tta": tta, "postprocessing": postprocess.description(), "manifest": str(manifest),
              "summary": summarise(per_volume), "per_volume": per_volume}
    if not quiet:
        print(format_table(report["summary"], f"method: {method}"))
    if json_path:
        with atomic_path(Path(json_path)) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
    return report
