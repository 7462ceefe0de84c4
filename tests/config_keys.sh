#!/usr/bin/env bash
# config_keys.sh - the config reference cannot drift from the parsers.
#   1. docs/config-reference.md is exactly `crossrec config --reference`.
#   2. For every section of `crossrec config --keys`, a config with an
#      unknown key there makes the parser list the keys it accepts
#      ("expected one of: ..."); that list must equal the table's keys of the
#      section, so a key added to a parser and not to the table (or the other
#      way round) fails here.
#   3. `crossrec config --defaults` is a config that trains as it stands
#      (on a small generated log with its columns).
# Prints one line per check and "N passed, M failed"; exits non-zero if any
# failed. CR_BUILD (default build) holds the crossrec binary.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
CR_BUILD=${CR_BUILD:-build}
case "$CR_BUILD" in /*) BIN="$CR_BUILD/crossrec" ;; *) BIN="$ROOT/$CR_BUILD/crossrec" ;; esac
TMP=$(mktemp -d /tmp/crossrec-config-XXXXXX) || exit 1
trap 'rm -rf "$TMP"' EXIT
OUT="$TMP/out" # what a failed check shows
# shellcheck source=tests/util/tap.sh
. tests/util/tap.sh

if "$BIN" config --reference >"$TMP/ref.md" && diff -u docs/config-reference.md "$TMP/ref.md" >"$OUT"; then
    ok "docs/config-reference.md equals crossrec config --reference"
else
    not_ok "docs/config-reference.md differs from crossrec config --reference (regenerate it)"
fi

printf 'a,b,click\n1,x,1\n2,y,0\n' >"$TMP/d.csv"
# probe SECTION: the config with zz_probe in SECTION, on stdout.
probe() {
    local data="{path: d.csv}" feat="{name: a, type: numeric}" task="{name: click}"
    local top="" model="" train="" eval="" distill="" serve=""
    case "$1" in
    -) top="zz_probe: 1" ;;
    data) data="{path: d.csv, zz_probe: 1}" ;;
    data.split) data="{path: d.csv, split: {by: fraction, zz_probe: 1}}" ;;
    "features[]") feat="{name: a, type: numeric, zz_probe: 1}" ;;
    "tasks[]") task="{name: click, zz_probe: 1}" ;;
    model) model="model: {zz_probe: 1}" ;;
    train) train="train: {zz_probe: 1}" ;;
    train.early_stopping) train="train: {early_stopping: {zz_probe: 1}}" ;;
    eval) eval="eval: {zz_probe: 1}" ;;
    distill) distill="distill: {zz_probe: 1}" ;;
    "distill.tasks[]") distill="distill: {tasks: [{task: click, column: a, zz_probe: 1}]}" ;;
    "distill.new_heads[]") distill="distill: {new_heads: [{name: h, tower: click, zz_probe: 1}]}" ;;
    serve) serve="serve: {zz_probe: 1}" ;;
    serve.limits) serve="serve: {limits: {zz_probe: 1}}" ;;
    serve.ranking) serve="serve: {ranking: {zz_probe: 1}}" ;;
    *) return 1 ;;
    esac
    printf 'data: %s\nfeatures: [%s]\ntasks: [%s]\n%s\n%s\n%s\n%s\n%s\n%s\n' "$data" "$feat" \
        "$task" "$top" "$model" "$train" "$eval" "$distill" "$serve"
}

# probe_file SECTION: the other files (study, map, lm, synth, impressions, ilm) with
# zz_probe in SECTION, on stdout; everything before it is valid, so the
# parser reaches the probed mapping.
probe_file() {
    local z="zz_probe: 1"
    case "$1" in
    study | study.*)
        local top="" teacher="{config: t.yaml}" student="{name: s, config: s.yaml}" boot=""
        case "$1" in
        study) top="$z" ;;
        study.teacher) teacher="{config: t.yaml, $z}" ;;
        "study.students[]") student="{name: s, config: s.yaml, $z}" ;;
        "study.students[].distill[]") student="{name: s, config: s.yaml, distill: [{task: c, column: x, $z}]}" ;;
        "study.students[].new_heads[]") student="{name: s, config: s.yaml, new_heads: [{name: h, tower: c, $z}]}" ;;
        study.bootstrap) boot="bootstrap: {$z}" ;;
        study.sweep) boot="sweep: {$z}" ;;
        "study.sweep.maps[]") boot="sweep: {synth: s.yaml, maps: [{$z}]}" ;;
        study.sweep.base) boot="sweep: {synth: s.yaml, base: {$z}, maps: []}" ;;
        study.convergence) boot="convergence: {$z}" ;;
        study.tune) boot="tune: {$z}" ;;
        *) return 1 ;;
        esac
        printf 'teacher: %s\nmap: m.yaml\ntarget: x.csv\nstudents: [%s]\n%s\n%s\n' "$teacher" \
            "$student" "$boot" "$top" ;;
    map | map.*)
        local top="" feat="{feature: a, column: a}" task="{name: p, head: click}"
        case "$1" in
        map) top="$z" ;;
        "map.features[]") feat="{feature: a, column: a, $z}" ;;
        "map.teacher_tasks[]") task="{name: p, head: click, $z}" ;;
        *) return 1 ;;
        esac
        printf 'features: [%s]\nteacher_tasks: [%s]\n%s\n' "$feat" "$task" "$top" ;;
    lm | lm.*)
        local top="" tt="{vocab_size: 300}" model="{dim: 8, n_layers: 1, n_heads: 1}" train="{}"
        case "$1" in
        lm) top="$z" ;;
        lm.train_tokenizer) tt="{$z}" ;;
        lm.model) model="{dim: 8, n_layers: 1, n_heads: 1, $z}" ;;
        lm.train) train="{$z}" ;;
        *) return 1 ;;
        esac
        printf 'corpus: c.txt\ntrain_tokenizer: %s\nmodel: %s\ntrain: %s\n%s\n' "$tt" "$model" \
            "$train" "$top" ;;
    synth | synth.*)
        case "$1" in
        synth) echo "$z" ;;
        synth.source) echo "source: {$z}" ;;
        synth.target) echo "target: {$z}" ;;
        *) return 1 ;;
        esac ;;
    impressions | impressions.*)
        local log="{path: l.csv, user: u, item: i, time: t}"
        case "$1" in
        impressions) echo "$z" ;;
        impressions.log) log="{path: l.csv, user: u, item: i, time: t, $z}" ;;
        "impressions.items[]") echo "items: [{path: i.csv, key: k, $z}]" ;;
        "impressions.labels[]") echo "labels: [{name: y, expr: rating, $z}]" ;;
        impressions.users | impressions.protocol | impressions.split | impressions.domain | \
            impressions.columns) echo "${1#impressions.}: {$z}" ;;
        *) return 1 ;;
        esac
        echo "log: $log" ;;
    ilm | ilm.*)
        printf 'data: d\nlm: l.bin\ntokenizer: t\n'
        case "$1" in
        ilm) echo "$z" ;;
        ilm.mf | ilm.phase1 | ilm.phase2 | ilm.eval) echo "${1#ilm.}: {$z}" ;;
        *) return 1 ;;
        esac ;;
    *) return 1 ;;
    esac
}

# the teacher map binds to a teacher: a one-step model of the probe's log
{
    echo "a,click"
    for i in $(seq 1 40); do echo "$i,$((i % 2))"; done
} >"$TMP/t.csv"
printf 'data: {path: t.csv}\nfeatures: [{name: a, type: numeric}]\ntasks: [{name: click}]\n' >"$TMP/t.yaml"
(cd "$TMP" && "$BIN" train --config t.yaml --out teacher --max-steps 1 --quiet) >"$OUT" 2>&1 ||
    not_ok "a one-step teacher for the map probes"

"$BIN" config --keys >"$TMP/keys" || not_ok "crossrec config --keys"
for sec in $(awk '{print $1}' "$TMP/keys" | uniq); do
    case "$sec" in
    study* | map* | lm* | synth* | impressions* | ilm*) probe_file "$sec" >"$TMP/p.yaml" ;;
    *) probe "$sec" >"$TMP/p.yaml" ;;
    esac || {
        : >"$OUT"
        not_ok "section '$sec' of the table has no probe in tests/config_keys.sh"
        continue
    }
    case "$sec" in
    serve*) (cd "$TMP" && "$BIN" serve --config p.yaml --model none.safetensors) >"$TMP/out" 2>&1 ;;
    study*) (cd "$TMP" && "$BIN" experiment --config p.yaml --out o) >"$TMP/out" 2>&1 ;;
    map*) (cd "$TMP" && "$BIN" label --map p.yaml --teacher teacher/model.safetensors --data t.csv \
        --out o.csv) >"$TMP/out" 2>&1 ;;
    lm*) (cd "$TMP" && "$BIN" lm train --config p.yaml --out o) >"$TMP/out" 2>&1 ;;
    synth*) (cd "$TMP" && "$BIN" synth --config p.yaml --out o) >"$TMP/out" 2>&1 ;;
    impressions*) (cd "$TMP" && "$BIN" impressions --config p.yaml --out o.csv) >"$TMP/out" 2>&1 ;;
    ilm*) (cd "$TMP" && "$BIN" ilm study --config p.yaml --out o) >"$TMP/out" 2>&1 ;;
    *) (cd "$TMP" && "$BIN" train --config p.yaml --out o --max-steps 1) >"$TMP/out" 2>&1 ;;
    esac
    parser=$(grep -o "unknown key 'zz_probe'; expected one of: .*" "$TMP/out" |
        sed -e 's/.*expected one of: //' | tr -d ' ' | tr ',' '\n' | sort | tr '\n' ' ')
    table=$(awk -v s="$sec" '$1 == s {print $2}' "$TMP/keys" | sort | tr '\n' ' ')
    if [ -z "$parser" ]; then
        not_ok "section '$sec': the parser did not reject zz_probe"
    elif [ "$parser" = "$table" ]; then
        ok "section '$sec': the table lists exactly the parser's keys"
    else
        : >"$OUT"
        not_ok "section '$sec': parser accepts [$parser], the table lists [$table]"
    fi
done

# The annotated defaults train as they stand on a log with their columns.
{
    echo "movie_id,genres,age,year,click"
    for i in $(seq 1 60); do echo "m$((i % 7)),Comedy|Drama,$((20 + i % 30)),$((1985 + i % 25)),$((i % 2))"; done
} >"$TMP/impressions.csv"
"$BIN" config --defaults >"$TMP/defaults.yaml"
if (cd "$TMP" && "$BIN" train --config defaults.yaml --out od --max-steps 2 --quiet) >"$TMP/out" 2>&1; then
    ok "crossrec config --defaults trains as it stands"
else
    not_ok "crossrec config --defaults does not train"
fi

finish
