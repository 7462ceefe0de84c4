#!/usr/bin/env bash
# bench_lm.sh - the decoder language model beside its PyTorch twin: bench/lm.c
# and bench/lm_torch.py on the GPT-2-small-shaped stack (gpt2s), the
# austen-small shape and llama2.c's 110M shape with an untied classifier
# (llama134m, generation only), in turn, at each thread count; prints a table
# of training tokens/s, forward+backward full vs frozen, generation tokens/s
# (float32, and crossrec with bf16 weights) and GFLOP/s next to the sgemm
# peak measured in the same run, then `name: value` summary lines, with the
# generation rate one thread's memory bandwidth allows. Installs nothing; a
# part that fails is reported, the others still print.
#
# Usage: scripts/bench_lm.sh BUILD_DIR      (make BUILD_DIR/bench/lm first)
# Environment:
#   BENCH_SECONDS  measuring time per part (default 3)
#   BENCH_ROUNDS   runs of each side, interleaved; each side's best is kept (default 2)
#   BENCH_THREADS  thread counts (default "1 2")
#   BENCH_MODELS   shapes (default "austen gpt2s llama134m")
#   BENCH_PYTHON   the interpreter for the twin (default /usr/bin/python3)
#   BENCH_LLAMACPP a node_modules directory holding node-llama-cpp 3.21.1: adds the
#                  llama.cpp anchor on random-weight GGUFs of the austen and
#                  llama134m shapes (whichever BENCH_MODELS lists; bench/lm_gguf.py
#                  writes them into BUILD_DIR/bench/results/, 537 MB for llama134m)
#                  e.g. (cd /tmp/x && npm install node-llama-cpp@3.21.1), then
#                  BENCH_LLAMACPP=/tmp/x/node_modules; never installed into the tree
# The machine may be shared: numbers move with other people's jobs, so the
# best of the rounds is kept and the load average is printed with them.
set -u

BUILD=${1:-}
if [ -z "$BUILD" ] || [ ! -x "$BUILD/bench/lm" ]; then
    echo "usage: scripts/bench_lm.sh BUILD_DIR   (needs BUILD_DIR/bench/lm: make build/bench/lm)" >&2
    exit 2
fi
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-"1 2"}
MODELS=${BENCH_MODELS:-"austen gpt2s llama134m"}
PY=${BENCH_PYTHON:-/usr/bin/python3}
TORCH_LD=/usr/lib/x86_64-linux-gnu/openblas-openmp
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$BUILD/bench/results
mkdir -p "$OUT"
rm -f "$OUT"/lm_*.txt
failed=""

have_torch=0
if LD_LIBRARY_PATH=$TORCH_LD "$PY" -c 'import torch' > /dev/null 2>&1; then
    have_torch=1
else
    echo "PyTorch is not importable by $PY; crossrec runs alone (apt-get install -y python3-torch)"
fi

# llama.cpp runs the shapes bench/lm_gguf.py can write, in the same rounds
# as the other two sides (so all three see the same machine)
LC_MODELS=""
have_llamacpp=0
if [ -n "${BENCH_LLAMACPP:-}" ]; then
    for m in $MODELS; do
        case $m in austen | llama134m) ;; *) continue ;; esac
        if "$PY" "$HERE/bench/lm_gguf.py" --shape "$m" "$OUT/lm_${m}_random.gguf" \
            > "$OUT/lm_gguf_$m.txt" 2>&1; then
            LC_MODELS="$LC_MODELS $m"
            have_llamacpp=1
        else
            failed="$failed gguf_$m"
            tail -n 3 "$OUT/lm_gguf_$m.txt"
        fi
    done
fi
is_lc() { case " $LC_MODELS " in *" $1 "*) return 0 ;; esac; return 1; }

echo "== decoder LM: ${ROUNDS} round(s), ${SECS}s per part, load before: $(cut -d' ' -f1-3 /proc/loadavg) =="
for t in $THREADS; do
    for m in $MODELS; do
        for r in $(seq 1 "$ROUNDS"); do
            c=$OUT/lm_cr_${m}_${t}t.r$r.txt
            p=$OUT/lm_pt_${m}_${t}t.r$r.txt
            OMP_NUM_THREADS=$t "$BUILD/bench/lm" --model "$m" --threads "$t" --seconds "$SECS" > "$c" 2>&1 ||
                { failed="$failed cr_${m}_${t}t"; tail -n 3 "$c"; }
            if [ $have_torch = 1 ]; then
                OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$TORCH_LD "$PY" "$HERE/bench/lm_torch.py" \
                    --model "$m" --threads "$t" --seconds "$SECS" > "$p" 2>&1 ||
                    { failed="$failed pt_${m}_${t}t"; tail -n 3 "$p"; }
            fi
            if is_lc "$m"; then
                q=$OUT/lm_lc_${m}_${t}t.r$r.txt
                NODE_PATH=$BENCH_LLAMACPP node "$HERE/bench/lm_llamacpp.mjs" "$OUT/lm_${m}_random.gguf" \
                    "$t" "$SECS" > "$q" 2>&1 || { failed="$failed llamacpp_${m}_${t}t"; tail -n 3 "$q"; }
            fi
        done
    done
done

# best PREFIX KEY max|min: the best value of KEY over PREFIX.r*.txt
best() {
    local files
    files=$(ls "$1".r*.txt 2> /dev/null) || return 0
    # shellcheck disable=SC2086
    awk -F': ' -v k="$2" -v mode="${3:-max}" '
        $1 == k && $2 ~ /^[0-9.eE+-]+$/ {
            if (n == 0 || (mode == "max" && $2 + 0 > b + 0) || (mode == "min" && $2 + 0 < b + 0)) b = $2
            n++
        }
        END { if (n) print b }' $files
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
na() { if [ -n "$1" ]; then echo "$1"; else echo "n/a"; fi; }

echo
echo "train: tokens/s of a step (fwd+bwd+clip+AdamW); fb: ms of fwd+bwd, full / frozen (input grads only);"
echo "pre: ms of one forward over a 256-token prompt; gen: greedy tokens/s with a KV cache"
echo "(1-token prompt, 128 new), bf16: crossrec with bf16 weights; x = crossrec (float32) over"
echo "PyTorch; GF: training GFLOP/s; peak: cr_sgemm 1024^3; n/a: not run (llama134m: no training)"
printf '%-9s %3s | %9s %9s %5s | %8s %8s %8s %8s | %7s %7s | %7s %7s %7s %5s | %6s %6s %6s\n' model thr \
    "train cr" "train pt" x "fb cr" "frz cr" "fb pt" "frz pt" "pre cr" "pre pt" "gen cr" "bf16" "gen pt" x \
    "GF cr" "GF pt" peak
summary=""
for t in $THREADS; do
    for m in $MODELS; do
        c=$OUT/lm_cr_${m}_${t}t
        p=$OUT/lm_pt_${m}_${t}t
        ct=$(best "$c" train_tokens_per_s); pt=$(best "$p" train_tokens_per_s)
        cf=$(best "$c" fwd_bwd_full_ms min); cz=$(best "$c" fwd_bwd_frozen_ms min)
        pf=$(best "$p" fwd_bwd_full_ms min); pz=$(best "$p" fwd_bwd_frozen_ms min)
        cg=$(best "$c" gen_tokens_per_s); pg=$(best "$p" gen_tokens_per_s)
        cb=$(best "$c" gen_bf16_tokens_per_s)
        bl=$(best "$c" gen_bandwidth_limit_f32_tokens_per_s); bw=$(best "$c" mem_read_gbs)
        cp=$(best "$c" prefill_256_ms min); pp=$(best "$p" prefill_256_ms min)
        cgf=$(best "$c" train_gflops); pgf=$(best "$p" train_gflops)
        pk=$(best "$c" sgemm_peak_gflops)
        printf '%-9s %3s | %9s %9s %5s | %8s %8s %8s %8s | %7s %7s | %7s %7s %7s %5s | %6s %6s %6s\n' "$m" "$t" \
            "$(na "$ct")" "$(na "$pt")" "$(ratio "$ct" "$pt")" "$(na "$cf")" "$(na "$cz")" \
            "$(na "$pf")" "$(na "$pz")" "$(na "$cp")" "$(na "$pp")" "$(na "$cg")" "$(na "$cb")" "$(na "$pg")" \
            "$(ratio "$cg" "$pg")" "$(na "$cgf")" "$(na "$pgf")" "$(na "$pk")"
        summary="${summary}lm_${m}_train_speedup_${t}t: $(ratio "$ct" "$pt")
lm_${m}_gen_speedup_${t}t: $(ratio "$cg" "$pg")
lm_${m}_gen_bf16_over_f32_${t}t: $(ratio "$cb" "$cg")
lm_${m}_gen_f32_over_bandwidth_limit_${t}t: $(ratio "$cg" "$bl") (limit $(na "$bl") tok/s at $(na "$bw") GB/s)
lm_${m}_frozen_over_full_${t}t: $(ratio "$cz" "$cf")
lm_${m}_torch_frozen_over_full_${t}t: $(ratio "$pz" "$pf")
lm_${m}_train_gflops_${t}t: $(na "$cgf") (sgemm peak $(na "$pk"))
"
    done
done
if [ $have_llamacpp = 1 ]; then
    echo
    echo "llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU, float32 GGUF with random weights):"
    for m in $LC_MODELS; do
        for t in $THREADS; do
            q=$OUT/lm_lc_${m}_${t}t
            lg=$(best "$q" gen_tokens_per_s); lp=$(best "$q" prefill_256_ms min)
            cg=$(best "$OUT/lm_cr_${m}_${t}t" gen_tokens_per_s); cp=$(best "$OUT/lm_cr_${m}_${t}t" prefill_256_ms min)
            cb=$(best "$OUT/lm_cr_${m}_${t}t" gen_bf16_tokens_per_s)
            echo "  $m ${t}t: gen $(na "$lg") tok/s (crossrec $(na "$cg"), x $(ratio "$cg" "$lg"); bf16 $(na "$cb"), x $(ratio "$cb" "$lg")), prefill 256 $(na "$lp") ms (crossrec $(na "$cp"))"
            summary="${summary}lm_${m}_gen_over_llamacpp_${t}t: $(ratio "$cg" "$lg")
lm_${m}_gen_bf16_over_llamacpp_${t}t: $(ratio "$cb" "$lg")
lm_${m}_prefill_llamacpp_over_crossrec_${t}t: $(ratio "$lp" "$cp")
"
        done
    done
fi
echo
echo "== summary =="
printf '%s' "$summary"
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$failed" ]; then
    echo "bench_lm: failed parts:$failed (raw outputs in $OUT)"
    exit 1
fi
exit 0
