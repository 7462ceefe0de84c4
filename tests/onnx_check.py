#!/usr/bin/python3
"""onnx_check.py - an ONNX graph exported by crossrec, read back with
Python's onnx: onnx.checker.check_model with full shape inference, opset 13
standard operators only, weights in the precision the metadata names
(fp32, or bf16 each read through a Cast to float), the vocabulary document in metadata_props equal to the file beside the graph,
and graph inputs and outputs exactly those the document lists.

    /usr/bin/python3 tests/onnx_check.py model.onnx model.vocab.json
Exits 1 with a message naming what differs.
"""
import json
import sys

import onnx
import onnx.checker


def fail(msg):
    print("onnx_check.py: " + msg)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        fail("usage: onnx_check.py MODEL.onnx VOCAB.json")
    path, vocab_path = sys.argv[1], sys.argv[2]
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = {(o.domain, o.version) for o in m.opset_import}
    if ops != {("", 13)}:
        fail("%s: opset_import %s, expected the standard domain at 13" % (path, sorted(ops)))
    for n in m.graph.node:
        if n.domain not in ("", "ai.onnx"):
            fail("%s: node %s is in domain %s" % (path, n.name, n.domain))
    meta = {p.key: p.value for p in m.metadata_props}
    weights = meta.get("crossrec.weights")
    if weights not in ("fp32", "bf16"):
        fail("%s: metadata crossrec.weights is %r" % (path, weights))
    casts = {n.input[0] for n in m.graph.node if n.op_type == "Cast"}
    readers = {}
    for n in m.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)
    n_half = 0
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT16 or (
                t.data_type == onnx.TensorProto.BFLOAT16 and weights != "bf16"):
            fail("%s: initializer %s is %s with weights %s" % (
                path, t.name, onnx.TensorProto.DataType.Name(t.data_type), weights))
        if t.data_type == onnx.TensorProto.BFLOAT16:
            n_half += 1
            if t.name not in casts or readers[t.name] != ["Cast"]:
                fail("%s: bf16 initializer %s is read by %s, not one Cast" % (
                    path, t.name, readers.get(t.name)))
    if weights == "bf16" and n_half == 0:
        fail("%s: weights bf16 but no bf16 initializer" % path)
    if meta.get("crossrec.format") != "crossrec.onnx":
        fail("%s: metadata crossrec.format is %r" % (path, meta.get("crossrec.format")))
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)
    if json.loads(meta.get("crossrec.vocab", "null")) != vocab:
        fail("%s: metadata crossrec.vocab differs from %s" % (path, vocab_path))
    json.loads(meta["crossrec.model"])
    want_in = [i for f in vocab["features"] for i in f["inputs"].values()]
    got_in = [i.name for i in m.graph.input]
    if got_in != want_in:
        fail("%s: inputs %s, the vocabulary lists %s" % (path, got_in, want_in))
    want_out = [o["name"] for o in vocab["outputs"]]
    got_out = [o.name for o in m.graph.output]
    if got_out != want_out:
        fail("%s: outputs %s, the vocabulary lists %s" % (path, got_out, want_out))
    for v in list(m.graph.input) + list(m.graph.output):
        d0 = v.type.tensor_type.shape.dim[0]
        if d0.dim_param != "B":
            fail("%s: %s's first dimension is not the symbolic batch B" % (path, v.name))
    print("%s: checker ok, opset 13, %d nodes, %d initializers (%d bf16), %d inputs, "
          "outputs %s, %d features in the vocabulary" % (
              path, len(m.graph.node), len(m.graph.initializer), n_half, len(got_in),
              " ".join(got_out), len(vocab["features"])))


if __name__ == "__main__":
    main()
