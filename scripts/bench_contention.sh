#!/usr/bin/env bash
# bench_contention.sh - how much a competing CPU-bound process slows
# training, per OpenMP wait policy. One short training of
# examples/movielens/ranker.yaml (BENCH_STEPS steps, 2 threads) runs alone,
# then beside BENCH_HOGS busy loops, for each policy in turn; prints the wall
# seconds and the ratio contended / alone. Policies:
#   default  what `crossrec` does when the user sets nothing (it re-runs itself
#            with OMP_WAIT_POLICY=passive)
#   spin     libgomp's own default, as a program that links the library gets
#            it (GOMP_SPINCOUNT=300000 is that default written out)
#   active   OMP_WAIT_POLICY=active (spin until work arrives)
# A fair scheduler gives the training 2 / (2 + BENCH_HOGS) of the two cores
# under contention, so a ratio near (2 + HOGS) / 2 is the most a competitor
# can cost without spinning waste.
#
# Usage: scripts/bench_contention.sh BUILD_DIR
# Environment: BENCH_STEPS (default 300), BENCH_HOGS (default 1),
#              BENCH_POLICIES (default "default spin")
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
CR="$BUILD/crossrec"
STEPS=${BENCH_STEPS:-300}
HOGS=${BENCH_HOGS:-1}
POLICIES=${BENCH_POLICIES:-default spin}
OUT=$(mktemp -d /tmp/crossrec-contention-XXXXXX) || exit 1
HOG_PIDS=()
cleanup() {
    for p in "${HOG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$OUT"
}
trap cleanup EXIT
if [ ! -f build/movielens/impressions.csv ]; then
    "$CR" movielens --in data/movielens --out build/movielens/impressions.csv --protocol period \
        >/dev/null 2>&1 || exit 1
fi

# train POLICY: wall seconds of one training run under that policy.
train() {
    local envs=()
    case "$1" in
    default) envs=(-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT) ;;
    spin) envs=(-u OMP_WAIT_POLICY GOMP_SPINCOUNT=300000) ;;
    active) envs=(-u GOMP_SPINCOUNT OMP_WAIT_POLICY=active) ;;
    esac
    local t0 t1
    t0=$(date +%s.%N)
    env "${envs[@]}" "$CR" train --config examples/movielens/ranker.yaml --out "$OUT/run" \
        --threads 2 --max-steps "$STEPS" --epochs 1000 --quiet >/dev/null 2>&1 || echo "train failed" >&2
    t1=$(date +%s.%N)
    rm -rf "$OUT/run"
    echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}'
}

hogs_start() {
    local i
    for ((i = 0; i < HOGS; i++)); do
        (while :; do :; done) &
        HOG_PIDS+=($!)
    done
}
hogs_stop() {
    local h
    for h in "${HOG_PIDS[@]}"; do kill "$h" 2>/dev/null; wait "$h" 2>/dev/null; done
    HOG_PIDS=()
}

echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "load before: $(uptime | sed 's/.*load average: //')"
echo "training: $STEPS steps of examples/movielens/ranker.yaml, 2 threads; $HOGS busy loop(s)"
printf "%-8s %10s %12s %8s\n" policy "alone (s)" "contended (s)" ratio
for p in $POLICIES; do
    train "$p" >/dev/null # warm the page cache
    a=$(train "$p")
    hogs_start
    c=$(train "$p")
    hogs_stop
    printf "%-8s %10s %12s %8s\n" "$p" "$a" "$c" "$(echo "$a $c" | awk '{printf "%.2f", $2 / $1}')"
done
echo "load after: $(uptime | sed 's/.*load average: //')"
