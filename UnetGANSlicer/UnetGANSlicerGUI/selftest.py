"""The module's self-test inside Slicer ("Reload and Test"): a 3-frame phantom cine, tiny random networks.

Checks the plumbing (one output frame per input frame, geometry, segments, measurements, nothing
overwritten, cancel leaves the scene as it was, Apply in the background leaves the GUI responsive and
comes back to "Adapt and segment"), not the accuracy. Each case takes the ScriptedLoadableModuleTest
(its assertions and delayDisplay) and a fresh module logic.
"""
import os
import tempfile
import time

import slicer


def _models(folder):
    import torch

    from unetgan.networks.generator import GeneratorConfig, build_generator, save_generator
    from unetgan.networks.lvunet import LVUnet, LVUnetConfig
    from unetgan.registry import write_weights

    torch.manual_seed(0)
    config = LVUnetConfig(widths=(4, 8, 8, 8))
    segmenter = LVUnet(config).eval()
    with torch.no_grad():
        segmenter.head.bias.copy_(torch.tensor([0.0, 0.3, 0.3]))
    model = os.path.join(folder, "lvunet_tiny.safetensors")
    write_weights(segmenter, model, {"architecture": "LVUnet", "config": config.to_dict()})
    adapter = os.path.join(folder, "adapter_tiny.safetensors")
    save_generator(build_generator(GeneratorConfig(filters=4, n_blocks=1, residual_output=True)), adapter,
                   source_vendor="Philips", target_vendor="Siemens")
    return model, adapter


def _phantom_cine():
    from unetgan.io.images import Geometry
    from unetgan.phantom import make_study
    from UnetGANSlicerLib.loading import add_image

    study = make_study("Siemens", seed=0, n_phases=3, n_slices=4, matrix=96)
    geometry = Geometry(study.spacing, study.origin, study.direction)
    return add_image(study.image, geometry, "phantom", slicer.mrmlScene, study.trigger_times_ms)


def _node_ids():
    return {slicer.mrmlScene.GetNthNode(i).GetID() for i in range(slicer.mrmlScene.GetNumberOfNodes())}


def phantom_cine(test, logic):
    import numpy as np

    from UnetGANSlicerGUI.install_dialogs import ensure_dependencies
    from UnetGANSlicerLib.nodes import fingerprint, ijk_to_ras
    from UnetGANSlicerLib.segmentation import SEGMENTS, labels_of

    test.delayDisplay("Creating the phantom cine and tiny networks")
    test.assertTrue(ensure_dependencies(logic, ask=False), "dependencies are missing")
    loaded = _phantom_cine()
    proxy = loaded.volume
    before = fingerprint(proxy)
    with tempfile.TemporaryDirectory() as folder:
        model, adapter = _models(folder)
        calls = []
        test.delayDisplay("Adapt and segment")
        result = logic.process(proxy, adapter, model, "auto", progress=lambda d, t, s: calls.append((d, t)))
    test.assertEqual(fingerprint(proxy), before)
    test.assertEqual(result.n_frames, 3)
    test.assertEqual(result.segmentation_sequence.GetNumberOfDataNodes(), 3)
    test.assertEqual(result.translated_sequence.GetNumberOfDataNodes(), 3)
    test.assertTrue(loaded.browser.IsSynchronizedSequenceNodeID(result.segmentation_sequence.GetID()))
    test.assertTrue(all(t == 3 for _, t in calls))
    segmentation = result.segmentation.GetSegmentation()
    test.assertEqual(sorted(segmentation.GetSegment(s.segment_id).GetName() for s in SEGMENTS),
                     ["Left ventricle blood pool", "Myocardium"])
    np.testing.assert_array_equal(ijk_to_ras(result.translated), ijk_to_ras(proxy))
    volume_ml = float(np.prod(proxy.GetSpacing())) / 1000.0
    table = result.frames_table.GetTable()
    for t in range(3):
        labels = labels_of(result.segmentation_sequence.GetNthDataNode(t), loaded.sequence.GetNthDataNode(t))
        test.assertAlmostEqual(table.GetValueByName(t, "Blood pool").ToDouble(), (labels == 1).sum() * volume_ml,
                               delta=2e-3)
    logic.showResult(result)
    test.delayDisplay("Phantom cine test passed")


def cancel(test, logic):
    from unetgan.errors import Cancelled

    loaded = _phantom_cine()
    ids = _node_ids()
    calls = []
    with tempfile.TemporaryDirectory() as folder:
        model, adapter = _models(folder)
        with test.assertRaises(Cancelled):
            logic.process(loaded.volume, adapter, model, "auto", progress=lambda d, t, s: calls.append(d),
                          cancel=lambda: bool(calls))
    test.assertEqual(_node_ids(), ids)
    test.delayDisplay("Cancel test passed")


def background_apply(test, logic):
    """Apply as the panel runs it: the GUI thread keeps processing events while the backend works."""
    from UnetGANSlicerLib.background import DONE, BackgroundRunner

    loaded = _phantom_cine()
    runner = BackgroundRunner("Adapt and segment")
    with tempfile.TemporaryDirectory() as folder:
        model, adapter = _models(folder)
        test.assertTrue(runner.start(lambda: logic.segmentJob(loaded.volume, adapter, model, "auto")))
        test.assertEqual(runner.button_text, "Cancel")
        events, deadline = 0, time.monotonic() + 300
        while runner.poll() and time.monotonic() < deadline:
            slicer.app.processEvents()  # what the panel's QTimer lets Qt do between two polls
            events += 1
            time.sleep(0.05)
    test.assertEqual(runner.outcome, DONE, runner.message)
    test.assertEqual(runner.button_text, "Adapt and segment")
    test.assertGreater(events, 1)
    test.assertEqual(runner.result.result.n_frames, 3)
    test.delayDisplay("Background Apply test passed")
