#!/usr/bin/env bash
# make demo: the main job on the bundled data, end to end.
#   1. MovieLens ratings -> ranking impressions (negatives drawn by popularity, per period)
#   2. train the MMoE of examples/movielens/ranker.yaml
#   3. print validation and test metrics next to a popularity baseline
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
CR="$BUILD/crossrec"
mkdir -p build/movielens
echo "== building MovieLens impressions (negatives drawn by each period's popularity; about 1 s)"
"$CR" movielens --in data/movielens --out build/movielens/impressions.csv --protocol period
echo "== training examples/movielens/ranker.yaml -> out/movielens"
"$CR" train --config examples/movielens/ranker.yaml --out out/movielens
echo "== metrics: out/movielens/metrics.json"
