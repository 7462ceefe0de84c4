#!/usr/bin/env bash
# study.sh - the MovieLens zero-shot distillation study for one target genre,
# end to end: the strict source (every movie without the genre, so the teacher
# never sees a target item), the target (the genre's movies), then
# examples/movielens/study.yaml. The genre is the one value to change:
#   scripts/study.sh [BUILD] [GENRE]      (defaults: build, Musical)
# Results: out/movielens_study (Musical) or out/movielens_study_<genre>.
# Any genre with about 1,000 ratings or more works (docs/distillation.md).
set -euo pipefail
BUILD=${1:-build}
GENRE=${2:-Musical}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$(dirname "$0")/.."
CR="$BUILD/crossrec"
OUT=out/movielens_study
[ "$GENRE" = Musical ] || OUT="out/movielens_study_$(echo "$GENRE" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' _)"
mkdir -p build/movielens
"$CR" movielens --in data/movielens --exclude-genre "$GENRE" --strict --history all \
    --protocol period --out build/movielens/source.csv
"$CR" movielens --in data/movielens --include-genre "$GENRE" --history all \
    --protocol period --out build/movielens/target.csv
"$CR" experiment --config examples/movielens/study.yaml --out "$OUT"
echo "== report: $OUT/report.html (results: $OUT/results.json)"
