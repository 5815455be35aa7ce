"""An int8 copy of a converted model: faster on a CPU, vectors within cosine 0.99.

Plain dynamic quantisation (weights int8 per output channel, activations uint8 per tensor
at run time) loses too much on BERT-family models: a few hidden channels carry values
~20x the others, stretch each activation's scale, and cosine to the original fell to 0.978
on some texts. So, before quantising:

- the input channels of each weight MatMul whose calibrated magnitude exceeds
  :data:`OUTLIER_RATIO` times the median (a handful per layer) are moved to a small fp32
  MatMul beside the int8 one (LLM.int8()'s split);
- the attention value projections stay fp32: a text embedded alone (a query) sets its
  own activation scale, and these alone took single short texts down to cosine 0.97;
- so do the attention output projections: quantised, they alone took some long texts
  (gcloud man pages) to 0.985, while the query, key and feed-forward MatMuls, quantised
  each kind alone, kept every text above 0.9996. Kept fp32, the worst of 500 man pages is
  0.9990 and of 3,000 package descriptions 0.9981, at the same speed (they are the
  smallest MatMuls; the feed-forward ones, four times larger, stay int8).

The result is checked text by text, each embedded alone, against the fp32 graph; one
under :data:`INT8_AGREEMENT` raises :class:`~.convert.ConversionError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .cache import GRAPH, META
from .convert import CHECK_TEXTS, ConversionError, cosines, quiet

#: Input channels above this many times the median magnitude go to the fp32 side path.
OUTLIER_RATIO = 4.0
#: At most this many channels a MatMul (they are few; more would mean a flat distribution).
MAX_OUTLIERS = 8
#: MatMuls whose node name holds one of these stay fp32 (BERT's attention values and
#: attention output projections).
KEEP_FP32 = ("/value/", "/attention/output/")
#: Cosine every check text, embedded alone, must keep against the fp32 graph.
INT8_AGREEMENT = 0.995


def _calibration_feed(graph: Any, tokenizer_file: Path) -> dict[str, Any]:
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(256)
    tokenizer.enable_padding()  # to the longest text
    encodings = tokenizer.encode_batch(CHECK_TEXTS)
    feed = {
        "input_ids": np.array([e.ids for e in encodings], np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], np.int64),
    }
    return {i.name: feed[i.name] for i in graph.input}


def _input_magnitudes(model: Any, names: list[str], feed: dict[str, Any]) -> dict[str, Any]:
    """Each named tensor's largest absolute value per channel (last axis) on ``feed``."""
    import numpy as np
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    for name in names:
        if name not in outputs:
            probe.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    found = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    return {
        name: np.abs(found[name]).reshape(-1, found[name].shape[-1]).max(axis=0) for name in names
    }


def _split_outliers(model: Any, matmuls: list[Any], magnitudes: dict[str, Any]) -> None:
    """Rewrite each MatMul ``y = x W`` as ``(x * keep) W' + gather(x, idx) W[idx]``, where
    ``idx`` are ``x``'s outlier channels and ``W'`` is ``W`` with those rows zeroed; only
    ``W'`` is quantised later."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    targets = {id(node) for node in matmuls}
    nodes: list[Any] = []
    for node in graph.node:
        if id(node) not in targets:
            nodes.append(node)
            continue
        x, weight_name = node.input[0], node.input[1]
        magnitude = magnitudes[x]
        candidates = np.flatnonzero(magnitude > OUTLIER_RATIO * np.median(magnitude))
        if not len(candidates):
            nodes.append(node)
            continue
        strongest = candidates[np.argsort(-magnitude[candidates])][:MAX_OUTLIERS]
        idx = np.sort(strongest)
        weight = numpy_helper.to_array(weights[weight_name]).copy()
        base = node.name or f"{weight_name}/matmul"
        keep = np.ones(weight.shape[0], np.float32)
        keep[idx] = 0
        graph.initializer.extend(
            [
                numpy_helper.from_array(keep, f"{base}/keep"),
                numpy_helper.from_array(idx.astype(np.int64), f"{base}/outliers"),
                numpy_helper.from_array(weight[idx].copy(), f"{base}/outlier_weight"),
            ]
        )
        weight[idx] = 0
        weights[weight_name].CopyFrom(numpy_helper.from_array(weight, weight_name))
        y = node.output[0]
        node.input[0] = f"{base}/kept"
        node.output[0] = f"{base}/main"
        nodes += [
            helper.make_node("Mul", [x, f"{base}/keep"], [f"{base}/kept"], name=f"{base}/mask"),
            node,
            helper.make_node(
                "Gather", [x, f"{base}/outliers"], [f"{base}/picked"], name=f"{base}/pick", axis=-1
            ),
            helper.make_node(
                "MatMul",
                [f"{base}/picked", f"{base}/outlier_weight"],
                [f"{base}/side"],
                name=f"{base}/side_matmul",
            ),
            helper.make_node("Add", [f"{base}/main", f"{base}/side"], [y], name=f"{base}/add"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def quantize_int8(fp32_dir: Path, work: Path) -> dict[str, Any]:
    """Write an int8 conversion of the fp32 one in ``fp32_dir`` into ``work`` (graph,
    weights, tokenizer.json); returns the metadata to record."""
    import shutil

    import numpy as np
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .runtime import OnnxSentenceEncoder

    model = onnx.load(str(fp32_dir / GRAPH))
    weights = {w.name: w for w in model.graph.initializer}
    matmuls = [
        node
        for node in model.graph.node
        if node.op_type == "MatMul"
        and node.input[1] in weights
        and len(weights[node.input[1]].dims) == 2
        and min(weights[node.input[1]].dims) > 32
        and not any(part in node.name for part in KEEP_FP32)
    ]
    if not matmuls:
        raise ConversionError("its graph has no weight MatMul to quantise")
    feed = _calibration_feed(model.graph, fp32_dir / "tokenizer.json")
    inputs = list(dict.fromkeys(node.input[0] for node in matmuls))
    _split_outliers(model, matmuls, _input_magnitudes(model, inputs, feed))
    with tempfile.TemporaryDirectory(dir=work) as scratch, quiet():
        staged = os.path.join(scratch, "split.onnx")
        onnx.save(model, staged)
        quantized = os.path.join(scratch, "int8.onnx")
        quantize_dynamic(
            staged,
            quantized,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=[node.name for node in matmuls],
        )
        onnx.save(
            onnx.load(quantized),
            str(work / GRAPH),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=GRAPH + ".data",
            size_threshold=1024,
        )
    shutil.copy(fp32_dir / "tokenizer.json", work / "tokenizer.json")
    meta = json.loads((fp32_dir / META).read_text(encoding="utf-8"))
    meta.update(variant="int8")
    meta.pop("format", None)
    (work / META).write_text(json.dumps(meta), encoding="utf-8")  # the check reads it

    # Queries are embedded one at a time: check each text alone, the hardest case.
    reference = OnnxSentenceEncoder(fp32_dir)
    candidate = OnnxSentenceEncoder(work)
    expected = np.concatenate([reference.encode([text]) for text in CHECK_TEXTS])
    alone = np.concatenate([candidate.encode([text]) for text in CHECK_TEXTS])
    agreement = float(cosines(expected, alone).min())
    if not agreement >= INT8_AGREEMENT:
        raise ConversionError(
            f"its int8 vectors agree with fp32 only to cosine {agreement:.4f} "
            f"(at least {INT8_AGREEMENT} is needed)"
        )
    meta["agreement"] = {"against": "fp32", "min_cosine": round(agreement, 6)}
    return meta
