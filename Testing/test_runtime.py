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
    monkeypatch.setattr(runtime, "instruction_set", lambda: "vnni")
    assert runtime.resolve_runtime("auto", cpu) == "onnx-int8"  # installed by the project's requirements
    assert runtime.resolve_runtime("onnx", cpu) == "onnx"
    for without_vnni, default in (("avx512", "onnx-int8"), ("avx2", "onnx-int8"), ("other", "onnx")):
        # int8 (7-bit weights) by default wherever ONNX Runtime has integer kernels; elsewhere only when asked for
        monkeypatch.setattr(runtime, "instruction_set", lambda without_vnni=without_vnni: without_vnni)
        assert runtime.resolve_runtime("auto", cpu) == default
        assert runtime.resolve_runtime("onnx-int8", cpu) == "onnx-int8"
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


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni", "vnni"),  # Intel Cascade Lake on, AMD Zen 4 on
    ("fpu sse2 avx avx2 fma avx_vnni", "vnni"),  # AVX-VNNI without AVX-512 (Intel Alder Lake on)
    ("fpu sse2 avx avx2 fma avx512f avx512bw", "avx512"),  # Intel Skylake-SP
    ("fpu sse2 avx avx2 fma", "avx2"),  # AMD EPYC Rome and Milan, Intel Haswell to Coffee Lake
    ("fpu sse2 sse4_2 avx", "other")])
def test_the_instruction_set_and_the_int8_weights_follow_the_cpu_flags(monkeypatch, flags, expected):
    from unetgan import quantize

    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {"model name": "A CPU", "flags": flags})
    monkeypatch.delenv(runtime.INSTRUCTION_SET_ENV, raising=False)  # the flags decide, not a user's override
    runtime.instruction_set.cache_clear()
    try:
        assert runtime.instruction_set() == expected
        assert runtime.integer_dot_product() == (expected == "vnni")
        assert runtime.int8_by_default() == (expected != "other")
        safe = runtime.int8_settings() == quantize.SATURATION_SAFE
        assert safe == (expected != "vnni") and runtime.int8_settings().reduce_range == safe
        assert runtime.cpu_description() == {"model": "A CPU", "instruction_set": expected, "vnni": expected == "vnni",
                                             "int8_weights": "u8s7-per-channel" if safe else "u8s8-per-channel"}
    finally:
        runtime.instruction_set.cache_clear()


def test_without_proc_cpuinfo_the_flags_come_from_numpy(monkeypatch):
    """macOS and Windows have no /proc/cpuinfo: numpy's run-time detection (CPUID) answers instead."""
    from numpy._core._multiarray_umath import __cpu_features__

    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {})
    monkeypatch.delenv(runtime.INSTRUCTION_SET_ENV, raising=False)
    flags = runtime._cpu_flags()
    assert ("avx2" in flags) == bool(__cpu_features__.get("AVX2"))
    assert ("avx512_vnni" in flags) == bool(__cpu_features__.get("AVX512VNNI"))
    runtime.instruction_set.cache_clear()
    try:
        assert runtime.instruction_set() in runtime.INSTRUCTION_SETS
    finally:
        runtime.instruction_set.cache_clear()


def test_the_instruction_set_can_be_set_for_a_machine_whose_flags_mislead(monkeypatch):
    """$UNETGAN_INSTRUCTION_SET overrides /proc/cpuinfo (a virtual machine may report VNNI its host lacks): without
    VNNI int8 takes 7-bit weights (`auto` still runs it on AVX2; on "other" float32); a value that is no instruction
    set is refused."""
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: {"model name": "A CPU", "flags": "avx2 avx512bw avx512_vnni"})
    monkeypatch.setenv(runtime.INSTRUCTION_SET_ENV, "avx2")
    runtime.instruction_set.cache_clear()
    try:
        assert runtime.instruction_set() == "avx2" and not runtime.integer_dot_product()
        assert runtime.resolve_runtime("auto", torch.device("cpu")) == "onnx-int8"
        assert runtime.int8_settings().reduce_range
        monkeypatch.setenv(runtime.INSTRUCTION_SET_ENV, "other")
        runtime.instruction_set.cache_clear()
        assert runtime.resolve_runtime("auto", torch.device("cpu")) == "onnx"
        monkeypatch.setenv(runtime.INSTRUCTION_SET_ENV, "sse9")
        runtime.instruction_set.cache_clear()
        with pytest.raises(InputError, match="UNETGAN_INSTRUCTION_SET='sse9' is not one of vnni, avx512, avx2, other"):
            runtime.instruction_set()
    finally:
        runtime.instruction_set.cache_clear()


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


def _small_network_and_batches():
    """A float32 ONNX model with a constant and a reflection pad between convolutions, and two input batches."""
    network = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.ConstantPad2d(2, 0.5),
                                  torch.nn.Conv2d(4, 4, 3), torch.nn.ReLU(), torch.nn.ReflectionPad2d(1),
                                  torch.nn.Conv2d(4, 1, 3)).eval()
    batches = [np.random.default_rng(i).uniform(0, 1, (1, 1, 16, 16)).astype(np.float32) for i in range(2)]
    return runtime.exported_model(network), batches


def test_a_constant_pad_stays_on_the_float_tensor():
    """A constant pad's fill value is in float units: only copying pads (reflect, edge) move to 8 bits."""
    import onnx

    from unetgan import quantize

    graph = onnx.load_from_string(quantize._quantize(*_small_network_and_batches())).graph
    producer = {name: node.op_type for node in graph.node for name in node.output}
    modes = {next((a.s.decode() for a in n.attribute if a.name == "mode"), "constant"): producer.get(n.input[0])
             for n in graph.node if n.op_type == "Pad"}
    assert modes == {"constant": "DequantizeLinear", "reflect": "QuantizeLinear"}


def _widest_weight(model: bytes) -> int:
    """The largest |integer| among a quantized model's int8 weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model).graph
    quantized = {node.input[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    return max(int(np.abs(numpy_helper.to_array(t).astype(int)).max()) for t in graph.initializer
               if t.name in quantized and t.data_type == onnx.TensorProto.INT8)


def test_7_bit_weights_cannot_saturate_16_bit_pair_sums():
    """Without VNNI ONNX Runtime adds each pair of uint8 x int8 products in 16 bits, clipped at 32767:
    full-range weights (127) can exceed it, 7-bit ones (reduce_range: 64) cannot."""
    from unetgan import quantize

    model, batches = _small_network_and_batches()
    assert 2 * 255 * _widest_weight(quantize._quantize(model, batches, quantize.FULL_RANGE)) > 32767
    assert 2 * 255 * _widest_weight(quantize._quantize(model, batches, quantize.SATURATION_SAFE)) <= 32767


def _int8_against_float32():
    """The masks of int8 and float32 ONNX Runtime on a phantom study of a vendor the adapter translates (the
    generator quantized too): their overlap per label, and the translated images' mean difference / range."""
    study = make_study("Siemens", seed=4, n_phases=2, n_slices=6, matrix=160)
    geometry = Geometry(tuple(study.spacing))
    results = {name: make_segmenter("unetgan", adapter="Siemens", device=torch.device("cpu"), runtime=name)
               .study(study.image, geometry) for name in ("onnx", "onnx-int8")}
    int8, plain = results["onnx-int8"].labels, results["onnx"].labels
    assert (plain > 0).sum() > 1000
    overlaps = [2 * ((int8 == label) & (plain == label)).sum() / ((int8 == label).sum() + (plain == label).sum())
                for label in (1, 2)]
    difference = np.abs(results["onnx-int8"].translated.astype(float) - results["onnx"].translated).mean()
    return overlaps, difference / float(np.ptp(study.image))


def test_a_study_gets_nearly_the_same_masks_in_int8(int8_cache):
    """On the CPU the suite runs on, with the int8 setting chosen for it (full 8-bit weights with VNNI,
    7-bit without). The Dice change on the real dev data is measured in docs/benchmarks.md."""
    overlaps, difference = _int8_against_float32()
    assert min(overlaps) > 0.97
    assert difference < 0.01


def test_without_vnni_int8_uses_7_bit_weights_kept_apart_in_the_cache(tmp_path, monkeypatch):
    """As on an x86 CPU without VNNI (an AMD EPYC with AVX2, where full-range weights moved the masks by 7 %):
    both networks are quantized with reduce_range, a VNNI model in the cache is never read in their place,
    and the masks, computed on this machine, stay within the same 0.97 of float32."""
    from onnxruntime import quantization

    from unetgan import quantize
    from unetgan.registry import paired_segmenter

    monkeypatch.setenv("UNETGAN_CACHE", str(tmp_path))
    monkeypatch.setattr(runtime, "instruction_set", lambda: "avx2")
    generator = load_adapter("Siemens")
    exported = [runtime.exported_model(load_lvunet(paired_segmenter(generator))),
                runtime.exported_model(runtime._Convolutions(generator))]
    for model in exported:  # where the VNNI models would be: not a model, so reading one would fail
        (tmp_path / f"{quantize.cache_key(model, quantize.FULL_RANGE)}.int8.onnx").write_bytes(b"a VNNI model")
    calls = []
    original = quantization.quantize_static
    monkeypatch.setattr(quantization, "quantize_static", lambda *a, **k: calls.append(k) or original(*a, **k))

    overlaps, difference = _int8_against_float32()

    assert [(k["reduce_range"], k["per_channel"]) for k in calls] == [(True, True)] * 2
    made = [tmp_path / f"{quantize.cache_key(model, quantize.SATURATION_SAFE)}.int8.onnx" for model in exported]
    assert all(2 * 255 * _widest_weight(path.read_bytes()) <= 32767 for path in made)
    assert min(overlaps) > 0.97
    assert difference < 0.01


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
