"""Shared fixtures: the build under test, and data and models made once per
session with the command-line tool (so the package's results can be
compared with the CLI's)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("CR_BUILD", "build"))
CLI = os.path.join(BUILD, "crossrec")
os.environ.setdefault("CROSSREC_LIBRARY", os.path.join(BUILD, "libcrossrec.so"))
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
sys.path.insert(0, os.path.join(ROOT, "python"))


def cli(*args, **kw):
    """Run the crossrec command; fail the test with its stderr if it fails."""
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kw)
    assert r.returncode == 0, f"crossrec {' '.join(map(str, args))}: {r.stderr[-2000:]}"
    return r


def head_csv(src, dst, rows):
    """The header and the first rows of a CSV file."""
    with open(src) as f, open(dst, "w") as g:
        for i, line in enumerate(f):
            if i > rows:
                break
            g.write(line)
    return dst


RANKER = """\
data: {path: imp.csv, split: {by: column, column: split}, group: request_id, user: user_id}
features:
  - {name: user, type: categorical, column: user_id, dim: 8, min_count: 2}
  - {name: item, type: categorical, column: movie_id, dim: 8, min_count: 2}
  - {name: last_items, type: multi, column: last_items, share: item, pooling: mean}
  - {name: genres, type: multi, column: genres, dim: 4, pooling: mean}
  - {name: year, type: bucketized, column: year, dim: 2, boundaries: [1960, 1990, 2000, 2010]}
  - {name: hist_count, type: numeric, column: hist_count, transform: log1p_zscore}
  - {name: hist_mean_rating, type: numeric, column: hist_mean_rating, transform: zscore, default: 3.5}
  - {name: item_popularity, type: numeric, column: item_popularity, transform: log1p_zscore}
tasks:
  - {name: click, type: binary, label: click}
  - {name: like, type: binary, label: like, mask: click}
  - {name: engagement, type: regression, label: engagement, mask: click}
model: {type: mmoe, experts: 2, expert_layers: [16], tower_layers: [8]}
train: {batch_size: 512, epochs: 1, max_steps: 120, seed: 1, threads: 1}
eval: {k: 5, popularity_feature: item_popularity}
"""


@pytest.fixture(scope="session")
def ml(tmp_path_factory):
    """MovieLens impressions (every eighth user's of the bundled data's),
    a ranker config over them and a model trained by the CLI."""
    d = tmp_path_factory.mktemp("ml")
    full = d / "full.csv"
    cli("movielens", "--in", "data/movielens", "--out", full, "--protocol", "period")
    with open(full) as f, open(d / "imp.csv", "w") as g:
        g.write(f.readline())
        for line in f:
            if int(line.split(",", 2)[1]) % 8 == 0:
                g.write(line)
    full.unlink()
    (d / "ranker.yaml").write_text(RANKER)
    cli("train", "--config", d / "ranker.yaml", "--out", d / "cli_run", "--quiet")
    return d
