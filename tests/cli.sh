#!/usr/bin/env bash
# cli.sh - the `crossrec` command end to end on a tiny MovieLens-shaped log:
# movielens builds it, train/eval/score/inspect work on it, every --help
# exits 0 and shows its defaults, and bad input (CSV, YAML, checkpoints,
# options) exits non-zero with a message that names the place. Prints one
# line per check and "N passed, M failed"; exits non-zero if any failed.
# Runs from anywhere; CR_BUILD (default build, relative to the repository
# root) holds the crossrec binary.
# shellcheck disable=SC2016 # the single-quoted $N below are awk fields, for awk to expand
set -u

cd "$(dirname "$0")/.." || exit 1
CR_BUILD=${CR_BUILD:-build}
BIN="$CR_BUILD/crossrec"
TMP=$(mktemp -d /tmp/crossrec-cli-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/output.txt"
# shellcheck source=tests/util/tap.sh
. tests/util/tap.sh

if [ ! -x "$BIN" ]; then
    : >"$OUT"
    not_ok "$BIN exists (make $BIN)"
    finish
fi

# ---- the data -------------------------------------------------------------------
# ml_tiny: 14 ratings -> 14 requests of 3 rows (36 train, 3 valid, 3 test).
IMP="$TMP/imp.csv"
expect_ok "movielens builds the impressions" \
    "$BIN" movielens --in tests/fixtures/ml_tiny --out "$IMP" --negatives 2
if [ -f "$IMP" ] && [ "$(wc -l <"$IMP")" -eq 43 ]; then
    : >"$OUT"
    ok "movielens wrote a header and 42 rows"
else
    cp "$IMP" "$OUT" 2>/dev/null || : >"$OUT"
    not_ok "movielens wrote a header and 42 rows"
    finish
fi

# write_cfg FILE DATA [ITEM_DIM] [EXTRA]: a config for the impressions.
write_cfg() {
    cat >"$1" <<EOF
data:
  path: $2
  split: {by: column, column: split}
  group: request_id
  user: user_id
features:
  - {name: user, type: categorical, column: user_id, dim: 4}
  - {name: item, type: categorical, column: movie_id, dim: ${3:-4}}
  - {name: last_items, type: multi, column: last_items, share: item}
  - {name: genres, type: multi, column: genres, dim: 3}
  - {name: year, type: bucketized, column: year, dim: 2, boundaries: [1960, 1990, 2000]}
  - {name: hist_count, type: numeric, column: hist_count, transform: log1p_zscore}
  - {name: item_popularity, type: numeric, column: item_popularity, transform: log1p_zscore}
tasks:
  - {name: click, type: binary, label: click}
  - {name: like, type: binary, label: like, mask: click}
  - {name: engagement, type: regression, label: engagement, mask: click}
model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}
train:
  batch_size: 8
  epochs: 3
  seed: 1
  threads: 1
  early_stopping: {mode: none}
eval: {k: 3, popularity_feature: item_popularity}
${4:-}
EOF
}

CFG="$TMP/ranker.yaml"
write_cfg "$CFG" imp.csv
MODEL="$TMP/out/model.safetensors"

# ---- train / eval / score / inspect ----------------------------------------------
run "$BIN" train --config "$CFG" --out "$TMP/out" --quiet
if [ "$rc" -eq 0 ] && has "validation (3 rows)" "test (3 rows)" "AUC" "click" "like" "engagement"; then
    ok "train succeeds and prints a metrics table"
else
    not_ok "train succeeds and prints a metrics table (exit $rc)"
fi
cp "$OUT" "$TMP/train.txt"
for f in model.safetensors metrics.json config.yaml last.safetensors; do
    if [ -s "$TMP/out/$f" ]; then ok "train wrote $f"; else : >"$OUT"; not_ok "train wrote $f"; fi
done
cp "$TMP/out/metrics.json" "$OUT" 2>/dev/null || : >"$OUT"
if has '"valid"' '"test"' '"click"' '"auc"' '"rmse"'; then
    ok "metrics.json has valid and test metrics per task"
else
    not_ok "metrics.json has valid and test metrics per task"
fi

run "$BIN" eval --model "$MODEL" --config "$CFG" --out "$TMP/eval.json"
if [ "$rc" -eq 0 ] && has "evaluation (3 rows)" "click" && [ -s "$TMP/eval.json" ]; then
    ok "eval prints the test metrics and writes --out"
else
    not_ok "eval prints the test metrics and writes --out (exit $rc)"
fi
# The test split's table rows from train and from eval are the same numbers.
sed -n '/^test (/,$p' "$TMP/train.txt" | grep -E '^  +[a-z_]+ ' | grep -v '^  task' >"$TMP/t1"
sed -n '/^evaluation (/,$p' "$OUT" | grep -E '^  +[a-z_]+ ' | grep -v '^  task' >"$TMP/t2"
if [ -s "$TMP/t1" ] && cmp -s "$TMP/t1" "$TMP/t2"; then
    ok "eval reproduces train's test metrics"
else
    diff "$TMP/t1" "$TMP/t2" >"$OUT" 2>&1
    not_ok "eval reproduces train's test metrics"
fi
run "$BIN" eval --model "$MODEL" --config "$CFG" --split valid
if [ "$rc" -eq 0 ] && has "evaluation (3 rows)"; then ok "eval --split valid"; else not_ok "eval --split valid (exit $rc)"; fi

SCORES="$TMP/scores.csv"
run "$BIN" score --model "$MODEL" --data "$IMP" --out "$SCORES" --id-column request_id
if [ "$rc" -eq 0 ] && [ -f "$SCORES" ] && [ "$(wc -l <"$SCORES")" -eq 43 ] &&
    [ "$(head -n 1 "$SCORES")" = "request_id,click,like,engagement" ] &&
    awk -F, 'NR > 1 && (NF != 4 || $2 < 0 || $2 > 1 || $3 < 0 || $3 > 1) { bad = 1 } END { exit bad }' "$SCORES"; then
    ok "score writes a header and one row per input row"
else
    { cat "$OUT"; head -n 5 "$SCORES"; } >"$TMP/o" 2>&1
    mv "$TMP/o" "$OUT"
    not_ok "score writes a header and one row per input row (exit $rc)"
fi
# Scoring needs the feature columns only: no labels, no split.
awk -F, 'BEGIN { OFS = "," }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i }
    { print $col["request_id"], $col["user_id"], $col["movie_id"], $col["last_items"],
            $col["genres"], $col["year"], $col["hist_count"], $col["item_popularity"] }' \
    "$IMP" >"$TMP/features.csv"
run "$BIN" score --model "$MODEL" --data "$TMP/features.csv" --out "$TMP/scores2.csv" --id-column request_id
if [ "$rc" -eq 0 ] && cmp -s "$SCORES" "$TMP/scores2.csv"; then
    ok "score on the feature columns alone gives the same scores"
else
    not_ok "score on the feature columns alone gives the same scores (exit $rc)"
fi

# ---- kernel sets ------------------------------------------------------------------
# The checkpoint trained under the default set scores under every set this
# CPU runs, to rounding (scores of 3 tasks in [0, 1]).
run "$BIN" cpu
if [ "$rc" -eq 0 ] && has "cpu:" "features:" "kernels:" "kernel sets: scalar"; then
    ok "cpu prints the features and the kernel set chosen"
else
    not_ok "cpu prints the features and the kernel set chosen (exit $rc)"
fi
SETS=$(sed -n 's/^kernel sets: //p' "$OUT")
MISSING=""
for isa in $SETS; do
    case "$isa" in
    *"("*) MISSING=${isa%%(*}; continue ;;
    esac
    CROSSREC_ISA=$isa run "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/scores_$isa.csv" \
        --id-column request_id
    if [ "$rc" -eq 0 ] && paste -d, "$SCORES" "$TMP/scores_$isa.csv" |
        awk -F, 'NR > 1 { for (i = 2; i <= 4; i++) { d = $i - $(i + 4); if (d < 0) d = -d;
                 if (d > 2e-6) bad = 1 } } END { exit bad }'; then
        ok "the checkpoint scores alike under CROSSREC_ISA=$isa"
    else
        not_ok "the checkpoint scores alike under CROSSREC_ISA=$isa (exit $rc)"
    fi
done
CROSSREC_ISA=avx3 run "$BIN" cpu
if [ "$rc" -eq 2 ] && has "CROSSREC_ISA=avx3: expected auto, scalar"; then
    ok "an unknown CROSSREC_ISA is refused"
else
    not_ok "an unknown CROSSREC_ISA is refused (exit $rc)"
fi
run "$BIN" --kernels scalar cpu
if [ "$rc" -eq 0 ] && has "kernels: scalar (" "kernel sets: scalar"; then
    ok "--kernels scalar before the command sets the kernel set cpu prints"
else
    not_ok "--kernels scalar before the command sets the kernel set cpu prints (exit $rc)"
fi
run "$BIN" --kernels=avx3 cpu
if [ "$rc" -eq 2 ] && has "CROSSREC_ISA=avx3: expected auto, scalar"; then
    ok "an unknown --kernels set is refused"
else
    not_ok "an unknown --kernels set is refused (exit $rc)"
fi
if [ -n "$MISSING" ]; then
    CROSSREC_ISA=$MISSING run "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/never.csv"
    if [ "$rc" -eq 2 ] && has "CROSSREC_ISA=$MISSING: this CPU lacks" && [ ! -e "$TMP/never.csv" ]; then
        ok "a kernel set this CPU lacks is refused, naming the missing feature"
    else
        not_ok "a kernel set this CPU lacks is refused, naming the missing feature (exit $rc)"
    fi
fi
# Tables go to standard output with --out -, the same bytes as the file.
"$BIN" score --model "$MODEL" --data "$IMP" --out - --id-column request_id >"$TMP/stdout.csv" 2>"$OUT"
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$SCORES" "$TMP/stdout.csv" && [ ! -e ./- ]; then
    ok "score --out - writes the table to standard output"
else
    not_ok "score --out - writes the table to standard output (exit $rc)"
fi
run "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/ids.csv" --id-column request_id \
    --id-column movie_id
if [ "$rc" -eq 0 ] && [ "$(head -n 1 "$TMP/ids.csv")" = "request_id,movie_id,click,like,engagement" ]; then
    ok "score keeps every --id-column, in order"
else
    not_ok "score keeps every --id-column, in order (exit $rc)"
fi
# A rename never replaces a symlink (such as /dev/stdout) or a FIFO.
echo keep >"$TMP/target.csv"
ln -s "$TMP/target.csv" "$TMP/link.csv"
mkfifo "$TMP/fifo.csv"
expect_fail "score --out onto a symlink is refused" "link.csv" "not a regular file" -- \
    "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/link.csv"
if [ -L "$TMP/link.csv" ] && [ "$(cat "$TMP/target.csv")" = keep ]; then
    ok "the symlink and its target are untouched"
else
    not_ok "the symlink and its target are untouched"
fi
expect_fail "score --out onto a FIFO is refused" "fifo.csv" "not a regular file" -- \
    "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/fifo.csv"
# The saved config is complete and works from any directory.
run sh -c "cd / && '$(cd "$(dirname "$BIN")" && pwd)/crossrec' eval --model '$MODEL' --config '$TMP/out/config.yaml'"
sed -n '/^evaluation (/,$p' "$OUT" | grep -E '^  +[a-z_]+ ' | grep -v '^  task' >"$TMP/t3"
if [ "$rc" -eq 0 ] && cmp -s "$TMP/t1" "$TMP/t3" && grep -q "^  batch_size: " "$TMP/out/config.yaml" &&
    grep -q "^  experts: " "$TMP/out/config.yaml"; then
    ok "OUT/config.yaml has every default and evaluates from another directory"
else
    not_ok "OUT/config.yaml has every default and evaluates from another directory (exit $rc)"
fi
# Training again from the saved config gives the same model, bit for bit.
run "$BIN" train --config "$TMP/out/config.yaml" --out "$TMP/again" --quiet
if [ "$rc" -eq 0 ] && cmp -s "$MODEL" "$TMP/again/model.safetensors"; then
    ok "training from OUT/config.yaml reproduces the model"
else
    not_ok "training from OUT/config.yaml reproduces the model (exit $rc)"
fi
# Mistypes get a suggestion.
expect_fail "a mistyped command gets a suggestion" "did you mean 'train'" -- "$BIN" trian
expect_fail "a mistyped option gets a suggestion" "did you mean --config" -- \
    "$BIN" train --confg "$CFG" --out "$TMP/x"
expect_fail "a mistyped lm command gets a suggestion" "did you mean 'generate'" -- "$BIN" lm generat
run "$BIN" lm generate --help
if [ "$rc" -eq 0 ] && has "usage: crossrec lm generate" "--temperature" && ! has "lm train --config"; then
    ok "lm generate --help is generate's help"
else
    not_ok "lm generate --help is generate's help (exit $rc)"
fi

run "$BIN" inspect "$MODEL"
if [ "$rc" -eq 0 ] && has "tensors (" "experts.l0.weight" "towers.0.l0.weight" "heads.click.weight" \
    "emb.user" "crossrec.ranker" "features (7)" "tasks (3)"; then
    ok "inspect lists metadata, features, tasks and tensors"
else
    not_ok "inspect lists metadata, features, tasks and tensors (exit $rc)"
fi

# A stopped run resumed ends where an uninterrupted one does.
run "$BIN" train --config "$CFG" --out "$TMP/cut" --quiet --stop-after-steps 7
if [ "$rc" -ne 0 ] && [ -f "$TMP/cut/last.safetensors" ]; then
    run "$BIN" train --config "$CFG" --out "$TMP/cut" --quiet --resume
    if [ "$rc" -ne 0 ]; then
        not_ok "train --resume after a stop ends with the uninterrupted model (exit $rc)"
    elif ! cmp -s "$MODEL" "$TMP/cut/model.safetensors"; then
        not_ok "train --resume after a stop ends with the uninterrupted model (the models differ)"
    else
        ok "train --resume after a stop ends with the uninterrupted model"
    fi
else
    not_ok "train --stop-after-steps 7 stops with a checkpoint (exit $rc)"
fi

# ---- --help ---------------------------------------------------------------------------
help_check() { # CMD TEXT...: --help exits 0 and shows each TEXT
    local cmd=$1
    shift
    run "$BIN" "$cmd" --help
    if [ "$rc" -eq 0 ] && has "usage: crossrec $cmd" "$@"; then
        ok "$cmd --help shows its defaults"
    else
        not_ok "$cmd --help shows its defaults (exit $rc)"
    fi
}
help_check train "--config" "[config, else 10]" "[config, else 1]" "[off]"
help_check eval "--split" "[test]" "[0]"
help_check score "--batch" "[1024]" "[none]"
help_check inspect "--meta" "[off"
help_check movielens "--negatives" "(default 4)" "(default popularity)"
run "$BIN" --help
if [ "$rc" -eq 0 ] && has "train" "eval" "score" "inspect" "movielens"; then
    ok "crossrec --help lists the commands"
else
    not_ok "crossrec --help lists the commands (exit $rc)"
fi

# ---- distillation: a frozen teacher labels the data, a student learns it through a
# never-served head, export drops that head --------------------------------------------
cat >"$TMP/map.yaml" <<EOF
features:
  - {feature: user, column: user_id}
  - {feature: item, column: movie_id}
  - {feature: last_items, column: last_items}
  - {feature: genres, column: genres}
  - {feature: year, default: true}
  - {feature: hist_count, column: hist_count}
  - {feature: item_popularity, constant: "3"}
teacher_tasks:
  - {name: teacher_click, head: click}
EOF
run "$BIN" label --teacher "$MODEL" --map "$TMP/map.yaml" --data "$IMP" --out "$TMP/labelled.csv" \
    --coverage "$TMP/coverage.json"
if [ "$rc" -eq 0 ] && head -n 1 "$TMP/labelled.csv" | grep -q "teacher_click" &&
    [ "$(wc -l <"$TMP/labelled.csv")" -eq 43 ] && [ -s "$TMP/coverage.json" ]; then
    ok "label writes the teacher's column for every row, and the coverage report"
else
    not_ok "label writes the teacher's column for every row, and the coverage report (exit $rc)"
fi
write_cfg "$TMP/student.yaml" labelled.csv 4 "distill:
  tasks:
    - {task: click, technique: aux_head, column: teacher_click, weight: 0.5}"
run "$BIN" train --config "$TMP/student.yaml" --out "$TMP/student" --quiet
run "$BIN" inspect "$TMP/student/model.safetensors"
if [ "$rc" -eq 0 ] && has "heads.click_distill.weight"; then
    ok "a distilled student carries its never-served head"
else
    not_ok "a distilled student carries its never-served head (exit $rc)"
fi
run "$BIN" export --model "$TMP/student/model.safetensors" --out "$TMP/served.safetensors"
run "$BIN" inspect "$TMP/served.safetensors"
if [ "$rc" -eq 0 ] && has "heads.click.weight" && ! grep -q "click_distill" "$OUT"; then
    ok "export drops the never-served head"
else
    not_ok "export drops the never-served head (exit $rc)"
fi
cat >"$TMP/badmap.yaml" <<EOF
features:
  - {feature: user, column: no_such_column}
teacher_tasks:
  - {name: t, head: click}
EOF
expect_fail "label: a map naming a missing column is refused with file:line" \
    "badmap.yaml:2" "no_such_column" -- \
    "$BIN" label --teacher "$MODEL" --map "$TMP/badmap.yaml" --data "$IMP" --out "$TMP/x.csv"

help_check serve "--port" "[127.0.0.1]" "--max-connections" "--admin"
expect_fail "serve --admin without a token is refused" "CROSSREC_ADMIN_TOKEN" -- \
    env -u CROSSREC_ADMIN_TOKEN "$BIN" serve --model "$MODEL" --admin --port 0
expect_fail "serve: a host that does not resolve is named" "no-such-host.invalid" -- \
    "$BIN" serve --model "$MODEL" --host no-such-host.invalid --port 0

# serve end to end: two named models on a free port, the protocol's health
# and metadata, an admin reload with the token from a file, SIGTERM.
# http_req PORT METHOD PATH [TOKEN]: one request over bash's /dev/tcp, answer in $OUT.
http_req() {
    local port=$1 method=$2 path=$3 token=${4:-}
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    local auth=""
    [ -n "$token" ] && auth="Authorization: Bearer $token"$'\r\n'
    printf '%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n%s\r\n' \
        "$method" "$path" "$auth" >&3
    timeout 10 cat <&3 >"$OUT"
    exec 3<&-
}
printf 'cli-test-token-0123456789\n' >"$TMP/token"
"$BIN" serve --model "a=$MODEL" --model "b=$MODEL" --port 0 --threads 2 --admin \
    --admin-token-file "$TMP/token" --reload-interval 0 2>"$TMP/serve.log" &
SRV=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/.*on http:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$TMP/serve.log")
    [ -n "$port" ] && break
    sleep 0.1
done
if [ -z "$port" ]; then
    cp "$TMP/serve.log" "$OUT"
    not_ok "serve starts on a free port and says where"
else
    ok "serve starts on a free port and says where (127.0.0.1 by default)"
    http_req "$port" GET /v2/health/ready
    if has "200 OK" '"ready":true'; then ok "serve: GET /v2/health/ready"; else not_ok "serve: GET /v2/health/ready"; fi
    http_req "$port" GET /v2/models/b
    if has "200 OK" '"name":"b"' '"inputs"'; then ok "serve: the second model's metadata"; else not_ok "serve: the second model's metadata"; fi
    http_req "$port" POST /v1/reload
    if has "401"; then ok "serve: reload without the token is 401"; else not_ok "serve: reload without the token is 401"; fi
    http_req "$port" POST /v1/reload cli-test-token-0123456789
    if has "200 OK" '"reloaded":true'; then ok "serve: reload with the token"; else not_ok "serve: reload with the token"; fi
    cp "$MODEL" "$TMP/model_keep.safetensors"
    head -c 100 "$TMP/model_keep.safetensors" >"$MODEL"
    http_req "$port" POST /v1/reload cli-test-token-0123456789
    if has "500" "still serving" && ! has "$TMP"; then
        ok "serve: a broken file is rejected, and the answer names no path"
    else
        not_ok "serve: a broken file is rejected, and the answer names no path"
    fi
    cp "$TMP/model_keep.safetensors" "$MODEL"
    kill -TERM "$SRV"
    wait "$SRV"
    src=$?
    cp "$TMP/serve.log" "$OUT"
    if [ "$src" -eq 0 ] && has "reload of model 'a' rejected" "model.safetensors" "stopped"; then
        ok "serve: the log names the rejected file; SIGTERM stops it cleanly"
    else
        not_ok "serve: the log names the rejected file; SIGTERM stops it cleanly (exit $src)"
    fi
fi
kill "$SRV" 2>/dev/null
help_check label "--batch" "[1024]"
help_check export "--out"
help_check tokenize "--decode"

# ---- bad CSV ----------------------------------------------------------------------------
# bad_csv NAME AWK: a copy of the impressions changed by AWK, and a config for it.
bad_csv() {
    awk -F, 'BEGIN { OFS = "," } '"$2"' { print }' "$IMP" >"$TMP/$1.csv"
    write_cfg "$TMP/$1.yaml" "$1.csv"
}
bad_csv fields 'NR == 10 { $0 = $0 ",extra" }'
expect_fail "a CSV row with too many fields names file:line" "fields.csv:10" "got 31" -- \
    "$BIN" train --config "$TMP/fields.yaml" --out "$TMP/o_fields" --quiet
bad_csv short 'NR == 20 { NF = 5 }'
expect_fail "a CSV row with too few fields names file:line" "short.csv:20" -- \
    "$BIN" train --config "$TMP/short.yaml" --out "$TMP/o_short" --quiet
bad_csv word 'NR == 12 { $6 = "abc" }'
expect_fail "a non-number in a numeric column names file:line:col and the column" \
    "word.csv:12:6" "hist_count" "abc" -- \
    "$BIN" train --config "$TMP/word.yaml" --out "$TMP/o_word" --quiet
bad_csv nan 'NR == 14 { $15 = "nan" }'
expect_fail "NaN in a numeric column names file:line:col" "nan.csv:14:15" "item_popularity" -- \
    "$BIN" train --config "$TMP/nan.yaml" --out "$TMP/o_nan" --quiet
bad_csv inf 'NR == 14 { $6 = "-inf" }'
expect_fail "infinity in a numeric column names file:line:col" "inf.csv:14:6" -- \
    "$BIN" train --config "$TMP/inf.yaml" --out "$TMP/o_inf" --quiet
bad_csv label 'NR == 2 { $24 = "2" }'
expect_fail "a binary label outside [0, 1] names file:line and the task" "label.csv:2:" "click" "got 2" -- \
    "$BIN" train --config "$TMP/label.yaml" --out "$TMP/o_label" --quiet
expect_fail "score: a CSV row with too many fields names file:line" "fields.csv:10" -- \
    "$BIN" score --model "$MODEL" --data "$TMP/fields.csv" --out "$TMP/s_bad.csv"
if [ -e "$TMP/s_bad.csv" ]; then
    : >"$OUT"
    not_ok "a failed score leaves no output file"
else
    ok "a failed score leaves no output file"
fi

# ---- bad YAML -----------------------------------------------------------------------------
write_cfg "$TMP/key.yaml" imp.csv
sed -i 's/{name: genres, type: multi, column: genres, dim: 3}/{name: genres, type: multi, column: genres, dims: 3}/' "$TMP/key.yaml"
expect_fail "a YAML unknown key names file:line and the key" "key.yaml:10:" "unknown key 'dims'" -- \
    "$BIN" train --config "$TMP/key.yaml" --out "$TMP/o_key" --quiet
write_cfg "$TMP/mkey.yaml" imp.csv
sed -i 's/^model: {type: mmoe, experts: 2/model: {type: mmoe, expert: 2/' "$TMP/mkey.yaml"
expect_fail "a YAML unknown key in model names file:line" "mkey.yaml:18:" "unknown key 'expert'" -- \
    "$BIN" train --config "$TMP/mkey.yaml" --out "$TMP/o_mkey" --quiet
write_cfg "$TMP/type.yaml" imp.csv
sed -i 's/batch_size: 8/batch_size: eight/' "$TMP/type.yaml"
expect_fail "a YAML value of the wrong type names file:line:col and the field" \
    "type.yaml:20:15" "train.batch_size" "'eight'" -- \
    "$BIN" train --config "$TMP/type.yaml" --out "$TMP/o_type" --quiet
write_cfg "$TMP/range.yaml" imp.csv
sed -i 's/batch_size: 8/batch_size: 0/' "$TMP/range.yaml"
expect_fail "a YAML value out of range names file:line:col" "range.yaml:20:15" "train.batch_size" -- \
    "$BIN" train --config "$TMP/range.yaml" --out "$TMP/o_range" --quiet
write_cfg "$TMP/col.yaml" imp.csv
sed -i 's/column: hist_count,/column: no_such_column,/' "$TMP/col.yaml"
expect_fail "a column the file lacks names the column and the file" "no_such_column" "imp.csv" -- \
    "$BIN" train --config "$TMP/col.yaml" --out "$TMP/o_col" --quiet
expect_fail "a config that does not exist names itself" "absent.yaml" -- \
    "$BIN" train --config "$TMP/absent.yaml" --out "$TMP/o_absent" --quiet
write_cfg "$TMP/nodata.yaml" missing.csv
expect_fail "a data file that does not exist names itself" "missing.csv" -- \
    "$BIN" train --config "$TMP/nodata.yaml" --out "$TMP/o_nodata" --quiet

# ---- bad checkpoints ----------------------------------------------------------------------
TRUNC="$TMP/trunc.safetensors"
size=$(wc -c <"$MODEL")
head -c $((size / 2)) "$MODEL" >"$TRUNC"
expect_fail "eval: a truncated checkpoint names the file" "trunc.safetensors" -- \
    "$BIN" eval --model "$TRUNC" --config "$CFG"
expect_fail "score: a truncated checkpoint names the file" "trunc.safetensors" -- \
    "$BIN" score --model "$TRUNC" --data "$IMP" --out "$TMP/s_trunc.csv"
expect_fail "inspect: a truncated checkpoint names the file" "trunc.safetensors" -- \
    "$BIN" inspect "$TRUNC"
head -c 6 "$MODEL" >"$TRUNC"
expect_fail "inspect: a checkpoint cut inside its length field names the file" "trunc.safetensors" -- \
    "$BIN" inspect "$TRUNC"
# the checkpoint is also a model (its training state is skipped)
run "$BIN" eval --model "$TMP/out/last.safetensors" --config "$CFG"
if [ "$rc" -eq 0 ]; then ok "eval reads the checkpoint as a model"; else not_ok "eval reads the checkpoint as a model (exit $rc)"; fi
# a finished run resumed trains nothing and says so; its files stay as they were
cp "$TMP/out/model.safetensors" "$TMP/model_before.safetensors"
run "$BIN" train --config "$CFG" --out "$TMP/out" --resume
if [ "$rc" -eq 0 ] && has "finished at step" "nothing trained" && cmp -s "$TMP/model_before.safetensors" "$TMP/out/model.safetensors"; then
    ok "train --resume of a finished run does nothing and says so"
else
    not_ok "train --resume of a finished run does nothing and says so (exit $rc)"
fi
write_cfg "$TMP/other.yaml" imp.csv 6
expect_fail "eval with a config whose features differ names the feature" "item" "model.safetensors" -- \
    "$BIN" eval --model "$MODEL" --config "$TMP/other.yaml"
expect_fail "train --resume with another config refuses the checkpoint" "last.safetensors" -- \
    "$BIN" train --config "$TMP/other.yaml" --out "$TMP/out" --quiet --resume

# ---- bad options ----------------------------------------------------------------------------
for cmd in train eval score inspect movielens; do
    expect_fail "$cmd: an unknown option is refused" "--bogus" -- "$BIN" "$cmd" --bogus
done
expect_fail "train --threads -3 is refused" "--threads" "-3" -- \
    "$BIN" train --config "$CFG" --out "$TMP/o_thr" --threads -3
expect_fail "eval --threads -3 is refused" "--threads" -- \
    "$BIN" eval --model "$MODEL" --config "$CFG" --threads -3
expect_fail "score --batch 0 is refused" "--batch" -- \
    "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/s_b.csv" --batch 0
expect_fail "train --epochs 2x is refused" "--epochs" "2x" -- \
    "$BIN" train --config "$CFG" --out "$TMP/o_ep" --epochs 2x
expect_fail "eval --split nope is refused" "--split" "nope" -- \
    "$BIN" eval --model "$MODEL" --config "$CFG" --split nope
expect_fail "movielens --negatives -1 is refused" "--negatives" -- \
    "$BIN" movielens --in tests/fixtures/ml_tiny --out "$TMP/x.csv" --negatives -1
expect_fail "movielens --return-days 0 is refused" "--return-days" -- \
    "$BIN" movielens --in tests/fixtures/ml_tiny --out "$TMP/x.csv" --return-days 0
expect_fail "movielens --strict without --exclude-genre is refused" "strict" -- \
    "$BIN" movielens --in tests/fixtures/ml_tiny --out "$TMP/x.csv" --strict
expect_fail "train without --config is refused" "--config" -- "$BIN" train --out "$TMP/o_none"
# A stray argument is named as such (not reported as a missing option).
expect_fail "train: a stray argument is refused and named" "stray" -- \
    "$BIN" train --config "$CFG" --out "$TMP/o_x" stray
expect_fail "eval: a stray argument is refused and named" "stray" -- \
    "$BIN" eval --model "$MODEL" --config "$CFG" stray
expect_fail "score: a stray argument is refused and named" "stray" -- \
    "$BIN" score --model "$MODEL" --data "$IMP" --out "$TMP/s_x.csv" stray
expect_fail "an unknown command is refused" "frobnicate" -- "$BIN" frobnicate

# Tokenizer: GPT-2 BPE from the bundled files, both directions.
printf 'Hello world' | "$BIN" tokenize --tokenizer data/tokenizers/gpt2 >"$OUT" 2>&1; rc=$?
if [ $rc = 0 ] && [ "$(tr -d '\n' <"$OUT")" = "15496 995" ]; then ok "tokenize: 'Hello world' -> 15496 995"
else not_ok "tokenize: 'Hello world' -> 15496 995"; fi
printf '15496 995' | "$BIN" tokenize --tokenizer data/tokenizers/gpt2 --decode >"$OUT" 2>&1; rc=$?
if [ $rc = 0 ] && [ "$(cat "$OUT")" = "Hello world" ]; then ok "tokenize --decode: 15496 995 -> 'Hello world'"
else not_ok "tokenize --decode: 15496 995 -> 'Hello world'"; fi

# Decoder: the bundled third-party llama2.c checkpoint, greedy ids from BOS
# (the same 64 ids its PyTorch twin produces; tests/test_decoder.c checks all).
run "$BIN" lm generate --model data/models/stories260K.bin --greedy --ids -n 8
if [ $rc = 0 ] && [ "$(tr -d '\n' <"$OUT")" = "461 461 401 401 401 461 378 455" ]; then ok "lm generate: stories260K greedy ids"
else not_ok "lm generate: stories260K greedy ids"; fi

# Language model: the bundled austen-small model scores Austen text and
# refuses a prompt longer than its context.
head -c 20000 data/text/austen.txt >"$TMP/austen_head.txt"
run "$BIN" lm eval --model data/models/austen-small/model.safetensors \
    --tokenizer data/models/austen-small/tokenizer --text "$TMP/austen_head.txt"
if [ "$rc" -eq 0 ] && grep -qi "perplexity" "$OUT"; then ok "lm eval: austen-small scores Austen text"
else not_ok "lm eval: austen-small scores Austen text (exit $rc)"; fi
# --bf16 multiplies by bf16 copies of the matrices: greedy text that starts
# as the float32 model's does ("Emma was not so much", docs/lm.md).
run "$BIN" lm generate --model data/models/austen-small/model.safetensors \
    --tokenizer data/models/austen-small/tokenizer --prompt "Emma was" -n 8 --greedy --bf16
if [ "$rc" -eq 0 ] && grep -q "^Emma was not so much" "$OUT"; then ok "lm generate --bf16: austen-small greedy text"
else not_ok "lm generate --bf16: austen-small greedy text (exit $rc)"; fi
long=$(printf 'word %.0s' $(seq 1 400))
expect_fail "lm generate: a prompt longer than the context is refused" "context" -- \
    "$BIN" lm generate --model data/models/austen-small/model.safetensors \
    --tokenizer data/models/austen-small/tokenizer --prompt "$long" -n 5
run "$BIN" ilm mf --ratings data/movielens/ratings.csv --out "$TMP/mf.safetensors" --epochs 2 --dim 8
if [ "$rc" -eq 0 ] && has "HR@10" "popularity" && [ -s "$TMP/mf.safetensors" ]; then
    ok "ilm mf: trains, saves and reports next-item HR@10 next to popularity"
else not_ok "ilm mf: trains, saves and reports next-item HR@10 next to popularity (exit $rc)"; fi

finish
