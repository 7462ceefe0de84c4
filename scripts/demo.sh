#!/usr/bin/env bash
# make demo: the main job on the bundled data, end to end.
#   1. MovieLens ratings -> ranking impressions (negatives drawn by popularity)
#   2. train the MMoE of examples/movielens/ranker.yaml
#   3. print validation and test metrics next to a popularity baseline
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
CR="$BUILD/crossrec"
mkdir -p build/movielens
if [ ! -s build/movielens/impressions.csv ]; then
  echo "== building MovieLens impressions"
  "$CR" movielens --in data/movielens --out build/movielens/impressions.csv
fi
echo "== training examples/movielens/ranker.yaml -> out/movielens"
"$CR" train --config examples/movielens/ranker.yaml --out out/movielens
echo "== metrics: out/movielens/metrics.json"
