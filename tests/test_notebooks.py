"""Every notebook under notebooks/ runs top to bottom at its smoke size (executed for real,
in a kernel, failing on any error), and is kept in git without outputs."""

from __future__ import annotations

import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


def test_the_notebooks_are_there():
    assert [os.path.basename(p) for p in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_pbt_cartpole.ipynb", "03_from_the_shell.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_stored_without_outputs_at_smoke_size(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].source.startswith("SMOKE = True")  # the test runs what is stored


@pytest.mark.ray
@pytest.mark.timeout(900)  # a kernel and real sweeps: minutes on a busy 2-core machine
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, tmp_path, ray_local, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    env_path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", ROOT + (os.pathsep + env_path if env_path else ""))
    # The kernel (and the `tuner` commands it runs) join the session's Ray instead of each
    # starting one: tune.run reads RAY_ADDRESS, as on a cluster.
    monkeypatch.setenv("RAY_ADDRESS", ray_local.get_runtime_context().gcs_address)
    client.execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    figures = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures  # the plots were drawn
