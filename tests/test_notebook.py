"""The notebook runs top to bottom offline and produces its outputs (executed by nbclient)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the [notebook] extra")
nbclient = pytest.importorskip("nbclient", reason="needs the [notebook] extra")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_graph.ipynb"


@pytest.mark.slow
def test_explore_graph_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDMEM_HOME", str(tmp_path / "store"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in code for o in c.outputs
    )
    assert "Alice's name is Alice" in text      # the ranked table of "What is my name?"
    assert "opposite polarity" in text           # the conflict table
    assert "SUPERSEDE" in text                   # the history of the stale memory
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2                      # Alice's and Bob's graphs were drawn
