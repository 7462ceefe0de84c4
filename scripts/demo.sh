#!/usr/bin/env bash
# make demo: the main jobs on the bundled data, end to end.
#   1. MovieLens ratings -> ranking impressions (negatives drawn by popularity, per year)
#   2. train the MMoE of examples/movielens/ranker.yaml; metrics next to a popularity baseline
#   3. the zero-shot distillation study: non-Musical (source) -> Musical (target),
#      scripts/study.sh (any other genre: scripts/study.sh build War); prints the
#      table, writes results.json and report.html
set -euo pipefail
BUILD=${1:-build}
# OpenMP threads spin while waiting by default: fastest on an idle machine, but
# many times slower when another process shares the cores. Sleep instead,
# unless the caller chose otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$(dirname "$0")/.."
CR="$BUILD/crossrec"
mkdir -p build/movielens
echo "== building MovieLens impressions (negatives drawn by each year's popularity)"
"$CR" movielens --in data/movielens --out build/movielens/impressions.csv --protocol period
echo "== training examples/movielens/ranker.yaml -> out/movielens"
"$CR" train --config examples/movielens/ranker.yaml --out out/movielens
echo "== metrics: out/movielens/metrics.json"

echo "== distillation study: source = non-Musical ratings, target = Musicals"
./scripts/study.sh "$BUILD" Musical

echo "== item-language model study: MLP adapter, ILM-rand, ILM and phase-1 ablations, frozen Austen LM"
if [ -f data/models/austen-small/model.safetensors ]; then
    "$CR" ilm study --config examples/movielens/ilm.yaml --out out/ilm_study
    echo "== report: out/ilm_study/report.html (results: out/ilm_study/results.json)"
else
    echo "   skipped: data/models/austen-small/ is missing; make it with"
    echo "   $CR lm train --config examples/lm/austen.yaml --out data/models/austen-small"
fi
