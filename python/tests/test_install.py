"""Two threads score at once and get what they get alone; the package installs
with pip and no network, and finds the library it was built with."""
import os
import subprocess
import sys
import textwrap

from conftest import BUILD, ROOT


def test_two_threads_score_at_once(ml):
    """Two Python threads scoring with one model at once (the GIL released
    while the library computes, each call on its own workspace) get exactly
    what the same calls get one after the other. How much faster the pair
    runs is a benchmark, not a test: bench/python_overhead.py --threads."""
    code = textwrap.dedent(f"""
        import sys, threading
        sys.path.insert(0, {os.path.join(ROOT, 'python')!r})
        import numpy as np, pandas as pd, crossrec
        m = crossrec.Model.load({str(ml / 'cli_run' / 'model.safetensors')!r})
        f = pd.read_csv({str(ml / 'imp.csv')!r})
        parts = [f.iloc[i::2].reset_index(drop=True) for i in range(2)]
        want = [m.score(p) for p in parts]
        got = [None, None]
        def run(i):
            for _ in range(3):
                got[i] = m.score(parts[i])
        ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in ts: t.start()
        for t in ts: t.join()
        print(all(np.array_equal(np.asarray(g), np.asarray(w)) for g, w in zip(got, want)))
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "True"


def test_pip_install_finds_its_library(tmp_path):
    """pip install --no-build-isolation into a fresh environment (seeing the
    system's numpy, pandas and cffi), then import it from elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("CROSSREC_LIBRARY", "PYTHONPATH")}
    env["CROSSREC_BUILD"] = BUILD
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--no-deps", "-q", os.path.join(ROOT, "python")], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    r = subprocess.run([py, "-c", "import crossrec; print(crossrec.LIBRARY_PATH, crossrec.__file__)"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    lib, where = r.stdout.split()
    assert os.path.realpath(lib) == os.path.realpath(os.path.join(BUILD, "libcrossrec.so"))
    assert str(venv) in where  # the installed copy, not the source tree
