#!/usr/bin/env bash
# onnx.sh - `crossrec export --format onnx` checked for real: every
# architecture (shared bottom with and without layers, MMoE and PLE with
# deep experts, towers of depth 0 to 2, binary and regression heads, a
# never-served distillation head, uncertainty weighting, hashed, shared,
# bucketized, sum- and mean-pooled and numeric features with every
# transform) is exported, passes onnx.checker.check_model (Debian's
# python3-onnx) with its metadata read back, and scores in ONNX Runtime
# (onnxruntime-node, which `make test` installs into build/node) within
# 1e-5 of `crossrec score` on every output; then a MovieLens model on the
# whole test split of the real data. A missing tool is a failure with the
# command that installs it, never a skip. Prints one line per check.
# CR_BUILD (default build) holds the crossrec binary; PYTHON (default
# /usr/bin/python3) has onnx; ORT_NODE_PATH (default build/node/node_modules).
set -u

cd "$(dirname "$0")/.." || exit 1
CR_BUILD=${CR_BUILD:-build}
BIN="$CR_BUILD/crossrec"
PY=${PYTHON:-/usr/bin/python3}
ORT=${ORT_NODE_PATH:-build/node/node_modules}
TMP=$(mktemp -d /tmp/crossrec-onnx-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
export OMP_WAIT_POLICY=passive
OUT="$TMP/output.txt"
# shellcheck source=tests/util/tap.sh
. tests/util/tap.sh

# ---- the tools: missing ones fail loudly, with the command that installs them ----
: >"$OUT"
if [ ! -x "$BIN" ]; then not_ok "$BIN exists (make $BIN)"; finish; fi
if ! "$PY" -c 'import onnx, onnx.checker' >"$OUT" 2>&1; then
    not_ok "$PY imports onnx (apt-get install -y python3-onnx, or make deps as root)"
    finish
fi
if ! command -v node >/dev/null || ! NODE_PATH=$ORT node -e 'require("onnxruntime-node")' >"$OUT" 2>&1; then
    not_ok "node loads onnxruntime-node from $ORT (make ort: installs it from the npm registry)"
    finish
fi
ok "tools: $PY with onnx $("$PY" -c 'import onnx; print(onnx.__version__)'), node $(node --version) with onnxruntime-node"

# export_check NAME MODEL DATA [TOL [WEIGHTS]]: export MODEL to ONNX, run the
# checker and read the metadata back, then score DATA in ONNX Runtime against
# crossrec (DATA's label columns give each binary output's AUC on both sides).
export_check() {
    local name=$1 model=$2 data=$3 tol=${4:-1e-5} weights=${5:-fp32} d="$TMP/$1"
    mkdir -p "$d"
    expect_ok "$name: export --format onnx --weights $weights" \
        "$BIN" export --format onnx --weights "$weights" --model "$model" --out "$d/model.onnx" || return
    expect_ok "$name: onnx.checker.check_model, metadata read back" \
        "$PY" tests/onnx_check.py "$d/model.onnx" "$d/model.vocab.json" || return
    expect_ok "$name: encode" "$BIN" encode --model "$model" --data "$data" --out "$d/inputs.safetensors" &&
        expect_ok "$name: score" "$BIN" score --model "$model" --data "$data" --out "$d/scores.csv" --threads 1 ||
        return
    if NODE_PATH=$ORT node tests/onnx_check.js "$d/model.onnx" "$d/inputs.safetensors" "$d/scores.csv" \
        --tol "$tol" --labels "$data" >"$OUT" 2>&1; then
        ok "$name: ONNX Runtime = crossrec score within $tol ($(grep -c 'max abs diff' "$OUT") outputs, $(sed -n 's/.*: \([0-9]*\) rows.*/\1/p' "$OUT" | head -n 1) rows)"
        sed -n 's/^/    /p' "$OUT" | grep -E 'max abs|AUC'
    else
        not_ok "$name: ONNX Runtime = crossrec score within $tol"
    fi
}

# ---- every architecture on the tiny MovieLens-shaped log ---------------------------------
IMP="$TMP/imp.csv"
expect_ok "movielens builds the tiny impressions" \
    "$BIN" movielens --in tests/fixtures/ml_tiny --out "$IMP" --negatives 2 || finish

# arch_cfg FILE MODEL_YAML [EXTRA]: every feature kind, pooling and transform.
arch_cfg() {
    cat >"$1" <<EOF
data:
  path: $IMP
  split: {by: column, column: split}
  group: request_id
features:
  - {name: user, type: categorical, column: user_id, dim: 4}
  - {name: item, type: categorical, column: movie_id, dim: 4}
  - {name: item_h, type: categorical, column: movie_id, dim: 3, hash_buckets: 7}
  - {name: last_items, type: multi, column: last_items, share: item, pooling: sum}
  - {name: genres, type: multi, column: genres, dim: 3, pooling: mean}
  - {name: year, type: bucketized, column: year, dim: 2, boundaries: [1960, 1990, 2000]}
  - {name: hist_count, type: numeric, column: hist_count, transform: log1p_zscore}
  - {name: hist_mean, type: numeric, column: hist_mean_rating, transform: zscore, default: 3.5}
  - {name: pop, type: numeric, column: item_popularity, transform: log1p}
  - {name: imdb, type: numeric, column: imdb_rating, transform: none, default: 6.5}
tasks:
  - {name: click, type: binary, label: click}
  - {name: like, type: binary, label: like, mask: click}
  - {name: engagement, type: regression, label: engagement, mask: click}
model: $2
train: {batch_size: 8, epochs: 2, seed: 1, threads: 1, early_stopping: {mode: none}, lr: 0.01}
eval: {k: 3}
${3:-}
EOF
}

train_arch() { # NAME MODEL_YAML [EXTRA]
    arch_cfg "$TMP/$1.yaml" "$2" "${3:-}"
    expect_ok "$1: train" "$BIN" train --config "$TMP/$1.yaml" --out "$TMP/$1.out" --quiet
}

train_arch sb '{type: shared_bottom, bottom_layers: [8, 6], tower_layers: [5, 3]}' &&
    export_check sb "$TMP/sb.out/model.safetensors" "$IMP"
train_arch sb0 '{type: shared_bottom, bottom_layers: [], tower_layers: []}' &&
    export_check sb0 "$TMP/sb0.out/model.safetensors" "$IMP"
train_arch mmoe '{type: mmoe, experts: 3, expert_layers: [8, 6, 4], tower_layers: [4], loss_weighting: uncertainty}' &&
    export_check mmoe "$TMP/mmoe.out/model.safetensors" "$IMP"
train_arch ple '{type: ple, shared_experts: 2, task_experts: 1, expert_layers: [6, 5], tower_layers: []}' &&
    export_check ple "$TMP/ple.out/model.safetensors" "$IMP"

# A student with never-served heads: the graph has the served ones only.
awk -F, 'BEGIN { OFS = "," } NR == 1 { print $0, "teacher_click", "teacher_extra"; next }
         { print $0, (NR % 7) / 7, (NR % 3) / 3 }' "$IMP" >"$TMP/labelled.csv"
arch_cfg "$TMP/student.yaml" '{type: ple, shared_experts: 1, task_experts: 2, expert_layers: [6], tower_layers: [4, 3]}' \
    "distill:
  tasks:
    - {task: click, technique: aux_head, column: teacher_click, weight: 0.5}
  new_heads:
    - {name: teacher_extra, kind: regression, tower: like}"
sed -i "s#path: $IMP#path: $TMP/labelled.csv#" "$TMP/student.yaml"
if expect_ok "student: train with a distillation head and a new head" \
    "$BIN" train --config "$TMP/student.yaml" --out "$TMP/student.out" --quiet; then
    export_check student "$TMP/student.out/model.safetensors" "$TMP/labelled.csv"
    "$PY" -c 'import onnx, sys
m = onnx.load(sys.argv[1])
print(" ".join(o.name for o in m.graph.output))' "$TMP/student/model.onnx" >"$OUT" 2>&1
    if [ "$(cat "$OUT")" = "click like engagement" ]; then
        ok "student: the graph serves click like engagement, not the distillation heads"
    else
        not_ok "student: the graph serves click like engagement, not the distillation heads"
    fi
    "$BIN" export --model "$TMP/student.out/model.safetensors" --out "$TMP/served.safetensors" >"$OUT" 2>&1
    if grep -q "(2 never-served heads dropped)" "$OUT"; then ok "student: both exports drop the same 2 heads"
    else not_ok "student: both exports drop the same 2 heads"; fi
fi

# ---- bad input ---------------------------------------------------------------------------
MODEL="$TMP/sb.out/model.safetensors"
# Atomic writes: a failure at any point leaves no file behind, not even a
# temporary (the rename fails when the target is a directory, even as root).
mkdir -p "$TMP/w" "$TMP/w/model.onnx" "$TMP/v" "$TMP/v/vocab.json"
"$BIN" export --format onnx --model "$MODEL" --out "$TMP/w/model.onnx" >"$OUT" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "w/model.onnx" "$OUT" && [ "$(ls -A "$TMP/w")" = model.onnx ] &&
    [ -z "$(ls -A "$TMP/w/model.onnx")" ]; then
    ok "export onto a path it cannot replace fails naming it and leaves no partial file"
else
    ls -la "$TMP/w" >>"$OUT"
    not_ok "export onto a path it cannot replace fails naming it and leaves no partial file (exit $rc)"
fi
"$BIN" export --format onnx --model "$MODEL" --out "$TMP/v/model.onnx" --vocab "$TMP/v/vocab.json" >"$OUT" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "v/vocab.json" "$OUT" && [ "$(ls -A "$TMP/v")" = vocab.json ]; then
    ok "export whose vocabulary file cannot be written leaves no graph either"
else
    ls -la "$TMP/v" >>"$OUT"
    not_ok "export whose vocabulary file cannot be written leaves no graph either (exit $rc)"
fi
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$TMP/ro" && chmod 555 "$TMP/ro"
    "$BIN" export --format onnx --model "$MODEL" --out "$TMP/ro/model.onnx" >"$OUT" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && grep -q "ro/model.onnx" "$OUT" && [ -z "$(ls -A "$TMP/ro")" ]; then
        ok "export into a read-only directory fails naming it and leaves no file"
    else
        not_ok "export into a read-only directory fails naming it and leaves no file (exit $rc)"
    fi
fi
"$BIN" export --format onnx --model "$MODEL" --out "$TMP/nodir/x/model.onnx" >"$OUT" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "nodir/x/model.onnx" "$OUT" && [ ! -e "$TMP/nodir" ]; then
    ok "export into a missing directory fails naming the path and writes nothing"
else
    not_ok "export into a missing directory fails naming the path and writes nothing (exit $rc)"
fi
"$BIN" export --format tflite --model "$MODEL" --out "$TMP/x.tflite" >"$OUT" 2>&1
if [ $? = 2 ] && grep -q "tflite" "$OUT"; then ok "export --format tflite is refused"
else not_ok "export --format tflite is refused"; fi

cp "$MODEL" "$TMP/keep.safetensors"
"$BIN" export --format onnx --model "$TMP/keep.safetensors" --out "$TMP/k.onnx" --vocab "$TMP/keep.safetensors" >"$OUT" 2>&1
if [ $? = 2 ] && grep -q "vocab must differ" "$OUT" && cmp -s "$MODEL" "$TMP/keep.safetensors"; then
    ok "export --vocab onto the model itself is refused"
else not_ok "export --vocab onto the model itself is refused"; fi

cut -d, -f1-5 "$IMP" >"$TMP/cols.csv"
expect_fail "encode: a file without the model's columns names the column and the file" \
    "user_id" "cols.csv" -- "$BIN" encode --model "$MODEL" --data "$TMP/cols.csv" --out "$TMP/x.safetensors"
if [ -e "$TMP/x.safetensors" ]; then not_ok "a failed encode leaves no file"; else ok "a failed encode leaves no file"; fi
run "$BIN" encode --help
if [ "$rc" = 0 ] && has "usage: crossrec encode" "--model" "--data" "--out"; then ok "encode --help"
else not_ok "encode --help (exit $rc)"; fi
run "$BIN" export --help
if [ "$rc" = 0 ] && has "--format F" "[safetensors]" "--weights P" "[fp32]"; then ok "export --help shows --format and --weights with defaults"
else not_ok "export --help shows --format and --weights with defaults (exit $rc)"; fi

# ---- MovieLens: the example ranker on the real data, its whole test split ----------------
ML="$TMP/ml.csv"
expect_ok "movielens builds the impressions of data/movielens" \
    "$BIN" movielens --in data/movielens --out "$ML" --protocol period || finish
# a quick model: 60,000 training rows, one epoch; every test row is scored
awk -F, 'NR == 1 || $5 == "test" || ($5 == "train" && ++t <= 60000) || ($5 == "valid" && ++v <= 5000)' \
    "$ML" >"$TMP/ml_small.csv"
sed -e "s#path: .*impressions.csv#path: $TMP/ml_small.csv#" -e 's/epochs: 8/epochs: 1/' \
    examples/movielens/ranker.yaml >"$TMP/ml.yaml"
if expect_ok "movielens: train the example MMoE ranker (1 epoch)" \
    "$BIN" train --config "$TMP/ml.yaml" --out "$TMP/ml.out" --quiet; then
    awk -F, 'NR == 1 || $5 == "test"' "$ML" >"$TMP/ml_test.csv"
    export_check movielens "$TMP/ml.out/model.safetensors" "$TMP/ml_test.csv"
    # bf16 weights: the same graph behind Casts; scores move by about 1e-3
    export_check movielens_bf16 "$TMP/ml.out/model.safetensors" "$TMP/ml_test.csv" 0.05 bf16
fi
finish
