"""examples/python/quickstart.ipynb runs headless, every cell without error."""
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT


def test_quickstart_notebook(tmp_path):
    jupyter = shutil.which("jupyter")
    if not jupyter:
        pytest.fail("jupyter is missing: the Makefile installs python3-nbconvert and python3-ipykernel")
    env = dict(os.environ, QUICKSTART_DIR=str(tmp_path / "work"), CROSSREC_ROOT=ROOT,
               CR_BUILD=os.path.relpath(BUILD, ROOT), MPLBACKEND="Agg")
    out = tmp_path / "executed.ipynb"
    r = subprocess.run([jupyter, "nbconvert", "--to", "notebook", "--execute",
                        os.path.join(ROOT, "examples/python/quickstart.ipynb"), "--output", str(out),
                        "--ExecutePreprocessor.timeout=600"], capture_output=True, text=True,
                       env=env, cwd=os.path.join(ROOT, "examples/python"), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    import nbformat
    nb = nbformat.read(str(out), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "data" in o and "image/png" in o["data"]]
    assert images, "the study's plot is missing"
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "Emma was" in text
