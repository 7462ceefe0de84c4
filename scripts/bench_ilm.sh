#!/usr/bin/env bash
# bench_ilm.sh - the Item-Language Model's training steps beside their PyTorch
# twin: bench/ilm.c and bench/ilm_torch.py for phase 1 (the Q-Former with its
# five losses) and phase 2 (Q-Former + adapter through the frozen austen-small
# LM), in alternating rounds at each thread count; prints the table of
# examples/s, ms per step and CPU share, then `name: value` summary lines
# (ilm_phase1_speedup_1t, ilm_phase2_speedup_1t, ... = crossrec over PyTorch
# examples/s). Installs nothing; a part that fails is reported, the others
# still print.
#
# Usage: scripts/bench_ilm.sh BUILD_DIR      (make BUILD_DIR/bench/ilm first)
# Environment:
#   BENCH_SECONDS  measuring time per part (default 5)
#   BENCH_ROUNDS   runs of each side, alternated; each side's best is kept (default 3)
#   BENCH_THREADS  thread counts (default "1 2")
#   BENCH_PYTHON   the interpreter for the twin (default /usr/bin/python3)
# The machine may be shared: both sides wait passively (OMP_WAIT_POLICY), the
# best of the rounds is kept, and the load average and each side's CPU share
# (process CPU seconds over wall seconds; up to the thread count) are printed.
set -u

BUILD=${1:-}
if [ -z "$BUILD" ] || [ ! -x "$BUILD/bench/ilm" ]; then
    echo "usage: scripts/bench_ilm.sh BUILD_DIR   (needs BUILD_DIR/bench/ilm: make build/bench/ilm)" >&2
    exit 2
fi
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-"1 2"}
PY=${BENCH_PYTHON:-/usr/bin/python3}
TORCH_LD=/usr/lib/x86_64-linux-gnu/openblas-openmp
HERE=$(cd "$(dirname "$0")/.." && pwd)
LM=$HERE/data/models/austen-small/model.safetensors
TOK=$HERE/data/models/austen-small/tokenizer
OUT=$BUILD/bench/results
mkdir -p "$OUT"
rm -f "$OUT"/ilm_*.txt
failed=""
export OMP_WAIT_POLICY=passive

have_torch=0
if LD_LIBRARY_PATH=$TORCH_LD "$PY" -c 'import torch' > /dev/null 2>&1; then
    have_torch=1
else
    echo "PyTorch is not importable by $PY; crossrec runs alone (apt-get install -y python3-torch)"
fi

# val FILE KEY: KEY's value in one output file
val() { awk -F': ' -v k="$2" '$1 == k { print $2; exit }' "$1" 2> /dev/null; }

echo "== ILM training steps: ${ROUNDS} round(s), ${SECS}s per part, load before: $(cut -d' ' -f1-3 /proc/loadavg) =="
for t in $THREADS; do
    for ph in 1 2; do
        for r in $(seq 1 "$ROUNDS"); do
            c=$OUT/ilm_cr_p${ph}_${t}t.r$r.txt
            p=$OUT/ilm_pt_p${ph}_${t}t.r$r.txt
            OMP_NUM_THREADS=$t "$BUILD/bench/ilm" --phase "$ph" --threads "$t" --seconds "$SECS" \
                --lm "$LM" --tokenizer "$TOK" > "$c" 2>&1 ||
                { failed="$failed cr_p${ph}_${t}t"; tail -n 3 "$c"; }
            if [ $have_torch = 1 ]; then
                # the twin takes the phase-2 batch's shape from crossrec's own output
                extra=""
                if [ "$ph" = 2 ] && [ -n "$(val "$c" phase2_T)" ]; then
                    extra="--p2-T $(val "$c" phase2_T) --p2-entities $(val "$c" phase2_entities) --p2-targets $(val "$c" phase2_targets)"
                fi
                # shellcheck disable=SC2086
                OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$TORCH_LD "$PY" "$HERE/bench/ilm_torch.py" \
                    --phase "$ph" --threads "$t" --seconds "$SECS" --lm "$LM" $extra > "$p" 2>&1 ||
                    { failed="$failed pt_p${ph}_${t}t"; tail -n 3 "$p"; }
            fi
        done
    done
done

# best PREFIX KEY max|min: the best value of KEY over PREFIX.r*.txt, and the
# CPU share of that same run (so a figure comes with the share it got)
best() {
    local f v s b="" bs="" mode=${3:-max}
    for f in "$1".r*.txt; do
        [ -f "$f" ] || continue
        v=$(val "$f" "$2")
        case $v in '' | *[!0-9.eE+-]*) continue ;; esac
        s=$(val "$f" "$4")
        if [ -z "$b" ] || awk -v a="$v" -v c="$b" -v m="$mode" 'BEGIN { exit !((m == "max" && a + 0 > c + 0) || (m == "min" && a + 0 < c + 0)) }'; then
            b=$v bs=${s:-n/a}
        fi
    done
    if [ -n "$b" ]; then echo "$b $bs"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }

echo
echo "examples/s of one training step (median step, best of the rounds); ms: median step;"
echo "cpu: CPU share of that run (1.00 = one core); x = crossrec over PyTorch examples/s"
echo "phase 1: batch 32, all five losses + clip + AdamW; phase 2: batch 8 x $(na "$(val "$OUT/ilm_cr_p2_$(echo "$THREADS" | cut -d' ' -f1)t.r1.txt" phase2_T)") tokens, frozen LM"
printf '%-6s %3s | %9s %9s %5s | %8s %8s | %5s %5s\n' phase thr "ex/s cr" "ex/s pt" x "ms cr" "ms pt" "cpu c" "cpu p"
summary=""
for t in $THREADS; do
    for ph in 1 2; do
        c=$OUT/ilm_cr_p${ph}_${t}t
        p=$OUT/ilm_pt_p${ph}_${t}t
        read -r ce cs <<< "$(best "$c" "phase${ph}_examples_per_s" max "phase${ph}_cpu_share")"
        read -r pe ps <<< "$(best "$p" "phase${ph}_examples_per_s" max "phase${ph}_cpu_share")"
        read -r cm _ <<< "$(best "$c" "phase${ph}_ms_per_step" min "phase${ph}_cpu_share")"
        read -r pm _ <<< "$(best "$p" "phase${ph}_ms_per_step" min "phase${ph}_cpu_share")"
        printf '%-6s %3s | %9s %9s %5s | %8s %8s | %5s %5s\n' "$ph" "$t" "$(na "${ce:-}")" \
            "$(na "${pe:-}")" "$(ratio "${ce:-}" "${pe:-}")" "$(na "${cm:-}")" "$(na "${pm:-}")" \
            "$(na "${cs:-}")" "$(na "${ps:-}")"
        summary="${summary}ilm_phase${ph}_speedup_${t}t: $(ratio "${ce:-}" "${pe:-}")
ilm_phase${ph}_examples_per_s_${t}t: $(na "${ce:-}") (pytorch $(na "${pe:-}"))
"
        ce="" pe="" cm="" pm="" cs="" ps=""
    done
done
echo
echo "== summary =="
printf '%s' "$summary"
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$failed" ]; then
    echo "bench_ilm: failed parts:$failed (raw outputs in $OUT)"
    exit 1
fi
exit 0
