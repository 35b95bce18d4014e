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
    monkeypatch.setattr(runtime, "integer_dot_product", lambda: True)
    assert runtime.resolve_runtime("auto", cpu) == "onnx-int8"  # installed by the project's requirements
    assert runtime.resolve_runtime("onnx", cpu) == "onnx"
    monkeypatch.setattr(runtime, "integer_dot_product", lambda: False)  # u8 x s8 sums could saturate
    assert runtime.resolve_runtime("auto", cpu) == "onnx"
    assert runtime.resolve_runtime("auto", cuda) == "torch"
    assert runtime.resolve_runtime("torch", cpu) == "torch"
    for onnx_runtime in ("onnx", "onnx-int8"):
        with pytest.raises(InputError, match="CPU only"):
            runtime.resolve_runtime(onnx_runtime, cuda)
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


@pytest.mark.parametrize("threads", [1, 2])
def test_onnx_uses_the_process_share_of_the_cores_one_session_per_core(threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        wrapped = runtime.on_runtime(load_lvunet("lvunet-robust"), "onnx")
    finally:
        torch.set_num_threads(before)
    sessions = wrapped.onnx.sessions
    assert len(sessions) == threads
    assert all(s.get_session_options().intra_op_num_threads == 1 for s in sessions)
    # a batch split over the sessions gives what one session gives for the whole batch
    x = torch.rand(5, 1, 96, 96)
    whole = torch.from_numpy(sessions[0].run(None, {"x": x.numpy()})[0])
    assert torch.equal(wrapped(x), whole)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNETGAN_CACHE", str(folder))
        yield folder


def test_int8_networks_are_quantized_calibrated_once_and_close_to_float32(int8_cache, monkeypatch):
    import onnx

    from unetgan import quantize

    x = torch.rand(4, 1, 112, 112)
    network = load_lvunet("lvunet-robust")
    int8 = runtime.on_runtime(network, "onnx-int8")
    cached = list(int8_cache.glob("*.int8.onnx"))
    assert len(cached) == 1
    operators = {node.op_type for node in onnx.load(cached[0]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators  # integer convolutions, not the float graph
    with torch.no_grad():
        expected = torch.softmax(network(x), 1)
    got = torch.softmax(int8(x), 1)
    assert float((got - expected).abs().mean()) < 0.02  # close, not equal: 8-bit activations
    # the second load reads the cache: no calibration
    monkeypatch.setattr(quantize, "_quantize", lambda *a: pytest.fail("calibrated again"))
    again = runtime.on_runtime(network, "onnx-int8")
    assert torch.equal(torch.softmax(again(x), 1), got)


def test_the_generator_pads_its_8_bit_tensors_and_gives_the_same_output(int8_cache, monkeypatch):
    """The quantizer leaves each reflection pad between a float conversion and back; the rewrite pads the
    8-bit tensor itself, which must change nothing but the time."""
    import onnx
    import onnxruntime

    from unetgan import quantize

    graphs = []
    rewrite = quantize._pad_quantized_tensors
    monkeypatch.setattr(quantize, "_pad_quantized_tensors", lambda model: graphs.append(model) or rewrite(model))
    monkeypatch.setattr(quantize, "GRAPH_VERSION", -1)  # not the cached model of another test
    runtime.on_runtime(load_adapter("adapter-siemens"), "onnx-int8")
    (quantized,) = graphs

    def float_pads(model: bytes) -> tuple[int, int]:
        graph = onnx.load_from_string(model).graph
        producer = {name: node.op_type for node in graph.node for name in node.output}
        pads = [node for node in graph.node if node.op_type == "Pad"]
        return len(pads), sum(producer.get(node.input[0]) == "DequantizeLinear" for node in pads)

    rewritten = rewrite(quantized)
    assert float_pads(quantized) == (16, 16)  # the generator's reflection pads, all on float tensors
    assert float_pads(rewritten) == (16, 0)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 96, 112)).astype(np.float32)
    outputs = [onnxruntime.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
               for m in (quantized, rewritten)]
    assert np.abs(outputs[0]).max() > 0 and np.array_equal(*outputs)


def test_a_constant_pad_stays_on_the_float_tensor(int8_cache):
    """A constant pad's fill value is in float units: only copying pads (reflect, edge) move to 8 bits."""
    import io
    import warnings

    import onnx

    from unetgan import quantize

    network = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.ConstantPad2d(2, 0.5),
                                  torch.nn.Conv2d(4, 4, 3), torch.nn.ReLU(), torch.nn.ReflectionPad2d(1),
                                  torch.nn.Conv2d(4, 1, 3)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(network, torch.zeros(1, 1, 16, 16), buffer, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
    batches = [np.random.default_rng(i).uniform(0, 1, (1, 1, 16, 16)).astype(np.float32) for i in range(2)]
    graph = onnx.load_from_string(quantize._quantize(buffer.getvalue(), batches)).graph
    producer = {name: node.op_type for node in graph.node for name in node.output}
    modes = {next((a.s.decode() for a in n.attribute if a.name == "mode"), "constant"): producer.get(n.input[0])
             for n in graph.node if n.op_type == "Pad"}
    assert modes == {"constant": "DequantizeLinear", "reflect": "QuantizeLinear"}


def test_a_study_gets_nearly_the_same_masks_in_int8(int8_cache):
    """The Dice change on the real dev data is measured in docs/benchmarks.md; here on a phantom study
    of a vendor the adapter translates (the generator quantized too)."""
    study = make_study("Siemens", seed=4, n_phases=2, n_slices=6, matrix=160)
    geometry = Geometry(tuple(study.spacing))
    results = {name: make_segmenter("unetgan", adapter="Siemens", device=torch.device("cpu"), runtime=name)
               .study(study.image, geometry) for name in ("onnx", "onnx-int8")}
    int8, plain = results["onnx-int8"].labels, results["onnx"].labels
    assert (plain > 0).sum() > 1000
    for label in (1, 2):
        overlap = 2 * ((int8 == label) & (plain == label)).sum() / ((int8 == label).sum() + (plain == label).sum())
        assert overlap > 0.97
    scale = float(np.ptp(study.image))
    assert np.abs(results["onnx-int8"].translated.astype(float) - results["onnx"].translated).mean() < 0.01 * scale


def test_an_unwritable_cache_costs_time_not_the_result(tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("UNETGAN_CACHE", str(blocked))
    with caplog.at_level("WARNING", logger="unetgan.quantize"):
        int8 = runtime.on_runtime(load_lvunet("lvunet-robust"), "onnx-int8")
    x = torch.rand(2, 1, 96, 96)
    assert int8(x).shape == (2, 3, 96, 96)
    assert "could not keep" in caplog.text and "UNETGAN_CACHE" in caplog.text
    assert blocked.is_file()  # nothing was written over it
