#!/usr/bin/python3
"""rank_torch.py - the PyTorch twin of bench/rank.c: the same two rankers
(reference and MovieLens-shaped), the same synthetic data distribution, the
same optimizers and measurements, printed under the same `name: value`
names so scripts/bench.sh can set the two side by side.

It is written to be the fastest honest PyTorch version of the model, not a
literal transcription: tables of equal width are fused into one sparse
embedding (one lookup, one sparse gradient, one optimizer update instead of
one per feature; the rows and their updates are the same), the gates of all
tasks are one Linear, the mix is one bmm. The computation is the one in
src/rank/ranker.c; only the order of the input columns differs (features are
grouped by table width), which is a relabelling of the first layer's weight.

Run with Debian's /usr/bin/python3 (python3-torch 1.13) and, for threads
that obey torch.set_num_threads, the OpenMP OpenBLAS:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
        /usr/bin/python3 bench/rank_torch.py --threads 1 --model reference
"""

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

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


def layout(spec):
    """Tables (own rows, dim), grouped by dim into fused tables: for every
    table its (group, first row); for every feature its table."""
    tables, table_of = [], {}
    for f in spec["feats"]:
        if f.get("share"):
            table_of[f["name"]] = table_of[f["share"]]
        else:
            table_of[f["name"]] = len(tables)
            tables.append((f["rows"], f["dim"]))
    dims = sorted({d for _, d in tables}, reverse=True)
    group_rows = {d: 0 for d in dims}
    place = []
    for rows, d in tables:
        place.append((dims.index(d), group_rows[d]))
        group_rows[d] += rows
    return tables, table_of, dims, [group_rows[d] for d in dims], place


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
    """Everything the model reads, as tensors, ready before any timing."""

    def __init__(self, spec, lay, B, z, rng):
        tables, table_of, dims, _, place = lay
        draws = [zipf_sampler(rows, z, rng) for rows, _ in tables]
        self.B = B
        # categorical ids per fused group, (B, n_cat_in_group), rows offset into the group
        cats = [[] for _ in dims]
        self.bags = []  # (group, ids (B, L) offset into the group)
        for f in spec["feats"]:
            t = table_of[f["name"]]
            g, first = place[t]
            if f["kind"] == "cat":
                cats[g].append(draws[t]((B,)) + first)
            else:
                self.bags.append((g, torch.from_numpy(draws[t]((B, f["bag"])) + first)))
        self.cats = [(g, torch.from_numpy(np.stack(c, 1))) for g, c in enumerate(cats) if c]
        self.dense = torch.from_numpy(rng.standard_normal((B, spec["n_dense"])).astype(np.float32))
        self.labels = []
        for _, kind in spec["tasks"]:
            if kind == "binary":
                y = rng.integers(0, 2, B).astype(np.float32)
            else:
                y = rng.standard_normal(B).astype(np.float32)
            self.labels.append(torch.from_numpy(y))


# ---- the model ----

class Ranker(nn.Module):
    def __init__(self, spec, lay, emb_init=0.05):
        super().__init__()
        tables, table_of, dims, group_rows, _ = lay
        self.tables = nn.ParameterList(
            [nn.Parameter(torch.empty(r, d).uniform_(-emb_init, emb_init))
             for r, d in zip(group_rows, dims)])
        c_in = spec["n_dense"]
        for f in spec["feats"]:
            c_in += tables[table_of[f["name"]]][1]
        self.c_in = c_in
        E, H = spec["experts"], spec["expert_layers"]
        self.E, self.H = E, H
        self.K = len(spec["tasks"])
        # expert layer 0 of all experts stacked: one (C_in -> E*H0) GEMM
        self.expert0 = nn.Linear(c_in, E * H[0])
        # later layers per expert as one batched matmul, weights (E, H_i, H_{i-1})
        self.expert_w = nn.ParameterList()
        self.expert_b = nn.ParameterList()
        for i in range(1, len(H)):
            bound = 1.0 / math.sqrt(H[i - 1])
            self.expert_w.append(nn.Parameter(torch.empty(E, H[i], H[i - 1]).uniform_(-bound, bound)))
            self.expert_b.append(nn.Parameter(torch.empty(E, 1, H[i]).uniform_(-bound, bound)))
        self.gates = nn.Linear(c_in, self.K * E)  # every task's gate in one GEMM
        towers, heads = [], []
        for _ in range(self.K):
            layers, prev = [], H[-1]
            for w in spec["tower_layers"]:
                layers += [nn.Linear(prev, w), nn.ReLU()]
                prev = w
            towers.append(nn.Sequential(*layers))
            heads.append(nn.Linear(prev, 1))
        self.towers = nn.ModuleList(towers)
        self.heads = nn.ModuleList(heads)
        self.kinds = [k for _, k in spec["tasks"]]

    def forward(self, d):
        B = d.B
        parts = [F.embedding(ids, self.tables[g], sparse=True).reshape(B, -1) for g, ids in d.cats]
        parts += [F.embedding_bag(ids, self.tables[g], mode="mean", sparse=True) for g, ids in d.bags]
        parts.append(d.dense)
        x = torch.cat(parts, 1)
        h = F.relu(self.expert0(x)).view(B, self.E, self.H[0]).transpose(0, 1)  # (E, B, H0)
        for w, b in zip(self.expert_w, self.expert_b):
            h = F.relu(torch.baddbmm(b, h, w.transpose(1, 2)))                  # (E, B, Hi)
        g = torch.softmax(self.gates(x).view(B, self.K, self.E), -1)             # (B, K, E)
        mix = torch.bmm(g, h.transpose(0, 1))                                    # (B, K, He)
        return [head(tower(mix[:, k])).squeeze(1)
                for k, (tower, head) in enumerate(zip(self.towers, self.heads))]

    def loss(self, outs, d):
        total = 0
        for o, y, kind in zip(outs, d.labels, self.kinds):
            total = total + (F.binary_cross_entropy_with_logits(o, y) if kind == "binary"
                             else F.mse_loss(o, y))
        return total

    def predict(self, d):
        return [torch.sigmoid(o) if k == "binary" else o for o, k in zip(self.forward(d), self.kinds)]


def fwd_macs(spec, c_in, B):
    """Multiply-adds of the forward GEMMs, counted as rank.c counts them."""
    E, H, K = spec["experts"], spec["expert_layers"], len(spec["tasks"])
    m = B * c_in * E * H[0] + sum(E * B * H[i] * H[i - 1] for i in range(1, len(H)))
    m += K * B * E * c_in
    prev = H[-1]
    for w in spec["tower_layers"]:
        m += K * B * prev * w
        prev = w
    return m + K * B * prev


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
    lay = layout(spec)
    rng = np.random.default_rng(1234)
    pool = [Data(spec, lay, TRAIN_B, a.zipf, rng) for _ in range(POOL)]
    req = Data(spec, lay, SCORE_B, a.zipf, rng)
    model = Ranker(spec, lay)
    dense = [p for n, p in model.named_parameters() if not n.startswith("tables.")]
    dense_opt = torch.optim.Adam(dense, lr=1e-3)
    if a.sparse_opt == "adagrad":
        sparse_opt = torch.optim.Adagrad(list(model.tables), lr=0.01)
    else:
        sparse_opt = torch.optim.SparseAdam(list(model.tables), lr=1e-3)

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
                loss = model.loss(model(d), d)
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
            model.loss(model(d), d).backward()
        dense_opt.zero_grad(set_to_none=True)
        sparse_opt.zero_grad(set_to_none=True)
    if a.part != "train":
        model.eval()
        with torch.inference_mode():
            for _ in range(3):
                model.predict(req)
            s0, cpu0 = time.perf_counter(), time.process_time()
            while time.perf_counter() - s0 < a.seconds or len(lat) < 20:
                t0 = time.perf_counter()
                model.predict(req)
                lat.append(time.perf_counter() - t0)
            score_s = time.perf_counter() - s0
            score_cpu = time.process_time() - cpu0
        lat.sort()

    train_flops = 6.0 * fwd_macs(spec, model.c_in, TRAIN_B)
    score_flops = 2.0 * fwd_macs(spec, model.c_in, SCORE_B)
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
