#!/usr/bin/python3
"""export_onnx.py - export the serving twin of bench/serve_torch.py (same
model, same weights, same inputs) to ONNX for bench/serve_onnx.js, with
the inputs of 10, 100 and 1000 candidates and the twin's outputs on them,
so the ONNX Runtime side scores exactly what PyTorch scored and checks its
answer before timing it. The batch dimension is dynamic: one graph for
every size.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 \\
        bench/export_onnx.py --model reference --out build/bench/onnx
writes OUT/NAME.onnx, OUT/NAME.json (the manifest) and OUT/NAME.bin (the
tensors, little-endian, at the manifest's byte offsets); NAME is reference
or movielens.
"""

import argparse
import json
import os

import numpy as np
import torch

import serve_torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="reference", help="reference or a checkpoint path")
    ap.add_argument("--out", default="build/bench/onnx", help="output directory")
    ap.add_argument("--opset", type=int, default=13)
    a = ap.parse_args()
    torch.set_num_threads(1)
    spec, model = serve_torch.build(a.model)
    rng = np.random.default_rng(1234)  # the same draws as serve_torch.py
    inputs = {B: serve_torch.make_inputs(spec, model, B, rng) for B in serve_torch.SIZES}
    os.makedirs(a.out, exist_ok=True)
    stem = os.path.join(a.out, spec["name"])
    n_in = len(inputs[10])
    names = ["x%d" % i for i in range(n_in)]
    axes = {n: {0: "B"} for n in names + ["pred"]}
    with torch.no_grad():
        torch.onnx.export(model, inputs[10], stem + ".onnx", input_names=names,
                          output_names=["pred"], dynamic_axes=axes, opset_version=a.opset,
                          do_constant_folding=True)
        manifest = {"model": spec["name"], "input_width": model.c_in, "sizes": {}}
        off = 0
        with open(stem + ".bin", "wb") as f:
            for B, xs in inputs.items():
                ent = {"inputs": [], "gflop_per_call": 2e-9 * serve_torch.fwd_macs(spec, model.c_in, B)}
                for name, t in list(zip(names, xs)) + [("pred", model(*xs))]:
                    arr = t.numpy()
                    arr = arr.astype("<i8" if arr.dtype.kind == "i" else "<f4")
                    f.write(arr.tobytes())
                    item = {"name": name, "dtype": "int64" if arr.dtype.kind == "i" else "float32",
                            "shape": list(arr.shape), "offset": off}
                    off += arr.nbytes
                    if name == "pred":
                        ent["expected"] = item
                    else:
                        ent["inputs"].append(item)
                manifest["sizes"][str(B)] = ent
    with open(stem + ".json", "w") as f:
        json.dump(manifest, f, indent=1)
    print("wrote %s.onnx, %s.json, %s.bin" % (stem, stem, stem))


if __name__ == "__main__":
    main()
