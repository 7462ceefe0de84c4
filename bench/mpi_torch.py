#!/usr/bin/python3
"""mpi_torch.py - the PyTorch side of bench/mpi.sh: the reference ranker of
bench/rank_torch.py (26 tables of 10,000 x 16, 13 dense, MMoE 4 x [256, 128],
3 tasks) trained with DistributedDataParallel over the gloo backend, a
global batch of 512 split over the ranks, one thread each. Also writes the
CSV that crossrec trains on in the same run (`data`), drawn from the same
law (Zipf ids per table, N(0, 1) dense values, Bernoulli(0.5) labels).

    mpi_torch.py data --rows 40960 --out ref.csv
    mpi_torch.py ddp --world 2 --steps 60

Prints `name: value` lines: examples/s (global batch over the mean step,
after 5 warm-up steps), the step time, and the bytes DDP's gradient
exchange carries per step (dense, and the sparse tables' indices + values).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def write_data(rows, out, zipf, seed):
    from rank_torch import reference_model, zipf_sampler
    spec = reference_model()
    rng = np.random.default_rng(seed)
    cols, names = [], []
    n_valid = max(rows // 100, 64)
    split = np.array(["train"] * rows + ["valid"] * n_valid + ["test"] * n_valid)
    n = len(split)
    names.append("split")
    cols.append(split)
    for f in spec["feats"]:
        names.append(f["name"])
        cols.append(zipf_sampler(f["rows"], zipf, rng)((n,)).astype(str))
    for i in range(spec["n_dense"]):
        names.append("d%02d" % (i + 1))
        cols.append(np.char.mod("%.4f", rng.standard_normal(n)))
    for t, _ in spec["tasks"]:
        names.append(t)
        cols.append(rng.integers(0, 2, n).astype(str))
    with open(out + ".tmp", "w") as f:
        f.write(",".join(names) + "\n")
        for r in zip(*cols):
            f.write(",".join(r) + "\n")
    os.replace(out + ".tmp", out)


def ddp_worker(rank, world, steps, port, zipf, q):
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from rank_torch import Data, Ranker, layout, reference_model
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(42)
    spec = reference_model()
    lay = layout(spec)
    B = 512 // world
    rng = np.random.default_rng(1234 + rank)
    pool = [Data(spec, lay, B, zipf, rng) for _ in range(8)]
    model = Ranker(spec, lay)
    # DDP buckets dense gradients only when the tables are F.embedding
    # parameters (it detects sparse ones on nn.Embedding modules): it
    # reduces the dense ones, overlapped with backward, and the tables'
    # sparse gradients are all-reduced after (gloo's sparse allreduce, an
    # all-gather of indices and values, as DDP does for sparse parameters)
    tables = ["tables.%d" % i for i in range(len(model.tables))]
    DDP._set_params_and_buffers_to_ignore_for_model(model, tables)
    ddp = DDP(model)
    dense = [p for n, p in model.named_parameters() if not n.startswith("tables.")]
    dense_opt = torch.optim.Adam(dense, lr=1e-3)
    sparse_opt = torch.optim.Adagrad(list(model.tables), lr=0.01)
    n_dense = sum(p.numel() for p in dense)
    times, sparse_bytes = [], 0.0
    for it in range(steps + 5):
        d = pool[it % 8]
        dist.barrier()
        t0 = time.perf_counter()
        dense_opt.zero_grad(set_to_none=True)
        sparse_opt.zero_grad(set_to_none=True)
        loss = model.loss(ddp(d), d)
        loss.backward()
        if world > 1:
            for t in model.tables:
                t.grad = t.grad.coalesce()
                dist.all_reduce(t.grad)
                t.grad = t.grad / world  # the mean over ranks, as DDP's dense buckets
        dense_opt.step()
        sparse_opt.step()
        t1 = time.perf_counter()
        if it >= 5:
            times.append(t1 - t0)
            for t in model.tables:
                g = t.grad.coalesce()
                sparse_bytes += g._nnz() * (t.shape[1] * 4 + 8)
    if rank == 0:
        mean = sum(times) / len(times)
        q.put({"ddp_world": world, "ddp_step_ms": mean * 1e3,
               "ddp_examples_per_s": 512 / mean,
               "ddp_dense_bytes_per_step": n_dense * 4 if world > 1 else 0,
               "ddp_sparse_bytes_per_step": sparse_bytes / len(times) if world > 1 else 0,
               "ddp_loss": float(loss)})
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--rows", type=int, default=40960)
    d.add_argument("--out", required=True)
    d.add_argument("--zipf", type=float, default=1.05)
    d.add_argument("--seed", type=int, default=7)
    r = sub.add_parser("ddp")
    r.add_argument("--world", type=int, default=2)
    r.add_argument("--steps", type=int, default=60)
    r.add_argument("--zipf", type=float, default=1.05)
    r.add_argument("--port", type=int, default=29517)
    a = ap.parse_args()
    if a.cmd == "data":
        write_data(a.rows, a.out, a.zipf, a.seed)
        return
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=ddp_worker, args=(r_, a.world, a.steps, a.port, a.zipf, q))
             for r_ in range(a.world)]
    for p in procs:
        p.start()
    res = q.get()
    for p in procs:
        p.join()
    for k, v in res.items():
        print("%s: %s" % (k, ("%.6g" % v) if isinstance(v, float) else v))


if __name__ == "__main__":
    main()
