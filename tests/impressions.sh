#!/usr/bin/env bash
# impressions.sh - `crossrec impressions` end to end: the MovieLens files
# described in YAML (examples/movielens/log.yaml) give the same bytes as
# `crossrec movielens`, with the defaults and with the period protocol and a
# strict domain; the listening log of examples/impressions builds and its
# ranker trains for an epoch; bad invocations name what is wrong. Prints one
# line per check and "N passed, M failed"; exits non-zero if any failed.
# CR_BUILD (default build, relative to the repository root) holds the binary.
set -u

cd "$(dirname "$0")/.." || exit 1
CR_BUILD=${CR_BUILD:-build}
BIN="$CR_BUILD/crossrec"
TMP=$(mktemp -d /tmp/crossrec-impressions-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/output.txt"
# shellcheck source=tests/util/tap.sh
. tests/util/tap.sh

if [ ! -x "$BIN" ]; then
    : >"$OUT"
    not_ok "$BIN exists (make $BIN)"
    finish
fi

# same WHAT A B: the two files hold the same bytes.
same() {
    if cmp "$2" "$3" >"$OUT" 2>&1; then ok "$1"; else not_ok "$1"; fi
}

# ---- MovieLens, two ways ------------------------------------------------------------
if [ -f data/movielens/ratings.csv ]; then
    expect_ok "movielens with its defaults" \
        "$BIN" movielens --in data/movielens --out "$TMP/ml.csv"
    expect_ok "impressions on examples/movielens/log.yaml" \
        "$BIN" impressions --config examples/movielens/log.yaml --out "$TMP/gen.csv"
    same "the two are byte-identical" "$TMP/ml.csv" "$TMP/gen.csv"

    # the same description with the period protocol and a strict domain
    sed -e "s|\.\./\.\./data/movielens|$PWD/data/movielens|" \
        -e 's|^protocol: .*|protocol: {negatives: 3, sampling: period, seed: 5, keep_fraction: 0.5}|' \
        -e 's|^return_days: .*|return_days: 10\ndomain: {exclude: Musical, strict: true, history: all}|' \
        examples/movielens/log.yaml >"$TMP/strict.yaml"
    expect_ok "movielens --protocol period --strict" \
        "$BIN" movielens --in data/movielens --out "$TMP/ml2.csv" --negatives 3 --protocol period \
        --seed 5 --keep-fraction 0.5 --return-days 10 --exclude-genre Musical --strict --history all
    expect_ok "impressions with the same options in YAML" \
        "$BIN" impressions --config "$TMP/strict.yaml" --out "$TMP/gen2.csv"
    same "the two are byte-identical" "$TMP/ml2.csv" "$TMP/gen2.csv"
    rm -f "$TMP"/ml*.csv "$TMP"/gen*.csv
else
    echo "# data/movielens is absent: the MovieLens comparison is skipped"
fi

# ---- a log that is not MovieLens -------------------------------------------------------
MUSIC="$TMP/music.csv"
expect_ok "impressions builds the listening log" \
    "$BIN" impressions --config examples/impressions/log.yaml --out "$MUSIC"
run head -n 1 "$MUSIC"
if has "request_id,user_id,track_id,timestamp,split" ",country,age_band,genres," ",artist," \
    ",click,complete,skip,listen_share,discovery,genre_return,new_release"; then
    ok "the header holds the renamed, attribute and label columns"
else
    not_ok "the header holds the renamed, attribute and label columns"
fi
if [ "$(wc -l <"$MUSIC")" -eq 12501 ]; then ok "2500 plays -> 12500 rows"
else : >"$OUT"; not_ok "2500 plays -> 12500 rows (got $(($(wc -l <"$MUSIC") - 1)))"; fi
sed -e "s|\.\./\.\./build/impressions/music.csv|$MUSIC|" examples/impressions/ranker.yaml \
    >"$TMP/ranker.yaml"
expect_ok "examples/impressions/ranker.yaml trains for an epoch" \
    "$BIN" train --config "$TMP/ranker.yaml" --out "$TMP/model" --epochs 1 --quiet
if [ -s "$TMP/model/model.safetensors" ]; then ok "the ranker was written"
else : >"$OUT"; not_ok "the ranker was written"; fi

# ---- bad invocations ---------------------------------------------------------------------
expect_fail "impressions without --config is refused" "--config and --out are required" -- \
    "$BIN" impressions --out "$TMP/x.csv"
expect_fail "a missing YAML names the file" "nope.yaml" -- \
    "$BIN" impressions --config "$TMP/nope.yaml" --out "$TMP/x.csv"
printf 'log: {path: %s, user: listener, item: track, time: played_at}\n' \
    "$PWD/examples/impressions/plays.csv" >"$TMP/unix.yaml"
expect_fail "an ISO time read as Unix seconds names the line and column" "plays.csv:2" \
    "played_at" -- "$BIN" impressions --config "$TMP/unix.yaml" --out "$TMP/x.csv"
if [ ! -e "$TMP/x.csv" ]; then ok "a failed build leaves no output"
else : >"$OUT"; not_ok "a failed build leaves no output"; fi
run "$BIN" impressions --help
if [ "$rc" -eq 0 ] && has "--config" "docs/impressions.md"; then ok "impressions --help"
else not_ok "impressions --help"; fi

finish
