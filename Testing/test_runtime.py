"""The ONNX Runtime path (unetgan/runtime.py): same networks, same outputs, chosen as documented."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unetgan import runtime
from unetgan.errors import InputError
from unetgan.io.geometry import Geometry
from unetgan.methods import make_segmenter
from unetgan.networks.generator import ResnetGenerator
from unetgan.phantom import make_study
from unetgan.registry import ModelCache, load_adapter, load_lvunet


@pytest.mark.parametrize("shape", [(3, 1, 192, 192), (2, 1, 96, 112)])  # the whole field and a heart box
def test_onnx_networks_give_the_torch_outputs_at_any_shape(shape):
    torch.manual_seed(0)
    x = torch.rand(shape) * 2 - 1
    for network, wrapped in ((n, runtime.on_runtime(n, "onnx")) for n in (load_lvunet("lvunet-robust"),
                                                                         load_adapter("adapter-siemens"))):
        assert wrapped is not network and wrapped.metadata == network.metadata
        with torch.no_grad():
            expected = network(x)
        got = wrapped(x)
        assert got.shape == expected.shape and got.dtype == torch.float32
        assert float((got - expected).abs().max()) < 1e-4


def test_a_study_gets_the_same_masks_on_both_runtimes():
    study = make_study("Siemens", seed=3, n_phases=2, n_slices=6, matrix=160)
    geometry = Geometry(tuple(study.spacing))
    results = {name: make_segmenter("unetgan", adapter="Siemens", device=torch.device("cpu"), runtime=name)
               .study(study.image, geometry) for name in ("torch", "onnx")}
    assert (results["onnx"].labels > 0).sum() > 1000  # a real segmentation, not two empty ones
    assert np.mean(results["onnx"].labels == results["torch"].labels) > 0.9999
    scale = float(np.ptp(study.image))
    assert np.abs(results["onnx"].translated.astype(float) - results["torch"].translated).max() < 1e-3 * scale


def test_runtime_choice(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert runtime.resolve_runtime("auto", cpu) == "onnx"  # installed by the project's requirements
    assert runtime.resolve_runtime("auto", cuda) == "torch"
    assert runtime.resolve_runtime("torch", cpu) == "torch"
    with pytest.raises(InputError, match="CPU only"):
        runtime.resolve_runtime("onnx", cuda)
    with pytest.raises(InputError, match="unknown runtime"):
        runtime.resolve_runtime("tensorrt", cpu)
    monkeypatch.setattr(runtime, "onnx_available", lambda: False)
    assert runtime.resolve_runtime("auto", cpu) == "torch"
    with pytest.raises(InputError, match="pip install onnxruntime"):
        runtime.resolve_runtime("onnx", cpu)


def test_an_identity_adapter_is_never_exported():
    identity = ResnetGenerator(filters=4, n_blocks=1, residual_output=True).eval()
    assert runtime.on_runtime(identity, "onnx") is identity
    assert runtime.on_runtime(None, "onnx") is None


def test_the_model_cache_keeps_one_network_per_runtime():
    cache = ModelCache()
    first = cache.lvunet("lvunet-robust", "onnx")
    assert isinstance(first, runtime.OnnxLVUnet) and cache.lvunet("lvunet-robust", "onnx") is first
    assert not isinstance(cache.lvunet("lvunet-robust", "torch"), runtime.OnnxLVUnet)
    assert cache.loads == 2


def test_onnx_uses_the_process_share_of_the_cores():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        wrapped = runtime.on_runtime(load_lvunet("lvunet-robust"), "onnx")
        options = wrapped.onnx.session.get_session_options()
        assert options.intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
