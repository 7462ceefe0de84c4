#!/usr/bin/env bash
# install.sh - `make install`'s tree works for a user: installed with a
# PREFIX (and staged with DESTDIR), the examples in examples/c build with
# nothing but `pkg-config --cflags --libs crossrec` and run: train then
# score, a serving request in-process, text generation.
set -u
BUILD=${CR_BUILD:-build}
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $1"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
SAN=""
case "$BUILD" in *san*) SAN="-fsanitize=address,undefined" ;; esac
PREFIX="$TMP/prefix"

if SANFLAGS="$SAN" LIBS_PRIVATE="" scripts/install.sh "$BUILD" "$PREFIX" > "$TMP/inst.log" 2>&1 &&
   [ -x "$PREFIX/bin/crossrec" ] && [ -f "$PREFIX/include/crossrec.h" ] &&
   [ -L "$PREFIX/lib/libcrossrec.so" ] && [ -f "$PREFIX/lib/libcrossrec.a" ] &&
   [ -s "$PREFIX/share/man/man1/crossrec.1" ] && [ -s "$PREFIX/share/man/man3/crossrec.3" ]; then
    ok "install with PREFIX puts the command, libraries, header, man pages and crossrec.pc in place"
else
    not_ok "install with PREFIX ($(tail -3 "$TMP/inst.log"))"
    finish
fi
if SANFLAGS="$SAN" scripts/install.sh "$BUILD" /usr/local "$TMP/stage" > /dev/null 2>&1 &&
   [ -x "$TMP/stage/usr/local/bin/crossrec" ] &&
   grep -q '^prefix=/usr/local$' "$TMP/stage/usr/local/lib/pkgconfig/crossrec.pc"; then
    ok "DESTDIR stages the tree under it, with paths for the final PREFIX"
else
    not_ok "DESTDIR stages the tree under it, with paths for the final PREFIX"
fi
for sub in train eval score serve experiment label lm; do
    grep -q "^\.SS crossrec $sub" "$PREFIX/share/man/man1/crossrec.1" || { not_ok "crossrec(1) has $sub"; finish; }
done
ok "crossrec(1) has a section per subcommand"

export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
export LD_LIBRARY_PATH="$PREFIX/lib"
flags=$(pkg-config --cflags --libs crossrec) || { not_ok "pkg-config knows crossrec"; finish; }
for ex in train_score serve_request generate; do
    if cc -std=c17 -Wall -Wextra -Werror examples/c/$ex.c $flags -o "$TMP/$ex" 2> "$TMP/$ex.cc"; then
        ok "examples/c/$ex.c builds with pkg-config alone"
    else
        not_ok "examples/c/$ex.c builds with pkg-config alone: $(head -5 "$TMP/$ex.cc")"
    fi
done

# train then score, on the tiny MovieLens fixture
"$PREFIX/bin/crossrec" movielens --in tests/fixtures/ml_tiny --out "$TMP/imp.csv" --negatives 2 > /dev/null 2>&1
cat > "$TMP/r.yaml" <<YAML
data: {path: imp.csv, split: {by: column, column: split}, group: request_id, user: user_id}
features:
  - {name: user, type: categorical, column: user_id, dim: 4}
  - {name: item, type: categorical, column: movie_id, dim: 4}
  - {name: hist_count, type: numeric, column: hist_count, transform: log1p_zscore}
tasks:
  - {name: click, type: binary, label: click}
  - {name: engagement, type: regression, label: engagement, mask: click}
model: {type: mmoe, experts: 2, expert_layers: [8], tower_layers: [4]}
train: {batch_size: 8, epochs: 2, seed: 1, threads: 1}
YAML
out=$("$TMP/train_score" "$TMP/r.yaml" "$TMP/run" user_id=1 movie_id=1 hist_count=3 2>&1)
if [ $? -eq 0 ] && grep -q "^click 0\.[0-9]" <<< "$out" && grep -q "^engagement " <<< "$out" &&
   [ -f "$TMP/run/metrics.json" ]; then
    ok "train_score trains, writes metrics.json and scores a row"
else
    not_ok "train_score: $out"
fi
out=$("$TMP/serve_request" "$TMP/run/model.safetensors" "user_id=1,hist_count=3" movie_id 1 2 5 2>&1)
if [ $? -eq 0 ] && [ "$(grep -c '^[123] ' <<< "$out")" -eq 3 ]; then
    ok "serve_request ranks three candidates"
else
    not_ok "serve_request: $out"
fi
out=$("$TMP/serve_request" "$TMP/run/model.safetensors" "" no_such_column 1 2>&1)
if [ $? -eq 2 ] && grep -q "no_such_column" <<< "$out"; then
    ok "serve_request names a column the model lacks"
else
    not_ok "serve_request with an unknown column: $out"
fi
M=data/models/austen-small
out=$("$TMP/generate" "$M/model.safetensors" "$M/tokenizer" "Emma was" 12 2>&1)
want=$("$PREFIX/bin/crossrec" lm generate --model "$M/model.safetensors" --tokenizer "$M/tokenizer" \
       --prompt "Emma was" -n 12 --temperature 0.8 --top-k 40 --seed 7 2>&1)
if [ -n "$out" ] && [ "$out" = "$want" ]; then
    ok "generate continues a prompt exactly as crossrec lm generate does"
else
    not_ok "generate: '$out' vs the CLI's '$want'"
fi
finish
