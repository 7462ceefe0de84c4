#!/usr/bin/env bash
# bench.sh - what `make bench` runs: the kernel lab (if built), then the
# ranker bench (bench/rank.c) beside its PyTorch twin (bench/rank_torch.py)
# on the reference and the MovieLens-shaped model at 1 and 2 threads, as one
# table plus `name: value` summary lines. It installs nothing, and a part
# that fails is reported without hiding the parts that ran.
#
# Usage: scripts/bench.sh BUILD_DIR
# Environment:
#   BENCH_SECONDS  measuring time of each of training and scoring, per run (default 2)
#   BENCH_ROUNDS   runs of each side, interleaved; the best of each is kept (default 2)
#   BENCH_THREADS  thread counts to run (default "1 2")
#   BENCH_QUICK=1  pass --quick to the kernel lab
#   BENCH_ZIPF     id skew for both sides, 0 = uniform (default 1.05)
#   BENCH_PYTHON   the interpreter for the twin (default /usr/bin/python3, Debian's torch)
#   BENCH_BF16=0   skip the bf16 training rows (reference model, train.precision bf16
#                  against the twin under torch.autocast bfloat16; scoring is fp32)
# OpenMP settings in the environment (OMP_WAIT_POLICY=passive helps a lot on
# a machine other jobs share: see docs/bench.md) reach both sides alike.
# Raw outputs are kept in BUILD_DIR/bench/results/. On a shared machine
# other processes steal cores mid-run; running the two sides in turn and
# keeping each one's best run (highest examples/s, lowest latency) compares
# them under the same conditions, and the cpu column shows how much of the
# requested cores each side actually got.
set -u

BUILD=${1:-}
if [ -z "$BUILD" ] || [ ! -d "$BUILD" ]; then
    echo "usage: scripts/bench.sh BUILD_DIR   (the directory make built, e.g. build)" >&2
    exit 2
fi
SECS=${BENCH_SECONDS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-"1 2"}
ZIPF=${BENCH_ZIPF:-1.05}
PY=${BENCH_PYTHON:-/usr/bin/python3}
BF16=${BENCH_BF16:-1}
# torch.set_num_threads only governs BLAS when BLAS is the OpenMP OpenBLAS.
TORCH_LD=/usr/lib/x86_64-linux-gnu/openblas-openmp
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$BUILD/bench/results
mkdir -p "$OUT"
failed=""

fail() { # name rc logfile
    failed="$failed $1"
    echo "FAILED: $1 (exit $2); last lines of $3:"
    tail -n 5 "$3" | sed 's/^/  | /'
}

# ---- 1. kernel lab ---------------------------------------------------------
if [ -x "$BUILD/bench/kernels" ]; then
    echo "== kernel lab ($BUILD/bench/kernels) =="
    kargs=""
    [ "${BENCH_QUICK:-0}" = 1 ] && kargs="--quick"
    "$BUILD/bench/kernels" $kargs > "$OUT/kernels.txt" 2>&1
    rc=$?
    # prefixed, so its own sgemm_peak_gflops never reads as the summary's
    sed 's/^/kernels./' "$OUT/kernels.txt"
    [ $rc = 0 ] || fail kernels $rc "$OUT/kernels.txt"
    echo
else
    echo "== kernel lab: $BUILD/bench/kernels not built, skipped =="
fi

# ---- 2. can the twin run? ------------------------------------------------------
have_torch=0
if [ -x "$PY" ] && LD_LIBRARY_PATH=$TORCH_LD "$PY" -c 'import torch' > "$OUT/torch_check.txt" 2>&1; then
    have_torch=1
else
    echo "PyTorch is not importable by $PY; the crossrec side runs alone. To install it:"
    echo "  apt-get install -y python3-torch libopenblas0-openmp"
    tail -n 2 "$OUT/torch_check.txt" 2>/dev/null | sed 's/^/  | /'
fi

# ---- 3. the ranker, both sides -------------------------------------------------
rank_bin=$BUILD/bench/rank
echo "== ranker: ${ROUNDS} round(s) of ${SECS}s per measurement, ids zipf $ZIPF, load before: $(cut -d' ' -f1-3 /proc/loadavg) =="
rm -f "$OUT"/crossrec_*.txt "$OUT"/torch_*.txt
for t in $THREADS; do
    for model in reference movielens; do
        for r in $(seq 1 "$ROUNDS"); do
            c=$OUT/crossrec_${model}_${t}t.r$r.txt
            p=$OUT/torch_${model}_${t}t.r$r.txt
            peak=""
            [ "$model" = reference ] || peak="--no-peak"
            if [ -x "$rank_bin" ]; then
                OMP_NUM_THREADS=$t "$rank_bin" --threads "$t" --model "$model" --seconds "$SECS" \
                    --zipf "$ZIPF" $peak > "$c" 2>&1
                rc=$?
                [ $rc = 0 ] || fail "crossrec_${model}_${t}t.r$r" $rc "$c"
            elif [ "$r" = 1 ]; then
                echo "FAILED: $rank_bin is not built (make $rank_bin)"
                failed="$failed crossrec_${model}_${t}t"
            fi
            if [ $have_torch = 1 ]; then
                OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$TORCH_LD "$PY" "$HERE/bench/rank_torch.py" \
                    --threads "$t" --model "$model" --seconds "$SECS" --zipf "$ZIPF" > "$p" 2>&1
                rc=$?
                [ $rc = 0 ] || fail "torch_${model}_${t}t.r$r" $rc "$p"
            fi
        done
    done
    [ "$BF16" = 1 ] || continue
    for r in $(seq 1 "$ROUNDS"); do
        c=$OUT/crossrec_reference-bf16_${t}t.r$r.txt
        p=$OUT/torch_reference-bf16_${t}t.r$r.txt
        if [ -x "$rank_bin" ]; then
            OMP_NUM_THREADS=$t "$rank_bin" --threads "$t" --model reference --seconds "$SECS" \
                --zipf "$ZIPF" --part train --precision bf16 --no-peak > "$c" 2>&1 ||
                fail "crossrec_reference-bf16_${t}t.r$r" $? "$c"
        fi
        if [ $have_torch = 1 ]; then
            OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$TORCH_LD "$PY" "$HERE/bench/rank_torch.py" \
                --threads "$t" --model reference --seconds "$SECS" --zipf "$ZIPF" --part train \
                --precision bf16 > "$p" 2>&1 || fail "torch_reference-bf16_${t}t.r$r" $? "$p"
        fi
    done
done

# ---- 4. side by side -------------------------------------------------------------
# best prefix key max|min -> the best value of key over the rounds' files
# prefix.r*.txt (a failed or missing run contributes nothing), empty if none
get() {
    local files
    files=$(ls "$1".r*.txt 2> /dev/null) || return 0
    # shellcheck disable=SC2086
    awk -F': ' -v k="$2" -v mode="${3:-max}" '
        $1 == k && $2 ~ /^[0-9.eE+-]+$/ {
            if (n == 0 || (mode == "max" && $2 + 0 > best + 0) || (mode == "min" && $2 + 0 < best + 0))
                best = $2
            n++
        }
        END { if (n) print best }' $files
}
ratio() { # a b -> a/b with 2 decimals, n/a if either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a";
                                     else printf "%.2f", a / b }'
}
or_na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }

echo
echo "train: examples/s (median step); score: ms for 1000 candidates; speedup = crossrec over PyTorch"
echo "cpu: process CPU / wall while training, crossrec/torch (below the thread count = cores taken by others)"
printf '%-14s %3s | %10s %10s %7s | %8s %8s %7s | %8s %8s | %9s\n' \
    model thr "train cr" "train pt" speedup "p50 cr" "p50 pt" speedup "p99 cr" "p99 pt" cpu
summary=""
starved=""
models="reference movielens"
[ "$BF16" = 1 ] && models="$models reference-bf16"
for t in $THREADS; do
    for model in $models; do
        c=$OUT/crossrec_${model}_${t}t
        p=$OUT/torch_${model}_${t}t
        ct=$(get "$c" train_examples_per_s); pt=$(get "$p" train_examples_per_s)
        cs=$(get "$c" score1000_p50_ms min); ps=$(get "$p" score1000_p50_ms min)
        c99=$(get "$c" score1000_p99_ms min); p99=$(get "$p" score1000_p99_ms min)
        cu=$(get "$c" train_cpu_util); pu=$(get "$p" train_cpu_util)
        for u in "$cu" "$pu"; do
            [ -n "$u" ] && awk -v u="$u" -v t="$t" 'BEGIN { exit !(u < 0.85 * t) }' &&
                starved="$starved ${model}_${t}t"
        done
        ts=$(ratio "$ct" "$pt")
        ss=$(ratio "$ps" "$cs")
        printf '%-14s %3s | %10s %10s %7s | %8s %8s %7s | %8s %8s | %9s\n' "$model" "$t" \
            "$(or_na "$ct")" "$(or_na "$pt")" "$ts" "$(or_na "$cs")" "$(or_na "$ps")" "$ss" \
            "$(or_na "$c99")" "$(or_na "$p99")" "$(or_na "$cu")/$(or_na "$pu")"
        if [ "$model" = reference-bf16 ]; then
            # like for like (both bf16), and against the fp32 twin
            pf=$(get "$OUT/torch_reference_${t}t" train_examples_per_s)
            summary="${summary}train_speedup_bf16_${t}t: $ts
train_bf16_over_torch_fp32_${t}t: $(ratio "$ct" "$pf")
"
            continue
        fi
        pre=""
        [ "$model" = movielens ] && pre="ml_"
        summary="$summary${pre}train_speedup_${t}t: $ts
${pre}score1000_speedup_${t}t: $ss
"
    done
done

if [ -n "$starved" ]; then
    echo "note: other processes held the cores in$(echo "$starved" | tr ' ' '\n' | sort -u | tr '\n' ' ')"
    echo "  (cpu below 85% of the threads asked for): those rows measure the scheduler more than"
    echo "  the code. Rerun on a quiet machine, or with OMP_WAIT_POLICY=passive (docs/bench.md)."
fi

echo
echo "== summary =="
printf '%s' "$summary"
ref1=$OUT/crossrec_reference_1t
echo "sgemm_peak_gflops: $(or_na "$(get "$ref1" sgemm_peak_gflops)")"
for t in $THREADS; do
    [ "$t" = 1 ] && continue
    echo "sgemm_peak_gflops_${t}t: $(or_na "$(get "$OUT/crossrec_reference_${t}t" sgemm_peak_gflops)")"
done
for t in $THREADS; do
    f=$OUT/crossrec_reference_${t}t
    echo "train_gflops_${t}t: $(or_na "$(get "$f" train_gflops)")"
    echo "score_gflops_${t}t: $(or_na "$(get "$f" score_gflops)")"
    echo "torch_train_gflops_${t}t: $(or_na "$(get "$OUT/torch_reference_${t}t" train_gflops)")"
done
backend=$(cat "$OUT"/crossrec_*.txt 2> /dev/null | awk -F': ' '$1 == "gemm_backend" { print $2; exit }')
echo "gemm_backend: $(or_na "$backend")"
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$failed" ]; then
    echo "bench: failed parts:$failed (raw outputs in $OUT)"
    exit 1
fi
exit 0
