#!/usr/bin/env bash
# crash_resume.sh - crash consistency of training checkpoints: a run is
# killed with SIGKILL between file operations of its writes (the
# CROSSREC_CRASH_AT=k hook of src/core/io.c raises SIGKILL at the k-th step
# of any atomic write: create, each write, fsync, rename, directory fsync)
# and at random moments, then `train --resume` runs it to the end. Every
# resume must end bit-identical to the uninterrupted run (model and
# checkpoint) or refuse with a message naming the file; no temporary file
# may be left behind. Prints one line per kill point and "N passed, M
# failed"; exits non-zero if any failed.
#   tests/crash_resume.sh            a handful of kill points (CI)
#   tests/crash_resume.sh --all      every file operation of the run
#   tests/crash_resume.sh --random N also N kills at random moments
# CR_BUILD (default build) holds the crossrec binary.
set -u
cd "$(dirname "$0")/.." || exit 1
CR_BUILD=${CR_BUILD:-build}
BIN="$CR_BUILD/crossrec"
export OMP_WAIT_POLICY=passive
TMP=$(mktemp -d /tmp/crossrec-crash-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
ALL=0
RANDOM_KILLS=0
while [ $# -gt 0 ]; do
    case $1 in
    --all) ALL=1 ;;
    --random) RANDOM_KILLS=$2; shift ;;
    *) echo "usage: $0 [--all] [--random N]" >&2; exit 2 ;;
    esac
    shift
done
pass=0
fail=0

ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() {
    echo "not ok - $1"
    [ -s "$TMP/log.txt" ] && sed -e 's/^/    | /' "$TMP/log.txt" | tail -n 15
    fail=$((fail + 1))
}

"$BIN" movielens --in tests/fixtures/ml_tiny --out "$TMP/imp.csv" --negatives 2 >/dev/null 2>&1 ||
    { echo "not ok - movielens builds the impressions"; exit 1; }
# Evaluations every 2 steps, each one a checkpoint, and a best model
# written whenever validation improves: many commits to cut through.
cat >"$TMP/ranker.yaml" <<EOF
data:
  path: imp.csv
  split: {by: column, column: split}
  group: request_id
  user: user_id
features:
  - {name: user, type: categorical, column: user_id, dim: 4}
  - {name: item, type: categorical, column: movie_id, dim: 4}
  - {name: genres, type: multi, column: genres, dim: 3}
  - {name: item_popularity, type: numeric, column: item_popularity, transform: log1p_zscore}
tasks:
  - {name: click, type: binary, label: click}
  - {name: engagement, type: regression, label: engagement, mask: click}
model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}
train:
  batch_size: 8
  epochs: 3
  seed: 1
  threads: 1
  checkpoint_every: 1
  early_stopping: {mode: sum_loss, patience: 4, eval_every: 2}
eval: {k: 3, popularity_feature: item_popularity}
EOF
CFG="$TMP/ranker.yaml"
"$BIN" train --config "$CFG" --out "$TMP/ref" --quiet >/dev/null 2>&1 ||
    { echo "not ok - the uninterrupted run trains"; exit 1; }

# check WHAT DIR: resume DIR to the end and compare with the reference.
check() {
    local what=$1 dir=$2
    "$BIN" train --config "$CFG" --out "$dir" --quiet --resume >"$TMP/log.txt" 2>&1
    local rc=$?
    local tmps
    tmps=$(find "$dir" -name '*.tmp.*' 2>/dev/null | wc -l)
    if [ "$rc" -eq 0 ]; then
        if ! cmp -s "$TMP/ref/model.safetensors" "$dir/model.safetensors"; then
            not_ok "$what: resumed, but model.safetensors differs from the uninterrupted run"
        elif ! cmp -s "$TMP/ref/last.safetensors" "$dir/last.safetensors"; then
            not_ok "$what: resumed, but last.safetensors differs from the uninterrupted run"
        elif [ "$tmps" -ne 0 ]; then
            not_ok "$what: resumed, but $tmps temporary files are left"
        else
            ok "$what: resumed bit-identical"
        fi
    elif [ "$rc" -lt 128 ] && grep -q "safetensors" "$TMP/log.txt"; then
        ok "$what: resume refused, naming the file"
    else
        not_ok "$what: resume exited $rc without a clear message"
    fi
}

# Kill points: every file operation (--all) or a spread of them that
# reaches past the run's last write (CI). A run that completes before its
# kill point has fewer operations: the enumeration ends there.
k=1
prev=0
while :; do
    dir="$TMP/k$k"
    # (in a subshell, so the shell does not report the kill)
    (CROSSREC_CRASH_AT=$k "$BIN" train --config "$CFG" --out "$dir" --quiet >"$TMP/log.txt" 2>&1) 2>/dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "# the run has $((k - 1)) file operations or fewer; all later kill points are past its end"
        break
    fi
    if [ "$rc" -ne 137 ]; then
        not_ok "kill at file operation $k: the run exited $rc instead of being killed"
    else
        check "kill at file operation $k" "$dir"
    fi
    rm -rf "$dir"
    if [ "$ALL" = 1 ]; then
        k=$((k + 1))
    else # 1 2 3 5 8 13 21 ...: early, middle and late operations
        next=$((k + prev))
        [ "$next" -le "$k" ] && next=$((k + 1))
        prev=$k
        k=$next
    fi
done

# Kills at random moments (SIGKILL from outside, not at a file operation).
i=0
while [ "$i" -lt "$RANDOM_KILLS" ]; do
    dir="$TMP/r$i"
    "$BIN" train --config "$CFG" --out "$dir" --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    check "random kill $i" "$dir"
    rm -rf "$dir"
    i=$((i + 1))
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
