#!/usr/bin/python3
"""rank_torch.py - the PyTorch twin of bench/rank.c: the same two rankers
(reference and MovieLens-shaped), the same synthetic data distribution, the
same optimizers and measurements, printed under the same `name: value`
names so scripts/bench.sh can set the two side by side.

The model is tools/torch_ranker.py, the twin tests/test_twin_rank.c checks
against the C ranker (outputs, gradients, optimizer steps) through the
fixtures tools/twin_rank.py writes. Its one formulation is the fastest
honest PyTorch version we have: tables of equal width fused into one sparse
embedding (one lookup, one sparse gradient, one optimizer update instead of
one per feature; the rows and their updates are the same), expert layer 0
one GEMM, later expert layers and the towers batched matmuls, the gates of
all tasks one Linear, the mix one bmm. The input columns are grouped by
table width, a relabelling of the first layers' weights.

What it times: a training step (zero_grad, forward and loss, backward,
Adam on the dense parameters, Adagrad or SparseAdam on the tables) on
batches of 512, and scoring 1000 candidates (the served heads' predictions
under torch.inference_mode).

Run with Debian's /usr/bin/python3 (python3-torch 1.13) and, for threads
that obey torch.set_num_threads, the OpenMP OpenBLAS:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/rank_torch.py --threads 1 --model reference
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import torch_ranker  # noqa: E402

TRAIN_B = 512
SCORE_B = 1000
POOL = 8


# ---- the two models (mirrors bench_reference / bench_movielens in rank.c) ----

def reference_model():
    feats = [dict(name="c%02d" % (i + 1), kind="cat", rows=10000, dim=16) for i in range(26)]
    return dict(name="reference", feats=feats, n_dense=13,
                tasks=[("click", "binary"), ("like", "binary"), ("share", "binary")],
                experts=4, expert_layers=[256, 128], tower_layers=[64])


def movielens_model():
    feats = [
        dict(name="user", kind="cat", rows=671, dim=16),
        dict(name="item", kind="cat", rows=9066, dim=16),
        dict(name="last_items", kind="multi", share="item", bag=5),
        dict(name="genres", kind="multi", rows=20, dim=8, bag=5),
        dict(name="hour_of_day", kind="cat", rows=25, dim=8),
        dict(name="day_of_week", kind="cat", rows=8, dim=8),
        dict(name="year", kind="cat", rows=12, dim=8),
        dict(name="director", kind="cat", rows=1000, dim=8),
        dict(name="mpaa", kind="cat", rows=8, dim=8),
        dict(name="major_genre", kind="cat", rows=21, dim=8),
        dict(name="language", kind="cat", rows=40, dim=8),
        dict(name="country", kind="cat", rows=60, dim=8),
    ]
    return dict(name="movielens", feats=feats, n_dense=10,
                tasks=[("click", "binary"), ("like", "binary"),
                       ("engagement", "regression"), ("discovery", "binary")],
                experts=4, expert_layers=[64, 32], tower_layers=[32])


def build_model(spec):
    """The shared twin (tools/torch_ranker.py) for a bench model: an MMoE
    with one served head per task, fixed weights of 1."""
    tables, table_of, cats, bags = [], {}, [], []
    for f in spec["feats"]:
        if f.get("share"):
            table_of[f["name"]] = table_of[f["share"]]
        else:
            table_of[f["name"]] = len(tables)
            tables.append((f["name"], f["rows"], f["dim"]))
    for f in spec["feats"]:
        if f["kind"] == "cat":
            cats.append((f["name"], table_of[f["name"]]))
    for f in spec["feats"]:
        if f["kind"] == "multi":
            bags.append((f["name"], table_of[f["name"]], "mean"))
    mspec = torch_ranker.make_spec(tables, cats, bags, spec["n_dense"], len(spec["tasks"]))
    cfg = dict(arch="mmoe", experts=spec["experts"], expert_layers=spec["expert_layers"],
               tower_layers=spec["tower_layers"], loss_weighting="fixed",
               heads=torch_ranker.default_heads(spec["tasks"]))
    model = torch_ranker.Ranker(mspec, cfg, sparse=True)
    model.reset_parameters(emb_init=0.05)
    return model


# ---- synthetic data (same law as rank.c: Zipf per table, rank -> permuted row) ----

def zipf_sampler(rows, z, rng):
    p = np.arange(1, rows + 1, dtype=np.float64) ** -z
    cdf = np.cumsum(p / p.sum())

    def draw(shape):
        r = np.searchsorted(cdf, rng.random(shape), side="right")
        r = np.minimum(r, rows - 1).astype(np.uint64)
        return ((r * np.uint64(2654435761)) % np.uint64(rows)).astype(np.int64)
    return draw


class Data:
    """Everything the model reads, as tensors in the twin's input layout,
    ready before any timing."""

    def __init__(self, spec, model, B, z, rng):
        draws = [zipf_sampler(t["rows"], z, rng) for t in model.spec["tables"]]
        table_of = {f["name"]: f["table"] for f in model.spec["cats"] + model.spec["bags"]}
        self.B = B
        cat, bags = [], []
        for f in spec["feats"]:  # drawn in declaration order
            t = table_of[f["name"]]
            if f["kind"] == "cat":
                cat.append(draws[t]((B,)))
            else:
                bags.append(torch.from_numpy(draws[t]((B, f["bag"]))))
        self.cats, self.bags = model.encode(torch.from_numpy(np.stack(cat, 1)), bags)
        self.dense = torch.from_numpy(rng.standard_normal((B, spec["n_dense"])).astype(np.float32))
        labels = []
        for _, kind in spec["tasks"]:
            if kind == "binary":
                y = rng.integers(0, 2, B).astype(np.float32)
            else:
                y = rng.standard_normal(B).astype(np.float32)
            labels.append(torch.from_numpy(y))
        self.labels = torch.stack(labels)


def train_loss(model, d):
    """The C ranker's loss with every mask and weight 1: the sum over the
    heads of the mean BCE (binary) or squared error (regression)."""
    return model.loss(model(d.cats, d.bags, d.dense), d.labels)[0]


def _number(v):
    """Formatted numbers back to numbers for JSON; names stay strings."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--model", choices=["reference", "movielens"], default="reference")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="measuring time of each of training and scoring")
    ap.add_argument("--zipf", type=float, default=1.05, help="id skew, 0 = uniform")
    ap.add_argument("--sparse-opt", choices=["adagrad", "lazy_adam"], default="adagrad")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="training forward under torch.autocast('cpu', bfloat16) with bf16")
    ap.add_argument("--part", choices=["all", "train", "score"], default="all",
                    help="what to measure")
    ap.add_argument("--json", action="store_true", help="one JSON object")
    a = ap.parse_args()
    if a.threads < 1 or not (0 < a.seconds <= 3600) or not (0 <= a.zipf <= 4):
        ap.error("--threads >= 1, --seconds in (0, 3600], --zipf in [0, 4]")
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)

    spec = reference_model() if a.model == "reference" else movielens_model()
    model = build_model(spec)
    rng = np.random.default_rng(1234)
    pool = [Data(spec, model, TRAIN_B, a.zipf, rng) for _ in range(POOL)]
    req = Data(spec, model, SCORE_B, a.zipf, rng)
    dense = model.dense_params()
    dense_opt = torch.optim.Adam(dense, lr=1e-3)
    if a.sparse_opt == "adagrad":
        sparse_opt = torch.optim.Adagrad(model.table_params(), lr=0.01)
    else:
        sparse_opt = torch.optim.SparseAdam(model.table_params(), lr=1e-3)

    # ---- training: warm up, then time every step ----
    phase = [0.0] * 4  # zero_grad + forward + loss, backward, dense opt, sparse opt
    step_t, train_s, train_cpu, loss = [], 0.0, 0.0, None
    if a.part != "score":
        it, measuring = 0, False
        warm_s = min(0.5, 0.1 * a.seconds)
        t_start = time.perf_counter()
        t_meas, cpu0 = t_start, 0.0
        while True:
            d = pool[it % POOL]
            t0 = time.perf_counter()
            if not measuring and t0 - t_start >= warm_s and it >= 3:
                measuring, t_meas, cpu0 = True, t0, time.process_time()
            if measuring and t0 - t_meas >= a.seconds:
                break
            dense_opt.zero_grad(set_to_none=True)
            sparse_opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                loss = train_loss(model, d)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            dense_opt.step()
            t3 = time.perf_counter()
            sparse_opt.step()
            t4 = time.perf_counter()
            if measuring:
                phase[0] += t1 - t0
                phase[1] += t2 - t1
                phase[2] += t3 - t2
                phase[3] += t4 - t3
                step_t.append(t4 - t0)
            it += 1
        train_s = time.perf_counter() - t_meas
        train_cpu = time.process_time() - cpu0
        loss = float(loss)
        if not math.isfinite(loss):
            sys.exit("rank_torch: the training loss is %g" % loss)
        step_t.sort()

    # ---- scoring 1000 candidates ----
    lat, score_s, score_cpu = [], 0.0, 0.0
    if a.part == "score":
        # backward passes first, as training would have run: in a process
        # that never ran one, this PyTorch's fp32 GEMMs usually took twice
        # as long (bench/serve_torch.py has the measurement)
        for i in range(5):
            d = pool[i % POOL]
            dense_opt.zero_grad(set_to_none=True)
            sparse_opt.zero_grad(set_to_none=True)
            train_loss(model, d).backward()
        dense_opt.zero_grad(set_to_none=True)
        sparse_opt.zero_grad(set_to_none=True)
    if a.part != "train":
        model.eval()
        with torch.inference_mode():
            for _ in range(3):
                model.predict(req.cats, req.bags, req.dense)
            s0, cpu0 = time.perf_counter(), time.process_time()
            while time.perf_counter() - s0 < a.seconds or len(lat) < 20:
                t0 = time.perf_counter()
                model.predict(req.cats, req.bags, req.dense)
                lat.append(time.perf_counter() - t0)
            score_s = time.perf_counter() - s0
            score_cpu = time.process_time() - cpu0
        lat.sort()

    train_flops = 6.0 * model.fwd_macs(TRAIN_B)
    score_flops = 2.0 * model.fwd_macs(SCORE_B)
    out = [
        ("impl", "torch"), ("model", spec["name"]), ("threads", torch.get_num_threads()),
        ("torch_version", torch.__version__),
        ("ids", "zipf_%.2f" % a.zipf if a.zipf > 0 else "uniform"),
        ("precision", a.precision), ("sparse_opt", a.sparse_opt), ("input_width", model.c_in),
        ("dense_params", sum(p.numel() for p in dense)),
        ("table_params", sum(p.numel() for p in model.tables)),
        ("train_batch", TRAIN_B),
    ]
    if step_t:
        n = len(step_t)
        p50, mean = step_t[(n - 1) // 2], train_s / n
        out += [
            ("train_steps", n),
            ("train_examples_per_s", "%.1f" % (TRAIN_B / p50)),
            ("train_examples_per_s_mean", "%.1f" % (TRAIN_B / mean)),
            ("train_step_p50_ms", "%.3f" % (1e3 * p50)),
            ("train_step_mean_ms", "%.3f" % (1e3 * mean)),
            ("train_fwd_ms", "%.3f" % (1e3 * phase[0] / n)),
            ("train_bwd_ms", "%.3f" % (1e3 * phase[1] / n)),
            ("train_dense_opt_ms", "%.3f" % (1e3 * phase[2] / n)),
            ("train_sparse_opt_ms", "%.3f" % (1e3 * phase[3] / n)),
            ("train_cpu_util", "%.2f" % (train_cpu / train_s)),
            ("train_loss", "%.5f" % loss),
            ("train_gflop_per_step", "%.4f" % (train_flops * 1e-9)),
            ("train_gflops", "%.2f" % (train_flops / p50 * 1e-9)),
        ]
    out.append(("score_batch", SCORE_B))
    if lat:
        n = len(lat)
        p50, p99 = lat[(n - 1) // 2], lat[int((n - 1) * 0.99)]
        out += [
            ("score_calls", n),
            ("score1000_p50_ms", "%.3f" % (1e3 * p50)),
            ("score1000_p99_ms", "%.3f" % (1e3 * p99)),
            ("score_cpu_util", "%.2f" % (score_cpu / score_s)),
            ("score_gflop_per_call", "%.4f" % (score_flops * 1e-9)),
            ("score_gflops", "%.2f" % (score_flops / p50 * 1e-9)),
        ]
    if a.json:
        print(json.dumps({k: _number(v) for k, v in out}))
    else:
        for k, v in out:
            print("%s: %s" % (k, v))


if __name__ == "__main__":
    main()
