"""The minutiae network's rewritten graph computes the original graph's maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher.fingerprint import network
from matcher.fingerprint.learned_minutiae import DETECTION_THRESHOLD
from matcher.fingerprint.network_graph import GraphRewriteError, rewrite

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images" / "0001_1.png"


@pytest.fixture(scope="module")
def original():
    return network.load_model(rewritten=False)


@pytest.fixture(scope="module")
def maps(original):
    image = np.asarray(Image.open(SAMPLE).convert("L"))
    before = network.minutia_maps(image, network.create_session(original, threads=1))
    after = network.minutia_maps(image, network.create_session(rewrite(original), threads=1))
    return before, after


def test_rewritten_maps_equal_the_original_graphs(maps):
    before, after = maps
    assert before.shape == after.shape
    # Likelihoods (minutia, ending, after suppression): float rounding only.
    for channel in (0, 2, 3):
        assert np.abs(before[..., channel] - after[..., channel]).max() < 1e-3, channel
    # Direction (radians): compared on the circle, where the network sees a minutia.
    sure = before[..., 0] >= 0.1
    turn = np.angle(np.exp(1j * (before[..., 1] - after[..., 1])))[sure]
    assert sure.sum() > 100
    assert np.abs(turn).max() < 1e-2


def test_rewritten_graph_detects_the_same_minutiae(maps):
    before, after = maps
    found_before = before[..., 3] >= DETECTION_THRESHOLD
    found_after = after[..., 3] >= DETECTION_THRESHOLD
    assert found_before.sum() > 10
    assert np.array_equal(found_before, found_after)


def test_rewrite_fuses_gelu_layer_norm_dilation_and_upsampling(original):
    ops = [n.op_type for n in rewrite(original).graph.node]
    assert ops.count("FastGelu") == 27
    assert ops.count("LayerNormalization") == 24
    assert ops.count("Resize") == 11
    # The depthwise convolutions of 59, 219, 106 and 3 x 52 channels are padded to 64, 224, 112, 64.
    assert ops.count("Pad") == 6
    # The 11 inverted bottlenecks' 1x1 convolutions run channels-last as MatMuls.
    assert ops.count("MatMul") == 22
    for gone in ("Tanh", "Pow", "ReduceMean", "SpaceToDepth", "DepthToSpace", "Tile"):
        assert gone not in ops, gone
    assert len(ops) < len(original.graph.node) // 3


def test_heads_run_their_per_pixel_ops_before_upsampling(original):
    rewritten = rewrite(original)
    producer = {o: n for n in rewritten.graph.node for o in n.output}
    upsampled = sorted(producer[n.input[0]].op_type for n in rewritten.graph.node if n.op_type == "Resize")
    # Decoder: 4 convolution outputs and 4 GELU outputs (back to NCHW after their channels-last
    # LayerNorm and GELU); the 3 heads upsample after their own GELU, not before their 1x1 convs.
    assert upsampled == ["Conv"] * 4 + ["FastGelu"] * 3 + ["Transpose"] * 4


def test_rewrite_leaves_its_argument_alone(original):
    before = original.SerializeToString()
    rewrite(original)
    assert original.SerializeToString() == before


def test_rewrite_refuses_a_graph_it_does_not_know(original):
    broken = type(original)()
    broken.CopyFrom(original)
    gelu = next(n for n in broken.graph.node if n.name.endswith("/Gelu/Tanh"))
    gelu.op_type = "Sigmoid"
    with pytest.raises(GraphRewriteError):
        rewrite(broken)
