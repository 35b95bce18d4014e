"""The cycle's other generator (G_T: source -> target look) out of an adapter run's checkpoint, as a generator file.

Usage: python research/recipes/target_generator.py runs/image_level/adapter_siemens_checkpoint -o runs/image_level/g_t_siemens.safetensors

`unetgan train-adapter` ships G_S (target -> source) and keeps both generators only in its checkpoint folder
(the last evaluation's weights). Image-level adaptation (`unetgan train-unet --translated-source P
--source-translator FILE`) needs G_T: this writes it in the same safetensors form as an adapter, with its
direction, vendors and iteration in the metadata.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from unetgan.networks.generator import build_generator, save_generator
from unetgan.training.adapter_checkpoints import STATE_FILE, WEIGHTS_FILE
from unetgan.training.adapter_config import AdapterConfig
from unetgan.weights import load_state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="an adapter run's checkpoint folder (<adapter>_checkpoint)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    state = json.loads((args.checkpoint / STATE_FILE).read_text())
    tensors = load_file(str(args.checkpoint / WEIGHTS_FILE))
    own = {key[len("G_T."):]: value for key, value in tensors.items() if key.startswith("G_T.")}
    generator = load_state(build_generator(AdapterConfig.from_dict(state["config"]).generator_config()), own, "G_T")
    digest = save_generator(generator, args.output, direction="source_to_target", iteration=state["iteration"],
                            source_vendor=state["source_vendor"], target_vendor=state["target_vendor"],
                            checkpoint_of=str(args.checkpoint))
    print(f"{args.output}: G_T of iteration {state['iteration']} ({state['source_vendor']} -> {state['target_vendor']}), "
          f"SHA256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
