#!/usr/bin/python3
"""onnx_check.py - an ONNX graph exported by crossrec, read back with
Python's onnx: onnx.checker.check_model with full shape inference, opset 13
standard operators only, an fp32 weight for every float initializer, the
vocabulary document in metadata_props equal to the file beside the graph,
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
    for t in m.graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            fail("%s: initializer %s is not fp32" % (path, t.name))
    meta = {p.key: p.value for p in m.metadata_props}
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
    print("%s: checker ok, opset 13, %d nodes, %d initializers, %d inputs, outputs %s, "
          "%d features in the vocabulary" % (path, len(m.graph.node), len(m.graph.initializer),
                                              len(got_in), " ".join(got_out),
                                              len(vocab["features"])))


if __name__ == "__main__":
    main()
