"""Run every ONNX model NAME.SETTING.onnx of a folder on NAME.input.npy and save NAME.SETTING.TAG.out.npy.

    python scripts/onnx_outputs.py FOLDER TAG

numpy and onnxruntime only (no torch), one thread: small enough to run under an emulator of another CPU
(scripts/int8_safety.py --emulate-avx2), where ONNX Runtime picks its kernels for the emulated CPU.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime


def main(folder: Path, tag: str) -> int:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    for model in sorted(folder.glob("*.onnx")):
        inputs = np.load(folder / f"{model.name.split('.')[0]}.input.npy")
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        np.save(folder / f"{model.stem}.{tag}.out.npy", session.run(None, {"x": inputs})[0])
        print(model.name, tag, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
