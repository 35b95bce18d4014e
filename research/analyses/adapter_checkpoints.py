"""Question: does the label-free criterion pick the adapter checkpoints that dev labels would pick? Answer: docs/models.md (the criterion checked against dev labels).

Check the label-free checkpoint criterion against dev labels.

    python research/analyses/adapter_checkpoints.py snapshot RUN.safetensors [...]   # while training: keep G_S of every evaluation
    python research/analyses/adapter_checkpoints.py evaluate RUN.safetensors --manifest M --vendor Siemens --split dev_labelled
    python research/analyses/adapter_checkpoints.py history RUN.safetensors --json docs/runs/.../RUN.history.json

`snapshot` watches each run's `<stem>_checkpoint/` (refreshed at every evaluation) and saves
that evaluation's G_S as `<stem>_snapshots/it_<N>.safetensors`. `evaluate` scores every
snapshot on labelled dev data and prints the criterion next to the Dice, so one sees whether
the criterion picks a good checkpoint. Dev labels are used here only to check, never to choose.
`history` writes a run's criterion per evaluation so far (from its checkpoint) as JSON, for the docs.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from safetensors.torch import load_file

from unetgan.networks.generator import build_generator, read_generator_metadata, save_generator
from unetgan.training.adapter_checkpoints import default_checkpoint_dir
from unetgan.training.adapter_config import AdapterConfig


def snapshot_once(adapter: Path) -> int | None:
    checkpoint = default_checkpoint_dir(adapter)
    state_file = checkpoint / "state.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    iteration = int(state["iteration"])
    out = adapter.with_name(adapter.stem + "_snapshots") / f"it_{iteration:05d}.safetensors"
    if out.exists():
        return None
    config = AdapterConfig.from_dict(state["config"])
    tensors = load_file(str(checkpoint / "weights.safetensors"))
    generator = build_generator(config.generator_config())
    generator.load_state_dict({k[len("G_S."):]: v for k, v in tensors.items() if k.startswith("G_S.")})
    extra = {}
    if adapter.exists():
        metadata = read_generator_metadata(adapter)
        extra = {k: metadata[k] for k in ("histogram_reference", "target_preprocessing", "source_vendor", "target_vendor")
                 if k in metadata}
    criterion = next((h for h in state.get("history", []) if h.get("iteration") == iteration), {})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_generator(generator, out, iteration=iteration, criterion={k: v for k, v in criterion.items() if k != "losses"},
                   **extra)
    return iteration


def run_history(adapter: Path) -> dict:
    """Where a run stands (iteration, seconds, the criterion's best) and its criterion at every evaluation."""
    state = json.loads((default_checkpoint_dir(adapter) / "state.json").read_text())
    return {"run": adapter.stem, **{k: state[k] for k in ("iteration", "best_iteration", "best_score", "identity_score",
                                                         "seconds")},
            "history": [{k: v for k, v in h.items() if k != "losses"} for h in state["history"]]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["snapshot", "evaluate", "history"])
    parser.add_argument("adapters", nargs="+", type=Path)
    parser.add_argument("--manifest")
    parser.add_argument("--vendor")
    parser.add_argument("--split", default="dev_labelled")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.mode == "snapshot":
        while True:
            for adapter in args.adapters:
                done = snapshot_once(adapter)
                if done is not None:
                    print(f"{adapter.name}: saved G_S of iteration {done}", flush=True)
            time.sleep(20)
    if args.mode == "history":
        if args.json and len(args.adapters) > 1:
            parser.error("history: --json names one run's file; give one run, or none to write each beside its run")
        for adapter in args.adapters:
            history = run_history(adapter)
            out = Path(args.json or adapter.with_name(f"{adapter.stem}.history.json"))
            out.write_text(json.dumps(history, indent=1) + "\n")
            print(f"{adapter.stem}: iteration {history['iteration']}, best {history['best_iteration']} -> {out}")
        return 0
    from unetgan.evaluate_run import evaluate_manifest

    rows = []
    for adapter in args.adapters:
        for snap in sorted(adapter.with_name(adapter.stem + "_snapshots").glob("it_*.safetensors")):
            metadata = read_generator_metadata(snap)
            report = evaluate_manifest(args.manifest, [args.vendor], [args.split], "unetgan", adapter=str(snap),
                                       progress=False, quiet=True)
            summary = report["summary"][args.vendor]
            rows.append({"run": adapter.stem, "iteration": metadata["iteration"],
                         "criterion": metadata.get("criterion", {}).get("score"), "dice": summary["mean"]["mean"]})
            print(f"{adapter.stem:28} it {metadata['iteration']:5d}  criterion {rows[-1]['criterion']}  Dice {rows[-1]['dice']:.3f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
