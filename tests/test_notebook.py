"""The notebook runs top to bottom offline through the README's command, which writes the
executed notebook with its outputs, and leaves no store behind."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme import blocks

nbformat = pytest.importorskip("nbformat", reason="needs the [notebook] extra")
pytest.importorskip("nbclient", reason="needs the [notebook] extra")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore_graph.ipynb"


def _readme_command() -> list[str]:
    [line] = [line.split("#")[0].strip() for block in blocks("bash")
              for line in block.splitlines() if line.startswith("jupyter ")]
    return shlex.split(line)


@pytest.mark.slow
def test_explore_graph_notebook_runs(tmp_path):
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    scratch = tmp_path / "tmp"  # the kernel's temporary folder, to see what it leaves
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYBRIDMEM_HOME", "HYBRIDMEM_URL", "HYBRIDMEM_API_KEY")}
    env["TMPDIR"] = str(scratch)
    command = _readme_command()
    assert command[:2] == ["jupyter", "execute"]
    args = [str(copy) if a == "notebooks/explore_graph.ipynb" else a for a in command[2:]]
    proc = subprocess.run([sys.executable, "-m", "jupyter", "execute", *args], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    assert len(written) == 2, written          # the notebook, and the executed one beside it
    [executed] = [tmp_path / name for name in written if name != NOTEBOOK.name]
    notebook = nbformat.read(executed, as_version=4)
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
    assert len(images) == 3                      # Alice's, Bob's and (live) Dana's graphs
    # the live section: a server it started, an agent process adding, the graph growing
    assert "live store at http://127.0.0.1:" in text
    live = text.split("live store at", 1)[1]
    growth = [int(line.split()[2]) for line in live.splitlines()
              if line.endswith(" relations") and "entities," in line]
    assert growth == sorted(growth) and len(growth) >= 2 and growth[-1] >= 5, growth
    assert "the agent exited with 0" in text
    assert "Oskar is Dana's brother" in text     # "Who is my brother?", read live
    assert list(scratch.glob("hybridmem-nb-*")) == []  # its store went with the kernel
    assert nbformat.read(copy, as_version=4).cells[1].outputs == []  # the source untouched
