#!/usr/bin/env bash
# mpi.sh - data-parallel training of the reference ranker (bench/rank.c's:
# 26 tables of 10,000 x 16, 13 dense, MMoE 4 x [256, 128], 3 tasks, global
# batch 512) with `crossrec train` at N = 1 and N = 2 ranks (one thread
# each), beside PyTorch DistributedDataParallel (gloo) on the same shape and
# data law in the same run (bench/mpi_torch.py), and a control: two
# independent one-process runs at once, which is what this machine gives two
# processes right now. A bench, not a test: it checks nothing but prints
# examples/s, the step, the time in the gradient exchange per step and the
# bytes exchanged per step (dense and sparse apart), the best of each over
# the rounds, then the CPU and the load. docs/distributed.md reads them.
#
# Usage: make bench-mpi, or bench/mpi.sh [BUILD_DIR] (a `make MPI=1` build; default build/mpi)
# Environment: BENCH_ROUNDS (default 3), BENCH_STEPS (default 60),
#              BENCH_PYTHON (default /usr/bin/python3, Debian's torch)
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-build/mpi}
BIN="$(pwd)/$BUILD/crossrec"
ROUNDS=${BENCH_ROUNDS:-3}
STEPS=${BENCH_STEPS:-60}
PY=${BENCH_PYTHON:-/usr/bin/python3}
DIR="$BUILD/bench/mpi"
mkdir -p "$DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shared memory with its default single-copy path (CMA): "none" was 3-6x
# slower here; a waiting rank yields its core (on a shared machine the
# peer it waits for may need it: 1.4x faster here than busy polling)
export OMPI_MCA_btl=self,vader OMPI_MCA_mpi_yield_when_idle=1
export OMP_WAIT_POLICY=passive
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -x "$BIN" ] || { echo "no $BIN: run make MPI=1" >&2; exit 2; }

ROWS=$((512 * (STEPS + 4)))
if [ ! -s "$DIR/ref.csv" ] || [ "$(($(wc -l <"$DIR/ref.csv") - 1))" -lt "$ROWS" ]; then
    echo "writing $ROWS training rows of the reference shape to $DIR/ref.csv"
    "$PY" bench/mpi_torch.py data --rows "$ROWS" --out "$DIR/ref.csv" || exit 1
fi
{
    echo "data: {path: $(pwd)/$DIR/ref.csv, split: {by: column, column: split}}"
    echo "features:"
    for i in $(seq -w 1 26); do echo "  - {name: c$i, type: categorical, hash_buckets: 9999, dim: 16}"; done
    for i in $(seq -w 1 13); do echo "  - {name: d$i, type: numeric}"; done
    echo "tasks: [{name: click, type: binary, label: click}, {name: like, type: binary, label: like},"
    echo "        {name: share, type: binary, label: share}]"
    echo "model: {type: mmoe, experts: 4, expert_layers: [256, 128], tower_layers: [64]}"
    echo "train: {lr: 0.001, sparse_lr: 0.01, batch_size: 512, epochs: 1, max_steps: $STEPS,"
    echo "        threads: 1, early_stopping: {mode: none}}"
} >"$DIR/ref.yaml"

# num FILE KEY: a number from metrics.json
num() { grep -m1 "\"$2\"" "$1" | sed -e 's/.*:[ \t]*//' -e 's/,$//'; }
best() { # best FILE VALUE: keep the larger
    if [ ! -s "$1" ] || awk -v a="$2" -v b="$(cat "$1")" 'BEGIN { exit !(a > b) }'; then echo "$2" >"$1"; fi
}
rm -f "$DIR"/best.*
echo "load before: $(uptime)"
for r in $(seq 1 "$ROUNDS"); do
    "$BIN" train --config "$DIR/ref.yaml" --out "$DIR/n1" --quiet >/dev/null 2>&1 || { echo "FAILED: N=1"; exit 1; }
    best "$DIR/best.n1" "$(num "$DIR/n1/metrics.json" examples_per_second)"
    timeout 600 mpirun -np 2 --bind-to none "$BIN" train --config "$DIR/ref.yaml" --out "$DIR/n2" --quiet \
        >/dev/null 2>"$DIR/n2.err" || { echo "FAILED: N=2"; cat "$DIR/n2.err"; exit 1; }
    x=$(num "$DIR/n2/metrics.json" examples_per_second)
    if [ ! -s "$DIR/best.n2" ] || awk -v a="$x" -v b="$(cat "$DIR/best.n2")" 'BEGIN { exit !(a > b) }'; then
        echo "$x" >"$DIR/best.n2"
        cp "$DIR/n2/metrics.json" "$DIR/best.n2.json"
    fi
    "$BIN" train --config "$DIR/ref.yaml" --out "$DIR/c1" --quiet >/dev/null 2>&1 &
    "$BIN" train --config "$DIR/ref.yaml" --out "$DIR/c2" --quiet >/dev/null 2>&1
    wait
    best "$DIR/best.ctl" "$(awk -v a="$(num "$DIR/c1/metrics.json" examples_per_second)" \
        -v b="$(num "$DIR/c2/metrics.json" examples_per_second)" 'BEGIN { print a + b }')"
    for w in 1 2; do
        "$PY" bench/mpi_torch.py ddp --world "$w" --steps "$STEPS" >"$DIR/ddp$w.txt" 2>&1 ||
            { echo "FAILED: DDP world $w"; tail -5 "$DIR/ddp$w.txt"; exit 1; }
        x=$(grep ddp_examples_per_s "$DIR/ddp$w.txt" | sed 's/.*: //')
        if [ ! -s "$DIR/best.ddp$w" ] || awk -v a="$x" -v b="$(cat "$DIR/best.ddp$w")" 'BEGIN { exit !(a > b) }'; then
            echo "$x" >"$DIR/best.ddp$w"
            cp "$DIR/ddp$w.txt" "$DIR/best.ddp$w.txt"
        fi
    done
    echo "round $r: crossrec N=1 $(cat "$DIR/best.n1"), N=2 $(cat "$DIR/best.n2"), two independent runs $(cat "$DIR/best.ctl"); DDP 1 $(cat "$DIR/best.ddp1"), 2 $(cat "$DIR/best.ddp2") (best so far)"
done
echo "load after: $(uptime)"
n1=$(cat "$DIR/best.n1") n2=$(cat "$DIR/best.n2") ctl=$(cat "$DIR/best.ctl")
d1=$(cat "$DIR/best.ddp1") d2=$(cat "$DIR/best.ddp2")
J="$DIR/best.n2.json"
dd() { grep "$1" "$DIR/best.ddp2.txt" | sed 's/.*: //'; }
awk -v n1="$n1" -v n2="$n2" -v ctl="$ctl" -v d1="$d1" -v d2="$d2" \
    -v comm="$(num "$J" comm_seconds_per_step)" -v db="$(num "$J" dense_bytes_per_step)" \
    -v sb="$(num "$J" sparse_bytes_per_step)" -v ddb="$(dd ddp_dense_bytes)" -v dsb="$(dd ddp_sparse_bytes)" 'BEGIN {
    printf "\n%-28s %12s %10s %12s %14s %14s\n", "", "examples/s", "step ms", "comm ms/step", "dense B/step", "sparse B/step"
    printf "%-28s %12.0f %10.1f %12s %14s %14s\n", "crossrec N=1", n1, 512000 / n1, "-", "-", "-"
    printf "%-28s %12.0f %10.1f %12.1f %14.0f %14.0f\n", "crossrec N=2 (MPI)", n2, 512000 / n2, comm * 1000, db, sb
    printf "%-28s %12.0f %10s %12s %14s %14s\n", "2 independent N=1 at once", ctl, "-", "-", "-", "-"
    printf "%-28s %12.0f %10.1f %12s %14s %14s\n", "PyTorch DDP world 1", d1, 512000 / d1, "-", "-", "-"
    printf "%-28s %12.0f %10.1f %12s %14.0f %14.0f\n", "PyTorch DDP world 2 (gloo)", d2, 512000 / d2, "-", ddb, dsb
    printf "\nscaling_efficiency_1_to_2: %.3f   (N=2 / (2 x N=1))\n", n2 / (2 * n1)
    printf "efficiency_vs_two_independent_runs: %.3f   (N=2 / what two processes get at once)\n", n2 / ctl
    printf "ddp_scaling_efficiency_1_to_2: %.3f\n", d2 / (2 * d1)
    printf "crossrec_over_ddp_n2: %.2f\n", n2 / d2
}'
# The cost model's compute terms (docs/distributed.md): the one-process step
# split into what a rank's slice scales (forward, loss, backward: per
# example) and what every rank repeats (the optimisers: per step), from
# bench/rank's medians, which a preempted step does not move.
if [ -x "$BUILD/bench/rank" ]; then
    "$BUILD/bench/rank" --threads 1 --model reference --seconds 3 --part train --no-peak >"$DIR/phases.txt" 2>&1
    ph() { grep "^$1:" "$DIR/phases.txt" | sed 's/.*: //'; }
    awk -v f="$(ph train_fwd_ms)" -v l="$(ph train_loss_ms)" -v b="$(ph train_bwd_ms)" \
        -v d="$(ph train_dense_opt_ms)" -v s="$(ph train_sparse_opt_ms)" -v u="$(ph train_cpu_util)" 'BEGIN {
        printf "cost_model_compute: %.1f us per example (forward+loss+backward / 512) + %.2f ms per step (optimisers); cpu_util %s\n", (f + l + b) / 512 * 1000, d + s, u }'
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; $(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
