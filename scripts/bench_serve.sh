#!/usr/bin/env bash
# bench_serve.sh - serving benchmark: in-process latency and AUC per
# precision (build/bench/serve), then HTTP throughput of `crossrec serve`
# with wrk at 1, 16 and 64 connections on a 100-candidate request built from
# the MovieLens impressions. Needs `make demo` first (the model and the
# impressions) and wrk. Numbers on a shared machine are noisy.
#   scripts/bench_serve.sh [BUILD] [SECONDS] [PRECISION]
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${2:-10}
PREC=${3:-fp32}
MODEL=out/movielens/model.safetensors
CSV=build/movielens/impressions.csv
PORT=${CR_BENCH_PORT:-18080}
[ -f "$MODEL" ] && [ -f "$CSV" ] || { echo "run 'make demo' first ($MODEL, $CSV)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed"; exit 1; }
make -s "$BUILD/crossrec" "$BUILD/bench/serve"

"$BUILD/bench/serve" "$MODEL" examples/movielens/ranker.yaml 200

TMP=$(mktemp -d /tmp/crossrec-bench-XXXXXX)
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# A request: the first row's user side as context, 100 rows' item side as candidates.
awk -F, -v n=100 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  NR == 2 { printf "{\"context\":{\"user_id\":\"%s\",\"hist_count\":\"%s\",\"hour_of_day\":\"%s\",\"day_of_week\":\"%s\"},\"candidates\":[", $col["user_id"], $col["hist_count"], $col["hour_of_day"], $col["day_of_week"] }
  NR >= 2 && NR < n + 2 { printf "%s{\"movie_id\":\"%s\",\"year\":\"%s\",\"item_popularity\":\"%s\",\"mpaa\":\"%s\"}", (NR > 2 ? "," : ""), $col["movie_id"], $col["year"], $col["item_popularity"], $col["mpaa"] }
  END { print "]}" }' "$CSV" > "$TMP/body.json"
cat > "$TMP/post.lua" <<LUA
local f = io.open("$TMP/body.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

"$BUILD/crossrec" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --threads 4 \
    --precision "$PREC" 2>"$TMP/serve.log" &
SRV=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf -XPOST --data-binary @"$TMP/body.json" "http://127.0.0.1:$PORT/v1/score" | head -c 200; echo
echo "HTTP, 100 candidates per request, $PREC, 4 server threads, ${SECS}s per run"
for c in 1 16 64; do
    t=$(( c < 4 ? c : 4 ))
    wrk -t"$t" -c"$c" -d"${SECS}s" --latency -s "$TMP/post.lua" "http://127.0.0.1:$PORT/v1/score" |
        awk -v c="$c" '/Requests\/sec/ { rps = $2 } / 50%/ { p50 = $2 } / 99%/ { p99 = $2 }
                       /Non-2xx/ { bad = $NF } /Socket errors/ { err = $0 }
                       END { printf "connections %3d: %10s req/s  p50 %8s  p99 %8s  non-2xx %s %s\n", c, rps, p50, p99, bad ? bad : 0, err }'
done
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^crossrec_(candidates_scored_total|http_requests_total\{endpoint="/v1/score")'
