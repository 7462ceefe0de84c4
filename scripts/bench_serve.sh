#!/usr/bin/env bash
# bench_serve.sh - the serving benchmark. In process: AUC and latency per
# precision on the MovieLens model (build/bench/serve), then crossrec's
# scoring paths (build/bench/serve_latency) beside the PyTorch twin in eager
# mode and as TorchScript (bench/serve_torch.py) and the same model exported
# by `crossrec export --format onnx` in ONNX Runtime from node
# (bench/serve_onnx.js; MovieLens: the encoded rows, checked against
# `crossrec score` first), for 10, 100 and 1000 candidates, on the reference
# shape and the MovieLens model, at 1 and 2 threads. Over HTTP: wrk at 1, 16 and 64 connections against
# `crossrec serve` with a 100-candidate request built from real MovieLens
# rows, in both protocols (POST /v1/score and the Open Inference Protocol's
# POST /v2/models/movielens/infer, the same rows as tensors). --soak: 64
# connections for 60 s, RSS before and after, no error allowed.
# --slowloris: the server at a connection limit of SLOW_LIMIT (64), wrk at 8
# connections idle, then again while 2 x SLOW_LIMIT slow clients (perl)
# dribble header bytes and reconnect whenever they are cut off; the p99
# under attack should stay within 2x the idle p99. Load goes to 127.0.0.1
# only; every run is bounded in time.
#
#   scripts/bench_serve.sh [--inprocess | --http | --soak | --slowloris] [BUILD] [SECONDS] [PRECISION]
#     (no mode flag: in-process, then HTTP)   SECONDS: per wrk run (default 10)
# Environment:
#   BENCH_ROUNDS    in-process rounds, the three sides in turn; best kept (default 2)
#   BENCH_SECONDS   in-process measuring time per path and size (default 1)
#   BENCH_THREADS   in-process thread counts (default "1 2")
#   BENCH_PYTHON    interpreter with torch (default /usr/bin/python3)
#   BENCH_ORT_NODE_PATH  node_modules holding onnxruntime-node (default build/node/node_modules,
#                   where `make ort` installs it)
#   SERVE_THREADS   `crossrec serve --threads` (default 4); SOAK_SECONDS (default 60)
# It installs nothing; a side that cannot run is reported and skipped. On a
# shared machine other processes take cores mid-run: the three sides run in
# turn, each keeps its best round, and the cpu lines show what each got.
set -u
cd "$(dirname "$0")/.."

MODE=all
case "${1:-}" in
--inprocess) MODE=inprocess; shift ;;
--http) MODE=http; shift ;;
--soak) MODE=soak; shift ;;
--slowloris) MODE=slowloris; shift ;;
-h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
BUILD=${1:-build}
SECS=${2:-10}
PREC=${3:-fp32}
ROUNDS=${BENCH_ROUNDS:-2}
ISECS=${BENCH_SECONDS:-1}
THREADS=${BENCH_THREADS:-"1 2"}
PY=${BENCH_PYTHON:-/usr/bin/python3}
TORCH_LD=/usr/lib/x86_64-linux-gnu/openblas-openmp
ORT_NODE_PATH=${BENCH_ORT_NODE_PATH:-build/node/node_modules}
SERVE_THREADS=${SERVE_THREADS:-4}
SOAK_SECS=${SOAK_SECONDS:-60}
MODEL=out/movielens/model.safetensors
CONFIG=examples/movielens/ranker.yaml
CSV=build/movielens/impressions.csv
PORT=${CR_BENCH_PORT:-18080}
OUT=$BUILD/bench/results/serve
mkdir -p "$OUT"
failed=""
fail() { # name rc logfile
    failed="$failed $1"
    echo "FAILED: $1 (exit $2); last lines of $3:"
    tail -n 5 "$3" | sed 's/^/  | /'
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

make -s "$BUILD/crossrec" "$BUILD/bench/serve" "$BUILD/bench/serve_latency" || exit 1
if [ ! -f "$MODEL" ] || [ ! -f "$CSV" ]; then
    echo "== no MovieLens model: building the impressions and training one (as make demo) =="
    "$BUILD/crossrec" movielens --in data/movielens --out "$CSV" --protocol period &&
        "$BUILD/crossrec" train --config "$CONFIG" --out out/movielens || exit 1
fi
# The rows the in-process runs score and the HTTP body is built from: the
# first 1,000 of the test split (column 5 is `split`; the file has no quotes).
ROWS=$OUT/ml_test_rows.csv
awk -F, 'NR == 1 || $5 == "test"' "$CSV" | head -n 1001 > "$ROWS"

# ---- in process ----------------------------------------------------------------
inprocess() {
    echo "== AUC and latency per precision (build/bench/serve), load $(load) =="
    "$BUILD/bench/serve" "$MODEL" "$CONFIG" 200 > "$OUT/serve.txt" 2>&1 || fail serve $? "$OUT/serve.txt"
    cat "$OUT/serve.txt"
    echo

    have_torch=0 have_ort=0
    if LD_LIBRARY_PATH=$TORCH_LD "$PY" -c 'import torch' > "$OUT/torch_check.txt" 2>&1; then
        have_torch=1
    else
        echo "PyTorch is not importable by $PY: apt-get install -y python3-torch libopenblas0-openmp"
    fi
    # ONNX Runtime runs crossrec's own export of the same models: the
    # reference shape (saved by serve_latency) on random rows, MovieLens on
    # the encoded test rows, checked against `crossrec score` before timing.
    X=$OUT/onnx
    if command -v node > /dev/null &&
        NODE_PATH=$ORT_NODE_PATH node -e 'require("onnxruntime-node")' > "$OUT/ort_check.txt" 2>&1; then
        mkdir -p "$X"
        if { "$BUILD/bench/serve_latency" --model reference --save "$X/reference.safetensors" &&
            "$BUILD/crossrec" export --format onnx --model "$X/reference.safetensors" --out "$X/reference.onnx" &&
            "$BUILD/crossrec" export --format onnx --model "$MODEL" --out "$X/movielens.onnx" &&
            "$BUILD/crossrec" encode --model "$MODEL" --data "$ROWS" --out "$X/movielens.inputs.safetensors" &&
            "$BUILD/crossrec" score --model "$MODEL" --data "$ROWS" --out "$X/movielens.scores.csv" --threads 1
        } > "$OUT/export.txt" 2>&1; then
            have_ort=1
        else
            fail "onnx export" $? "$OUT/export.txt"
        fi
    else
        echo "ONNX Runtime side skipped: needs node and onnxruntime-node in $ORT_NODE_PATH (make ort)"
    fi

    echo "== side by side: $ROUNDS round(s) of ${ISECS}s per path and size, load before $(load) =="
    rm -f "$OUT"/lat_*.txt
    for t in $THREADS; do
        for model in reference movielens; do
            if [ $model = reference ]; then cargs="--model reference" targ=reference
            else cargs="--model $MODEL --config $CONFIG --data $ROWS --no-peak" targ=$MODEL; fi
            for r in $(seq 1 "$ROUNDS"); do
                f=$OUT/lat_crossrec_${model}_${t}t.r$r.txt
                # shellcheck disable=SC2086
                OMP_NUM_THREADS=$t "$BUILD/bench/serve_latency" $cargs --threads "$t" \
                    --seconds "$ISECS" > "$f" 2>&1 || fail "crossrec_${model}_${t}t.r$r" $? "$f"
                if [ $have_torch = 1 ]; then
                    f=$OUT/lat_torch_${model}_${t}t.r$r.txt
                    OMP_NUM_THREADS=$t LD_LIBRARY_PATH=$TORCH_LD "$PY" bench/serve_torch.py \
                        --model "$targ" --threads "$t" --seconds "$ISECS" > "$f" 2>&1 ||
                        fail "torch_${model}_${t}t.r$r" $? "$f"
                fi
                if [ $have_ort = 1 ]; then
                    f=$OUT/lat_ort_${model}_${t}t.r$r.txt
                    if [ $model = reference ]; then oargs="--random"
                    else oargs="--inputs $X/movielens.inputs.safetensors --expected $X/movielens.scores.csv"; fi
                    # shellcheck disable=SC2086
                    OMP_NUM_THREADS=$t NODE_PATH=$ORT_NODE_PATH node bench/serve_onnx.js \
                        --onnx "$X/$model.onnx" $oargs --threads "$t" --seconds "$ISECS" > "$f" 2>&1 ||
                        fail "ort_${model}_${t}t.r$r" $? "$f"
                fi
            done
        done
    done
    echo "load after: $(load)"
    summarize
}

# The best value of every numeric key over a side's rounds (lowest for
# latencies, highest for rates and cpu), as `key value` lines.
best() { # side model threads
    local files
    files=$(ls "$OUT"/lat_"$1"_"$2"_"$3"t.r*.txt 2> /dev/null) || return 0
    # shellcheck disable=SC2086
    awk -F': ' '$2 ~ /^[0-9.eE+-]+$/ {
            lo = ($1 ~ /_ms$|_diff$/)
            if (!($1 in v) || (lo && $2 + 0 < v[$1] + 0) || (!lo && $2 + 0 > v[$1] + 0)) v[$1] = $2
        }
        END { for (k in v) print k, v[k] }' $files
}

summarize() {
    echo
    echo "== summary: best round per side; ratio = other p50 / crossrec p50 (above 1: crossrec faster) =="
    for t in $THREADS; do
        for model in reference movielens; do
            { best crossrec $model "$t" | sed 's/^/cr /'
              best torch $model "$t" | sed 's/^/torch /'
              best ort $model "$t" | sed 's/^/ort /'
              best crossrec reference "$t" | sed -n 's/^sgemm_peak_gflops /peak /p'; } |
            awk -v model=$model -v t="$t" '
                { v[$1 " " $2] = $3 }
                $1 == "peak" { peak = $2 }
                END {
                    p = model "_" t "t_"
                    if (peak) printf "%ssgemm_peak_gflops: %s\n", p, peak
                    n = split("10 100 1000", sz, " ")
                    ni = split("cr:fwd_fp32 cr:req_fp32 cr:req_bf16 cr:req_int8 cr:api_fp32 cr:api_bf16 cr:api_int8 torch:torch_eager torch:torch_script ort:ort", im, " ")
                    for (s = 1; s <= n; s++) {
                        N = sz[s]
                        base = v["cr fwd_fp32_n" N "_p50_ms"]
                        gf = v["cr n" N "_gflop_per_call"]
                        printf "%sn%s_gflop_per_call: %s\n", p, N, gf
                        for (i = 1; i <= ni; i++) {
                            split(im[i], a, ":")
                            k50 = a[1] " " a[2] "_n" N "_p50_ms"
                            if (!(k50 in v)) continue
                            p50 = v[k50]; p99 = v[a[1] " " a[2] "_n" N "_p99_ms"]
                            printf "%s%s_n%s_p50_ms: %s\n", p, a[2], N, p50
                            printf "%s%s_n%s_p99_ms: %s\n", p, a[2], N, p99
                            # split requests do fewer FLOPs; count each path its own
                            f = (a[2] ~ /^(req|api)_/ && v["cr n" N "_req_gflop_per_call"] != "") ? v["cr n" N "_req_gflop_per_call"] : gf
                            if (peak && p50 > 0) printf "%s%s_n%s_peak_share: %.3f\n", p, a[2], N, f / (p50 * 1e-3) / peak
                            if (a[1] != "cr" && base > 0) printf "%sn%s_%s_over_crossrec: %.2f\n", p, N, a[2], p50 / base
                            # bf16 and int8 against fp32 on the same path (req or api)
                            f32 = a[2]; sub(/_(bf16|int8)$/, "_fp32", f32)
                            if (f32 != a[2] && v["cr " f32 "_n" N "_p50_ms"] > 0)
                                printf "%sn%s_%s_over_fp32: %.2f\n", p, N, a[2], p50 / v["cr " f32 "_n" N "_p50_ms"]
                        }
                    }
                    printf "%scpu_util: crossrec %s, torch %s, ort %s (of %s)\n", p, v["cr cpu_util"], v["torch cpu_util"], v["ort cpu_util"], t
                }'
        done
    done | tee "$OUT/summary.txt"
}

# ---- over HTTP -------------------------------------------------------------------
SRV=""
TMP=$(mktemp -d /tmp/crossrec-bench-XXXXXX)
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2> /dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

start_server() {
    command -v wrk > /dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 1; }
    # A request: the first test row's user side as context, the first 100
    # test rows' item side as candidates (every input the model reads).
    awk -F, -v n=100 '
      function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
      NR == 2 {
        nc = split("user_id hist_count hist_mean_rating hist_top_genres last_items days_since_first hour_of_day day_of_week", cc, " ")
        printf "{\"context\":{"
        for (i = 1; i <= nc; i++) printf "%s\"%s\":%s", (i > 1 ? "," : ""), cc[i], q($col[cc[i]])
        printf "},\"candidates\":["
        ni = split("movie_id genres year item_popularity item_mean_rating item_age director mpaa major_genre imdb_rating running_time genre_overlap", ic, " ")
      }
      NR >= 2 && NR < n + 2 {
        printf "%s{", (NR > 2 ? "," : "")
        for (i = 1; i <= ni; i++) printf "%s\"%s\":%s", (i > 1 ? "," : ""), ic[i], q($col[ic[i]])
        printf "}"
      }
      END { print "]}" }' "$ROWS" > "$TMP/body.json"
    # the same request as Open Inference Protocol tensors: the user side
    # as one-element BYTES tensors (context), each item column as a
    # 100-element BYTES tensor (one value per candidate)
    awk -F, -v n=100 '
      function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
      NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i
                nc = split("user_id hist_count hist_mean_rating hist_top_genres last_items days_since_first hour_of_day day_of_week", cc, " ")
                ni = split("movie_id genres year item_popularity item_mean_rating item_age director mpaa major_genre imdb_rating running_time genre_overlap", ic, " ")
                next }
      NR == 2 { for (i = 1; i <= nc; i++) ctx[i] = q($col[cc[i]]) }
      NR >= 2 && NR < n + 2 { m++; for (i = 1; i <= ni; i++) v[i] = v[i] (m > 1 ? "," : "") q($col[ic[i]]) }
      END {
        printf "{\"inputs\":["
        for (i = 1; i <= nc; i++)
          printf "%s{\"name\":\"%s\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[%s]}", (i > 1 ? "," : ""), cc[i], ctx[i]
        for (i = 1; i <= ni; i++)
          printf ",{\"name\":\"%s\",\"datatype\":\"BYTES\",\"shape\":[%d],\"data\":[%s]}", ic[i], m, v[i]
        print "]}"
      }' "$ROWS" > "$TMP/body_v2.json"
    for v in v1 v2; do
        body=$TMP/body.json
        [ "$v" = v2 ] && body=$TMP/body_v2.json
        cat > "$TMP/post_$v.lua" << LUA
-- POST the same 100-candidate MovieLens request on every connection
local f = io.open("$body", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
    done
    "$BUILD/crossrec" serve --model "movielens=$MODEL" --host 127.0.0.1 --port "$PORT" \
        --threads "$SERVE_THREADS" --precision "$PREC" "$@" 2> "$TMP/serve.log" &
    SRV=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null 2>&1 && break; sleep 0.1; done
    curl -sf -XPOST --data-binary @"$TMP/body.json" "http://127.0.0.1:$PORT/v1/score" > "$TMP/first.json" ||
        { echo "the server did not answer the request:"; cat "$TMP/serve.log"; exit 1; }
    curl -sf -XPOST --data-binary @"$TMP/body_v2.json" "http://127.0.0.1:$PORT/v2/models/movielens/infer" \
        > "$TMP/first_v2.json" || { echo "the server did not answer the v2 request:"; cat "$TMP/serve.log"; exit 1; }
    head -c 160 "$TMP/first.json"
    echo " ..."
    head -c 160 "$TMP/first_v2.json"
    echo " ..."
}

rss() { awk '/^VmRSS/ { print $2 " kB" }' "/proc/$SRV/status"; }

# wrk's summary as one line; latencies in ms whatever unit wrk chose
run_wrk() { # connections seconds [v1|v2]
    local t=$(($1 < 2 ? $1 : 2)) v=${3:-v1} url="http://127.0.0.1:$PORT/v1/score"
    [ "$v" = v2 ] && url="http://127.0.0.1:$PORT/v2/models/movielens/infer"
    wrk -t"$t" -c"$1" -d"$2s" --timeout 10s --latency -s "$TMP/post_$v.lua" "$url" > "$TMP/wrk.txt" 2>&1
    cp "$TMP/wrk.txt" "$OUT/wrk_${v}_c$1_$2s.txt"
    awk -v c="$1" -v v="$v" '
        function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0;
                         if (s ~ /m$/) return s * 60000; if (s ~ /s$/) return s * 1000; return s }
        /Requests\/sec/ { rps = $2 } / 50%/ { p50 = ms($2) } / 99%/ { p99 = ms($2) }
        /requests in/ { total = $1 }
        /Non-2xx/ { bad = $NF } /Socket errors/ { sub(/^ *Socket errors: */, ""); err = $0 }
        END { printf "%s connections %3d: %9.1f req/s  p50 %7.2f ms  p99 %7.2f ms  requests %s  non-2xx %d  socket errors: %s\n",
                     v, c, rps, p50, p99, total, bad, (err == "" ? "none" : err) }' "$TMP/wrk.txt"
}

http() {
    start_server
    echo "== HTTP: 100 candidates per request, $PREC, $SERVE_THREADS server threads, wrk threads min(c, 2), ${SECS}s per run, load $(load) =="
    for v in v1 v2; do for c in 1 16 64; do run_wrk "$c" "$SECS" "$v"; done; done | tee "$OUT/http.txt"
    echo "load after: $(load)"
    curl -s "http://127.0.0.1:$PORT/metrics" |
        grep -E '^crossrec_(candidates_scored_total|http_requests_total\{endpoint="/v(1/score|2/models/infer)"|http_errors_total)'
}

# N slow clients for S seconds: each sends a request line, then one header
# byte per second, and reconnects at once when the server cuts it off.
slow_clients() { # n seconds
    perl -e '
        use strict; use IO::Socket::INET; $SIG{PIPE} = "IGNORE";
        my ($port, $n, $secs) = @ARGV; my (@s, $reconnects);
        sub conn { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, Blocking => 1, Timeout => 2);
                   if ($c) { $c->blocking(0); syswrite($c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); } return $c; }
        $s[$_] = conn() for 0 .. $n - 1;
        my $end = time + $secs;
        while (time < $end) {
            for my $i (0 .. $n - 1) {
                my $buf; my $gone = !$s[$i] || !defined syswrite($s[$i], "X") ||
                    (defined(sysread($s[$i], $buf, 1)) && $buf eq "" && 1);
                if ($gone) { close($s[$i]) if $s[$i]; $s[$i] = conn(); $reconnects++; }
            }
            select(undef, undef, undef, 1.0);
        }
        printf "slow clients: %d held for %d s, %d cut off and reconnected\n", $n, $secs, $reconnects // 0;
    ' "$PORT" "$1" "$2"
}

slowloris() {
    local limit=${SLOW_LIMIT:-64}
    start_server --max-connections "$limit" --max-per-ip 0
    echo "== slowloris: connection limit $limit, $((2 * limit)) slow clients, wrk 8 connections, ${SECS}s per run, $PREC, load $(load) =="
    run_wrk 8 2 > /dev/null # warm
    run_wrk 8 "$SECS" | sed 's/^/idle:   /' | tee "$OUT/slowloris.txt"
    slow_clients $((2 * limit)) $((SECS + 8)) > "$TMP/slow.txt" &
    local slow=$!
    sleep 4 # the slow clients fill the table and age past the eviction floor
    run_wrk 8 "$SECS" | sed 's/^/attack: /' | tee -a "$OUT/slowloris.txt"
    wait "$slow"
    cat "$TMP/slow.txt" | tee -a "$OUT/slowloris.txt"
    echo "load after: $(load)"
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^crossrec_connections' | tee -a "$OUT/slowloris.txt"
    awk '/^idle/ { for (i = 1; i <= NF; i++) if ($i == "p99") a = $(i + 1) }
         /^attack/ { for (i = 1; i <= NF; i++) if ($i == "p99") b = $(i + 1) }
         END { printf "p99 under attack / idle p99: %.2f (goal: at most 2)\n", b / a }' "$OUT/slowloris.txt" |
        tee -a "$OUT/slowloris.txt"
}

soak() {
    start_server
    local r0 r1 r2
    r0=$(rss)
    run_wrk 64 2 > /dev/null # warm: the workspace pool grows to its working size
    r1=$(rss)
    echo "== soak: 64 connections for ${SOAK_SECS}s, $PREC, $SERVE_THREADS server threads, load $(load) =="
    run_wrk 64 "$SOAK_SECS" | tee "$OUT/soak.txt"
    r2=$(rss)
    echo "load after: $(load)"
    echo "rss: after start $r0, after 2 s warm-up $r1, after the soak $r2" | tee -a "$OUT/soak.txt"
    curl -s "http://127.0.0.1:$PORT/metrics" |
        grep -E '^crossrec_(http_requests_total\{endpoint="/v1/score"|http_errors_total)' | tee -a "$OUT/soak.txt"
    kill -0 "$SRV" 2> /dev/null || { echo "FAILED: the server died during the soak"; exit 1; }
    if ! grep -q 'non-2xx 0  socket errors: none' "$OUT/soak.txt"; then
        echo "FAILED: the soak had errors"
        exit 1
    fi
    echo "soak: 0 errors"
}

case $MODE in
all) inprocess; echo; http ;;
inprocess) inprocess ;;
http) http ;;
soak) soak ;;
slowloris) slowloris ;;
esac
if [ -n "$failed" ]; then
    echo "FAILED:$failed"
    exit 1
fi
