#!/usr/bin/python3
"""serve_torch.py - the PyTorch side of the in-process serving comparison:
the ranker's twin scoring 10, 100 and 1000 candidates in eager mode and as
TorchScript (torch.jit.trace, then torch.jit.freeze), p50/p99 per size,
printed under the names build/bench/serve_latency uses so
scripts/bench_serve.sh can set them side by side (beside crossrec's own
ONNX export in ONNX Runtime, bench/serve_onnx.js).

Two models:
  reference  the shape of docs/bench.md (26 categorical x 10k x 16, 13 dense,
             MMoE 4 x [256, 128], 3 binary tasks, towers [64]); random weights.
  PATH       a crossrec checkpoint (the MovieLens model): the shapes are read
             from its safetensors header and its weights are loaded, the
             first layers' columns permuted to the twin's input order.
Inputs are synthetic, drawn once: ids Zipf(1.05) over each table as in
bench/rank.c, bags of a fixed length (the MovieLens rows' means: last_items
5, genres 3, hist_top_genres 3), dense values N(0, 1). What the comparison
needs is the same shapes and GEMM FLOPs as crossrec's forward (printed as
n<N>_gflop_per_call), not the same numbers.

It is written to be fast, not literal: tables of one width are fused into
one (one gather per width), expert layers after the first and the towers
are batched matmuls, the gates of all tasks one Linear, and a bag is a
gather and a mean over a fixed length (which is also what ONNX exports
cleanly). Run with Debian's python3-torch and the OpenMP OpenBLAS:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/serve_torch.py --threads 1 --model reference
"""

import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = (10, 100, 1000)
BAG_LEN = {"last_items": 5, "genres": 3, "hist_top_genres": 3}


# ---- model descriptions --------------------------------------------------------

def reference_spec():
    return dict(name="reference",
                tables={"c%02d" % (i + 1): (10000, 16) for i in range(26)},
                cats=["c%02d" % (i + 1) for i in range(26)], bags=[], n_dense=13,
                experts=4, expert_layers=[256, 128], tower_layers=[64],
                binary=[True, True, True], weights=None)


def read_safetensors(path):
    """(header dict without __metadata__, metadata dict, data offset)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
    return head, head.pop("__metadata__", {}), 8 + n


def checkpoint_spec(path):
    """The twin's description of a crossrec MMoE checkpoint, weights included."""
    head, meta, base = read_safetensors(path)
    schema, cfg = json.loads(meta["schema"]), json.loads(meta["model"])
    if cfg["arch"] != "mmoe":
        raise SystemExit("serve_torch: only MMoE checkpoints have a twin (got %s)" % cfg["arch"])
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    weights = {}
    for name, t in head.items():
        if t["dtype"] != "F32":
            raise SystemExit("serve_torch: %s is %s, expected F32" % (name, t["dtype"]))
        a, b = t["data_offsets"]
        weights[name] = torch.from_numpy(
            np.frombuffer(raw[base + a:base + b].tobytes(), dtype=np.float32).reshape(t["shape"]).copy())
    tables, cats, bags, n_dense = {}, [], [], 0
    for f in schema["features"]:
        owner = f["share"] or f["name"]
        if f["type"] in ("categorical", "bucketized", "multi") and not f["share"]:
            tables[f["name"]] = tuple(weights["emb." + f["name"]].shape)
        if f["type"] in ("categorical", "bucketized"):
            cats.append(owner)
        elif f["type"] == "multi":
            bags.append((owner, BAG_LEN.get(f["name"], 3)))
        else:
            n_dense += 1
    heads = cfg["heads"]
    if [h["tower"] for h in heads] != list(range(len(heads))):
        raise SystemExit("serve_torch: the twin expects one head per tower, in order")
    return dict(name="movielens", tables=tables, cats=cats, bags=bags, n_dense=n_dense,
                experts=cfg["experts"], expert_layers=cfg["expert_layers"],
                tower_layers=cfg["tower_layers"], binary=[h["kind"] == "binary" for h in heads],
                head_names=[h["name"] for h in heads], weights=weights)


# ---- the twin --------------------------------------------------------------------

class Twin(nn.Module):
    """Inference forward of an MMoE ranker on tensors: ids per fused table
    group (B, n_g), one (B, L) id block per bag, dense (B, n_dense), as
    flat arguments in that order; returns
    (B, K) predictions (sigmoid for binary heads, values for regression)."""

    def __init__(self, spec):
        super().__init__()
        dims = sorted({d for _, d in spec["tables"].values()}, reverse=True)
        self.dims = dims
        first, rows = {}, {d: 0 for d in dims}
        for name, (r, d) in spec["tables"].items():
            first[name] = (dims.index(d), rows[d])
            rows[d] += r
        self.first, self.table_rows = first, {n: r for n, (r, _) in spec["tables"].items()}
        self.tables = nn.ParameterList([nn.Parameter(torch.empty(rows[d], d).uniform_(-0.05, 0.05))
                                        for d in dims])
        # twin column order: cat slots grouped by width (widest first), bags, dense
        self.cat_groups = [[i for i, t in enumerate(spec["cats"]) if first[t][0] == g]
                           for g in range(len(dims))]
        self.cat_groups = [(g, idx) for g, idx in enumerate(self.cat_groups) if idx]
        self.bag_groups = [first[t][0] for t, _ in spec["bags"]]
        c_in = spec["n_dense"] + sum(spec["tables"][t][1] for t in spec["cats"])
        c_in += sum(spec["tables"][t][1] for t, _ in spec["bags"])
        self.c_in = c_in
        E, H, T = spec["experts"], spec["expert_layers"], spec["tower_layers"]
        K = len(spec["binary"])
        self.E, self.H, self.K = E, H, K
        self.expert0 = nn.Linear(c_in, E * H[0])
        self.expert_w = nn.ParameterList()
        self.expert_b = nn.ParameterList()
        for i in range(1, len(H)):
            bd = 1.0 / math.sqrt(H[i - 1])
            self.expert_w.append(nn.Parameter(torch.empty(E, H[i - 1], H[i]).uniform_(-bd, bd)))
            self.expert_b.append(nn.Parameter(torch.empty(E, 1, H[i]).uniform_(-bd, bd)))
        self.gates = nn.Linear(c_in, K * E)
        # towers of all tasks as one batched matmul per layer: (K, in, out)
        self.tower_w = nn.ParameterList()
        self.tower_b = nn.ParameterList()
        prev = H[-1]
        for w in T + [1]:  # the last "layer" is the heads
            bd = 1.0 / math.sqrt(prev)
            self.tower_w.append(nn.Parameter(torch.empty(K, prev, w).uniform_(-bd, bd)))
            self.tower_b.append(nn.Parameter(torch.empty(K, 1, w).uniform_(-bd, bd)))
            prev = w
        self.register_buffer("binary", torch.tensor(spec["binary"]))
        if spec.get("weights") is not None:
            self._load(spec)

    def _load(self, spec):
        """crossrec's tensors into the twin: tables concatenated by width,
        first-layer columns permuted from crossrec's x order (cat slots in
        schema order, bags, dense) to the twin's, per-expert and per-tower
        weights transposed for the batched matmuls."""
        w = spec["weights"]
        with torch.no_grad():
            for name, (g, r0) in self.first.items():
                t = w["emb." + name]
                self.tables[g][r0:r0 + t.shape[0]] = t
            cr_col, col = [], 0  # crossrec's first column of each cat slot, bag, dense
            for t in spec["cats"]:
                cr_col.append(list(range(col, col + spec["tables"][t][1])))
                col += spec["tables"][t][1]
            bag_col = []
            for t, _ in spec["bags"]:
                bag_col.append(list(range(col, col + spec["tables"][t][1])))
                col += spec["tables"][t][1]
            perm = [c for _, idx in self.cat_groups for i in idx for c in cr_col[i]]
            perm += [c for b in bag_col for c in b] + list(range(col, col + spec["n_dense"]))
            assert sorted(perm) == list(range(self.c_in))
            perm = torch.tensor(perm)
            self.expert0.weight.copy_(w["experts.l0.weight"][:, perm])
            self.expert0.bias.copy_(w["experts.l0.bias"])
            for i in range(1, len(self.H)):
                self.expert_w[i - 1].copy_(w["experts.l%d.weight" % i].transpose(1, 2))
                self.expert_b[i - 1].copy_(w["experts.l%d.bias" % i].unsqueeze(1))
            self.gates.weight.copy_(torch.cat([w["gates.%d.weight" % k] for k in range(self.K)])[:, perm])
            self.gates.bias.copy_(torch.cat([w["gates.%d.bias" % k] for k in range(self.K)]))
            L = len(self.tower_w) - 1
            for i in range(L):
                self.tower_w[i].copy_(torch.stack([w["towers.%d.l%d.weight" % (k, i)].t()
                                                   for k in range(self.K)]))
                self.tower_b[i].copy_(torch.stack([w["towers.%d.l%d.bias" % (k, i)].unsqueeze(0)
                                                   for k in range(self.K)]))
            names = spec["head_names"]
            self.tower_w[L].copy_(torch.stack([w["heads.%s.weight" % n].t() for n in names]))
            self.tower_b[L].copy_(torch.stack([w["heads.%s.bias" % n].view(1, 1) for n in names]))

    def forward(self, *xs):
        # xs: the cat id blocks, then the bag id blocks, then dense, as flat
        # tensors (what torch.jit.trace and torch.onnx.export take)
        nc = len(self.cat_groups)
        dense = xs[-1]
        B = dense.shape[0]
        parts = []
        for j, (g, _) in enumerate(self.cat_groups):
            parts.append(F.embedding(xs[j], self.tables[g]).reshape(B, -1))
        for j, g in enumerate(self.bag_groups):
            parts.append(F.embedding(xs[nc + j], self.tables[g]).mean(1))
        parts.append(dense)
        x = torch.cat(parts, 1)
        h = F.relu(self.expert0(x)).view(B, self.E, self.H[0]).transpose(0, 1)  # (E, B, H0)
        for w, b in zip(self.expert_w, self.expert_b):
            h = F.relu(torch.baddbmm(b, h, w))                                   # (E, B, Hi)
        g = torch.softmax(self.gates(x).view(B, self.K, self.E), -1)             # (B, K, E)
        t = torch.bmm(g, h.transpose(0, 1)).transpose(0, 1)                      # (K, B, He)
        n = len(self.tower_w)
        for i, (w, b) in enumerate(zip(self.tower_w, self.tower_b)):
            t = torch.baddbmm(b, t, w)
            if i < n - 1:
                t = F.relu(t)
        z = t.squeeze(2).t()                                                     # (B, K)
        return torch.where(self.binary, torch.sigmoid(z), z)


def make_inputs(spec, model, B, rng):
    """The forward's flat inputs for B candidates: cat id blocks per
    group, bag id blocks, dense."""
    def zipf(rows, shape):
        p = np.arange(1, rows + 1, dtype=np.float64) ** -1.05
        cdf = np.cumsum(p / p.sum())
        r = np.minimum(np.searchsorted(cdf, rng.random(shape), side="right"), rows - 1)
        return ((r.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(rows)).astype(np.int64)
    cats = []
    for g, idx in model.cat_groups:
        cols = []
        for i in idx:
            t = spec["cats"][i]
            cols.append(zipf(model.table_rows[t], (B,)) + model.first[t][1])
        cats.append(torch.from_numpy(np.stack(cols, 1)))
    bags = [torch.from_numpy(zipf(model.table_rows[t], (B, L)) + model.first[t][1])
            for t, L in spec["bags"]]
    dense = torch.from_numpy(rng.standard_normal((B, spec["n_dense"])).astype(np.float32))
    return tuple(cats + bags + [dense])


def fwd_macs(spec, c_in, B):
    """Multiply-adds of the forward GEMMs, as serve_latency.c counts them."""
    E, H, K = spec["experts"], spec["expert_layers"], len(spec["binary"])
    m = B * c_in * (E * H[0] + K * E) + sum(E * B * H[i] * H[i - 1] for i in range(1, len(H)))
    prev = H[-1]
    for w in spec["tower_layers"]:
        m += K * B * prev * w
        prev = w
    return m + K * B * prev


def build(model_arg, seed=42):
    torch.manual_seed(seed)
    spec = reference_spec() if model_arg == "reference" else checkpoint_spec(model_arg)
    return spec, Twin(spec).eval()


def measure(fn, args, seconds):
    """Warm up (10 calls: TorchScript's profiling executor optimises after
    the first few), then time every call for `seconds`, at least 20."""
    for _ in range(10):
        fn(*args)
    lat = []
    s0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - s0 < seconds or len(lat) < 20:
        t0 = time.perf_counter()
        fn(*args)
        lat.append(1e3 * (time.perf_counter() - t0))
    wall, cpu = time.perf_counter() - s0, time.process_time() - c0
    lat.sort()
    n = len(lat)
    return lat[(n - 1) // 2], lat[int((n - 1) * 0.99)], wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default="reference", help="reference or a checkpoint path")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per mode and size")
    a = ap.parse_args()
    if a.threads < 1 or not (0 < a.seconds <= 3600):
        ap.error("--threads >= 1, --seconds in (0, 3600]")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    spec, model = build(a.model)
    rng = np.random.default_rng(1234)
    inputs = {B: make_inputs(spec, model, B, rng) for B in SIZES}
    print("impl: torch")
    print("model: %s" % spec["name"])
    print("threads: %d" % torch.get_num_threads())
    print("torch_version: %s" % torch.__version__)
    print("input_width: %d" % model.c_in)
    # One backward pass before timing. In a fresh process this PyTorch's
    # fp32 GEMMs ran at less than half their speed on the project's machine:
    # F.linear of 1000x429 by 1024x429 on one thread took 20.2, 24.1 and
    # 21.7 ms in three processes, and 9.8, 18.8 and 9.0 ms in the same
    # processes after 20 Adam steps (the cause was not found). The warm-up
    # gives the twin its better case; it does not guarantee it.
    out = model(*inputs[SIZES[-1]])
    (out[0] if isinstance(out, (tuple, list)) else out).float().sum().backward()
    model.zero_grad(set_to_none=True)
    wall = cpu = 0.0
    with torch.inference_mode():
        # traced on 10 rows; the batch dimension stays symbolic in the graph
        script = torch.jit.freeze(torch.jit.trace(model, inputs[10]))
        for B in SIZES:
            flops = 2.0 * fwd_macs(spec, model.c_in, B)
            print("n%d_gflop_per_call: %.6f" % (B, flops * 1e-9))
            ref = model(*inputs[B])
            diff = float((script(*inputs[B]) - ref).abs().max())
            print("torch_script_n%d_max_abs_diff: %.3g" % (B, diff))
            for name, fn in (("torch_eager", model), ("torch_script", script)):
                p50, p99, w, c = measure(fn, inputs[B], a.seconds)
                wall, cpu = wall + w, cpu + c
                print("%s_n%d_p50_ms: %.4f" % (name, B, p50))
                print("%s_n%d_p99_ms: %.4f" % (name, B, p99))
                print("%s_n%d_gflops: %.2f" % (name, B, flops / (p50 * 1e-3) * 1e-9))
    print("cpu_util: %.2f" % (cpu / wall))


if __name__ == "__main__":
    main()
