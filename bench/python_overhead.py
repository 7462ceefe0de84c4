#!/usr/bin/env python3
"""python_overhead.py - what the Python package adds to the C API, and Dask
batch scoring against the command, in one run (a bench, not a test).

1. Serving: the same request (the first 10, 100 and 1000 rows of the
   MovieLens impressions, context columns from the first row) scored
   through Model.score_request from a DataFrame, and through
   cr_model_score_request by bench/serve_latency (its api_fp32 path), one
   thread each. Prints p50s and the package's overhead as a ratio.
2. Threads: two Python threads scoring 1000 rows each with one model at
   once, against the same two calls in a row (one OpenMP thread per call):
   the GIL is released while the library computes, so the pair should take
   well under the sum (ideally 0.5x on two free cores).
3. Batch: rows/s of `crossrec score` over the whole impressions file (one
   process, one thread) against crossrec.dask.score on a LocalCluster of 1
   and 2 single-threaded workers.

    bench/python_overhead.py [--build build] [--seconds 2] [--skip-dask]

Needs a trained MovieLens model (out/movielens, `make demo` or the README
tour); builds it if missing.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTEXT = ["user_id", "hist_count", "hist_mean_rating", "hist_top_genres", "last_items",
           "days_since_first", "hour_of_day", "day_of_week"]  # as bench/serve_latency.c


def cpu_name():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def run(*args, **kw):
    return subprocess.run(list(map(str, args)), check=True, capture_output=True, text=True, **kw)


def p50(fn, seconds):
    fn()
    lat, t_end = [], time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(lat) < 20:
        t0 = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t0)
    return statistics.median(lat) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--skip-dask", action="store_true")
    a = ap.parse_args()
    build = os.path.join(ROOT, a.build)
    os.environ["CROSSREC_LIBRARY"] = os.path.join(build, "libcrossrec.so")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import pandas as pd
    import crossrec

    cli = os.path.join(build, "crossrec")
    imp = os.path.join(ROOT, "build/movielens/impressions.csv")
    model = os.path.join(ROOT, "out/movielens/model.safetensors")
    cfg = os.path.join(ROOT, "examples/movielens/ranker.yaml")
    if not os.path.exists(imp):
        run(cli, "movielens", "--in", os.path.join(ROOT, "data/movielens"), "--out", imp,
            "--protocol", "period")
    if not os.path.exists(model):
        run(cli, "train", "--config", cfg, "--out", os.path.join(ROOT, "out/movielens"), "--quiet")

    print(f"cpu: {cpu_name()}")
    print(f"load: {os.getloadavg()[0]:.2f}")
    print(f"crossrec: {crossrec.__version__} ({crossrec.LIBRARY_PATH})")

    # ---- 1. serving overhead -------------------------------------------------------
    c = run(os.path.join(build, "bench/serve_latency"), "--model", model, "--config", cfg,
            "--threads", 1, "--seconds", a.seconds).stdout
    cvals = dict(line.split(": ", 1) for line in c.splitlines() if ": " in line)
    m = crossrec.Model.load(model)
    rows = pd.read_csv(imp, nrows=1000, keep_default_na=False, dtype=str)
    print("\n| candidates | C API p50 ms | package p50 ms (DataFrame) | overhead |")
    print("|---|---|---|---|")
    for n in (10, 100, 1000):
        cand = rows.iloc[:n]
        context = {col: rows[col].iloc[0] for col in CONTEXT if col in rows.columns}
        py = p50(lambda: m.score_request(context, cand), a.seconds)
        cp = float(cvals[f"api_fp32_n{n}_p50_ms"])
        print(f"| {n} | {cp:.4f} | {py:.4f} | {py / cp:.2f}x |")

    # ---- 2. two Python threads at once ---------------------------------------------
    import threading
    frame = rows.iloc[:1000]
    m.score(frame)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        m.score(frame)
        m.score(frame)
        seq = time.perf_counter() - t0
        ts = [threading.Thread(target=m.score, args=(frame,)) for _ in range(2)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best = min(best, (time.perf_counter() - t0) / seq)
    print(f"\ntwo threads scoring at once / the same two calls in a row: {best:.2f} "
          f"(best of 5)")

    if a.skip_dask:
        return
    # ---- 3. batch scoring: the command against Dask --------------------------------
    import dask.dataframe as dd
    import distributed
    import crossrec.dask
    n_rows = sum(1 for _ in open(imp)) - 1
    t0 = time.perf_counter()
    run(cli, "score", "--model", model, "--data", imp, "--out", "/tmp/crossrec_bench_scores.csv",
        "--threads", 1)
    t_cli = time.perf_counter() - t0
    print(f"\n| batch scoring, {n_rows} rows | seconds | rows/s | vs the command |")
    print("|---|---|---|---|")
    print(f"| crossrec score, 1 process, 1 thread | {t_cli:.2f} | {n_rows / t_cli:,.0f} | 1.00x |")
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                      dashboard_address=None, silence_logs=40) as cluster, \
                distributed.Client(cluster):
            ddf = dd.read_csv(imp, blocksize="16MB", keep_default_na=False, dtype=str)
            crossrec.dask.score(ddf, model).head(1, npartitions=workers)  # workers load once
            t0 = time.perf_counter()
            crossrec.dask.score(ddf, model).to_csv("/tmp/crossrec_bench_dask.csv", single_file=True,
                                                   index=False)
            t = time.perf_counter() - t0
        print(f"| crossrec.dask.score, {workers} worker(s) x 1 thread, CSV in and out | {t:.2f} | "
              f"{n_rows / t:,.0f} | {t_cli / t:.2f}x |")


if __name__ == "__main__":
    main()
