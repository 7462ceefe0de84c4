#!/usr/bin/env bash
# mpi.sh - crossrec under `mpirun -np 2` (and 3) against the same build run
# as one process: data-parallel training gives the same validation-loss
# curve and metrics to a stated tolerance (fp32 and bf16, fixed and
# uncertainty loss weights, resume with the same and another rank count),
# sharded label and score write the same bytes, a study spread over ranks
# gives the same results.json, and a rank that fails ends the whole job
# with its own message instead of hanging. Prints one line per check and
# "N passed, M failed". CR_BUILD holds a crossrec built with MPI=1.
set -u

cd "$(dirname "$0")/.." || exit 1
CR_BUILD=${CR_BUILD:-build/mpi}
BIN="$(pwd)/$CR_BUILD/crossrec"
TMP=$(mktemp -d /tmp/crossrec-mpi-XXXXXX) || exit 1
trap '[ -n "${CR_KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
OUT="$TMP/output.txt"
pass=0
fail=0
rc=0

# Open MPI in a container, as root, on a shared 2-core machine: allow root,
# more ranks than cores, shared memory without the ptrace-based single-copy
# path (often forbidden in containers), no network transports to probe, and
# a waiting rank yields its core to the rank it waits for.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mpi_yield_when_idle=1
export OMP_WAIT_POLICY=passive
# Sanitizer builds: Open MPI keeps its own allocations until exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# TOL: |a - b| <= TOL * max(1, |a|) for every number of metrics.json and
# every validation loss logged. Ranks sum gradients in another order than
# one process does, so results agree to float rounding, not bit for bit:
# 2e-5 in fp32 (measured: at most 2e-7), 1e-2 with bf16 products.
TOL=2e-5

ok() {
    echo "ok - $1"
    pass=$((pass + 1))
}

not_ok() {
    echo "not ok - $1"
    if [ -s "$OUT" ]; then sed -e 's/^/    | /' "$OUT" | head -n 30; fi
    fail=$((fail + 1))
}

# mpi NP CMD...: the command under mpirun, at most 120 s (a hang is a failure).
mpi() {
    local np=$1
    shift
    timeout 120 mpirun -np "$np" "$@" >"$OUT" 2>&1
    rc=$?
}

one() {
    timeout 120 "$@" >"$OUT" 2>&1
    rc=$?
}

# close A B: every number of two JSON documents (cJSON's one-key-per-line
# print) agrees to TOL, timings and the job's own figures aside.
close() {
    awk -v tol="$TOL" '
        function num(line,   v) { v = line; sub(/^[^:]*:[ \t]*/, "", v); sub(/,$/, "", v); return v }
        function key(line,   k) { k = line; sub(/:.*/, "", k); gsub(/[ \t"]/, "", k); return k }
        /"(seconds|examples_per_second|comm_seconds_per_step|dense_bytes_per_step|sparse_bytes_per_step|ranks|config|model|labelled)"/ { next }
        /"distributed"/ { next }
        /:[ \t]*[-0-9.naie+]+,?$/ {
            if (FNR == NR) { ka[++na] = key($0); va[na] = num($0); next }
            nb++
            if (ka[nb] != key($0)) { print "key " nb ": " ka[nb] " vs " key($0); bad = 1; exit }
            a = va[nb]; b = num($0)
            if (a == b) next
            if (a ~ /nan/ || b ~ /nan/) { print ka[nb] ": " a " vs " b; bad = 1; next }
            d = a - b; if (d < 0) d = -d
            m = a < 0 ? -a : a; if (m < 1) m = 1
            if (d > tol * m) { print ka[nb] ": " a " vs " b; bad = 1 }
            if (d / m > worst) worst = d / m
        }
        END { if (nb != na) { print "numbers: " na " vs " nb; bad = 1 }
              printf "%d numbers, worst relative difference %.3g\n", nb, worst; exit bad }
    ' "$1" "$2"
}

# curve LOG: the validation losses logged at each evaluation, one per line.
curve() {
    grep '^eval step' "$1" | sed -e 's/(best)//' | tr ' |' '\n\n' | grep -E '^-?[0-9]+\.[0-9]+$'
}

# same_curve A B: two logs' validation losses agree to TOL, evaluation by evaluation.
same_curve() {
    paste <(curve "$1") <(curve "$2") | awk -v tol="$TOL" '
        { n++; d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1; if (m < 1) m = 1
          if (NF != 2 || d > tol * m) { print "loss " n ": " $1 " vs " $2; bad = 1 } }
        END { if (n < 5) { print "only " n " losses logged"; bad = 1 }
              printf "%d validation losses\n", n; exit bad }'
}

if ! command -v mpirun >/dev/null || [ ! -x "$BIN" ]; then
    echo "not ok - mpirun and $BIN exist (make MPI=1)"
    exit 1
fi

# ---- data: a small two-domain log ------------------------------------------------
one "$BIN" synth --out "$TMP" --source-requests 1500 --target-requests 400 --quiet
[ "$rc" -eq 0 ] && ok "synth writes the data" || not_ok "synth writes the data (exit $rc)"

# cfg FILE [TRAIN-EXTRA] [MODEL-EXTRA]: the source ranker, evaluated every 15 steps.
cfg() {
    cat >"$1" <<EOF
data:
  path: $TMP/source.csv
  split: {by: column, column: split}
  group: request_id
  user: user_id
  slices: [new_release]
features:
  - {name: user, type: categorical, column: user_id, dim: 8}
  - {name: item, type: categorical, column: item_id, dim: 8, id_dropout: 0.1}
  - {name: genre, type: categorical, column: genre, dim: 4}
  - {name: hour, type: categorical, column: hour, dim: 2}
  - {name: item_f1, type: numeric, transform: zscore}
  - {name: item_quality, type: numeric, transform: zscore}
  - {name: item_popularity, type: numeric, transform: log1p_zscore}
  - {name: user_sig1, type: numeric, transform: zscore, default: 0}
tasks:
  - {name: click, type: binary, label: click}
  - {name: watch_time, type: regression, label: watch_time, mask: click}
model: {type: mmoe, experts: 2, expert_layers: [${4:-16}], tower_layers: [8]${3:-}}
train:
  lr: 0.003
  sparse_lr: 0.05
  batch_size: ${5:-63}
  epochs: 2
  seed: 3
  threads: 1
  early_stopping: {mode: sum_loss, patience: 2, eval_every: 15}
  ${2:-}
eval: {k: 5, popularity_feature: item_popularity}
EOF
}
cfg "$TMP/fp32.yaml"
# bf16 products run only above a size (CR_GEMM_BF16_MIN_WORK): layers and
# batch wide enough that a rank's half batch still takes them
cfg "$TMP/bf16.yaml" "precision: bf16" "" "128, 64" 128
cfg "$TMP/unc.yaml" "" ", loss_weighting: uncertainty"

# ---- training: N ranks = one process ----------------------------------------------
for c in fp32 bf16 unc; do
    # bf16 rounds every product's inputs to 8 significant bits (2^-8 = 4e-3):
    # a weight that differs in its last fp32 bit may round to another bf16
    # value, so bf16 runs agree to bf16's rounding, not fp32's
    TOL=2e-5
    [ "$c" = bf16 ] && TOL=1e-2
    one "$BIN" train --config "$TMP/$c.yaml" --out "$TMP/$c-1"
    cp "$OUT" "$TMP/$c-1.log"
    for np in 2 3; do
        [ "$c" != fp32 ] && [ "$np" = 3 ] && continue
        mpi "$np" "$BIN" train --config "$TMP/$c.yaml" --out "$TMP/$c-$np"
        cp "$OUT" "$TMP/$c-$np.log"
        if [ "$rc" -eq 0 ] && close "$TMP/$c-1/metrics.json" "$TMP/$c-$np/metrics.json" >"$OUT" 2>&1 &&
            same_curve "$TMP/$c-1.log" "$TMP/$c-$np.log" >>"$OUT" 2>&1 &&
            grep -q '"ranks":	'"$np" "$TMP/$c-$np/metrics.json"; then
            ok "train $c: $np ranks give one process's loss curve and metrics ($(tr '\n' ' ' <"$OUT"))"
        else
            not_ok "train $c: $np ranks give one process's loss curve and metrics (exit $rc)"
        fi
    done
done

# ---- resume: the same N, and another N ----------------------------------------------
mpi 2 "$BIN" train --config "$TMP/fp32.yaml" --out "$TMP/cut" --quiet --stop-after-steps 40
if [ "$rc" -ne 0 ] && [ -f "$TMP/cut/last.safetensors" ]; then
    cp -r "$TMP/cut" "$TMP/cut1"
    mpi 2 "$BIN" train --config "$TMP/fp32.yaml" --out "$TMP/cut" --quiet --resume
    if [ "$rc" -eq 0 ] && close "$TMP/fp32-2/metrics.json" "$TMP/cut/metrics.json" >"$OUT" 2>&1; then
        ok "a 2-rank run resumed on 2 ranks ends as the uninterrupted one ($(cat "$OUT"))"
    else
        not_ok "a 2-rank run resumed on 2 ranks ends as the uninterrupted one (exit $rc)"
    fi
    one "$BIN" train --config "$TMP/fp32.yaml" --out "$TMP/cut1" --quiet --resume
    if [ "$rc" -eq 0 ] && close "$TMP/fp32-1/metrics.json" "$TMP/cut1/metrics.json" >"$OUT" 2>&1; then
        ok "a 2-rank checkpoint resumes in one process ($(cat "$OUT"))"
    else
        not_ok "a 2-rank checkpoint resumes in one process (exit $rc)"
    fi
else
    not_ok "a 2-rank run stops after 40 steps with a checkpoint (exit $rc)"
fi

# ---- label and score: the same bytes ---------------------------------------------------
TEACHER="$TMP/fp32-1/model.safetensors"
MAP=examples/synth/map.yaml
sed -e '/item_f2\|item_f3\|segment\|item_age\|hist_count\|user_sig2/d' "$MAP" >"$TMP/map.yaml"
one "$BIN" label --teacher "$TEACHER" --map "$TMP/map.yaml" --data "$TMP/target.csv" \
    --out "$TMP/l1.csv" --coverage "$TMP/c1.json" --quiet
for np in 2 3; do
    mpi "$np" "$BIN" label --teacher "$TEACHER" --map "$TMP/map.yaml" --data "$TMP/target.csv" \
        --out "$TMP/l$np.csv" --coverage "$TMP/c$np.json" --quiet
    if [ "$rc" -eq 0 ] && cmp -s "$TMP/l1.csv" "$TMP/l$np.csv" &&
        diff <(grep -v seconds "$TMP/c1.json") <(grep -v seconds "$TMP/c$np.json") >/dev/null &&
        [ -z "$(find "$TMP" -name '.part*')" ]; then
        ok "label on $np ranks writes one process's bytes and coverage"
    else
        not_ok "label on $np ranks writes one process's bytes and coverage (exit $rc)"
    fi
    one "$BIN" score --model "$TEACHER" --data "$TMP/source.csv" --out "$TMP/s1.tsv" --id-column request_id
    mpi "$np" "$BIN" score --model "$TEACHER" --data "$TMP/source.csv" --out "$TMP/s$np.tsv" \
        --id-column request_id
    if [ "$rc" -eq 0 ] && cmp -s "$TMP/s1.tsv" "$TMP/s$np.tsv" && grep -q "scored 7500 rows" "$OUT"; then
        ok "score on $np ranks writes one process's bytes"
    else
        not_ok "score on $np ranks writes one process's bytes (exit $rc)"
    fi
done

# ---- a study spread over ranks ---------------------------------------------------------
sed -e "s|path: $TMP/source.csv|path: $TMP/target.csv|" -e 's/epochs: 2/epochs: 1/' \
    -e '/user_sig1/d' -e 's/mode: sum_loss, patience: 2, eval_every: 15/mode: none/' \
    "$TMP/fp32.yaml" | sed -e '/watch_time/d' >"$TMP/student.yaml"
cat >"$TMP/study.yaml" <<EOF
teacher: {model: $TEACHER}
map: $TMP/map.yaml
target: $TMP/target.csv
students:
  - name: home
    config: student.yaml
    distill:
      - {task: click, column: teacher_click, logit_column: teacher_click_logit}
    techniques: [none, aux_head, soft_label]
seeds: [1, 2]
fractions: [1.0]
threads: 1
bootstrap: {resamples: 20, level: 0.9, seed: 7}
slice: new_release
EOF
# untimed FILE: results.json without its timings and the labelled file's path
untimed() {
    awk '/"stage_seconds"/ { skip = 1 } skip { if (/}/) skip = 0; next }
         /"seconds"|"labelled"/ { next } { print }' "$1"
}
one "$BIN" experiment --config "$TMP/study.yaml" --out "$TMP/st1" --quiet
mpi 2 "$BIN" experiment --config "$TMP/study.yaml" --out "$TMP/st2" --quiet
if [ "$rc" -eq 0 ] && [ -f "$TMP/st1/results.json" ] &&
    diff <(untimed "$TMP/st1/results.json") <(untimed "$TMP/st2/results.json") >"$OUT"; then
    ok "a study spread over 2 ranks writes one process's results.json (timings aside)"
else
    not_ok "a study spread over 2 ranks writes one process's results.json (exit $rc)"
fi

# ---- a failing rank ends the job with its message ---------------------------------------
# rank 1 reads a config whose data file does not exist there
sed -e "s|$TMP/source.csv|$TMP/nowhere.csv|" "$TMP/fp32.yaml" >"$TMP/missing.yaml"
cat >"$TMP/byrank.sh" <<EOF
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "\$@" --config "$TMP/missing.yaml"; fi
exec "\$@" --config "$TMP/fp32.yaml"
EOF
chmod +x "$TMP/byrank.sh"
mpi 2 "$TMP/byrank.sh" "$BIN" train --out "$TMP/fail" --quiet
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "rank 1: .*nowhere.csv" "$OUT"; then
    ok "a data file missing on rank 1 ends the job non-zero with rank 1's message"
else
    not_ok "a data file missing on rank 1 ends the job non-zero with rank 1's message (exit $rc)"
fi
# a malformed row in the last shard: only the last rank sees it
cp "$TMP/target.csv" "$TMP/bad.csv"
echo "1,2,3" >>"$TMP/bad.csv"
BADLINE=$(wc -l <"$TMP/bad.csv")
mpi 2 "$BIN" label --teacher "$TEACHER" --map "$TMP/map.yaml" --data "$TMP/bad.csv" \
    --out "$TMP/lbad.csv" --quiet
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "rank 1: .*bad.csv:$BADLINE:" "$OUT" &&
    [ ! -e "$TMP/lbad.csv" ]; then
    ok "a bad row in rank 1's shard ends the job with its file:line and no output"
else
    not_ok "a bad row in rank 1's shard ends the job with its file:line and no output (exit $rc)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
