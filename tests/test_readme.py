"""The README runs as written: every Python block, as a script in a fresh folder (it must
print and exit), with an OpenAI-compatible endpoint on 127.0.0.1 standing in for the cloud
ones it names; and the CLI lines that need no network."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_openai import content_reply, tool_reply
from tests.readme import blocks, python_blocks, shown_outputs
from tests.server.running import Served

ROOT = Path(__file__).resolve().parents[1]


def _env(home: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HYBRIDMEM_HOME", "MILVUS_URL", "OPENAI_API_KEY")}
    return {**env, "HYBRIDMEM_HOME": str(home), "OPENAI_BASE_URL": base_url,
            "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_python_block_runs_prints_and_exits(index, tmp_path, fake_openai):
    fake_openai.chat_handler = lambda body: (
        tool_reply({"facts": []}) if body.get("tools") else content_reply("Hello again!"))
    code = python_blocks()[index]
    env = _env(tmp_path / "home", fake_openai.base_url)
    with contextlib.ExitStack() as stack:
        if "MemoryClient" in code:  # the client swap: against a real server, as a user runs it
            server = stack.enter_context(Served(tmp_path / "served", "--no-auth"))
            env["HYBRIDMEM_URL"] = server.url
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, input="hi\nquit\n",
                              env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"block {index}:\n{code}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), f"block {index} printed nothing"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(shown_outputs())))
def test_a_block_prints_what_the_readme_shows(index, tmp_path):
    code, shown = shown_outputs()[index]
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          env=_env(tmp_path / "home", "http://127.0.0.1:9/v1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == shown


def _cli_lines() -> list[str]:
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            command = line.split("#")[0].strip()
            if command.startswith("hybridmem ") and not {"<", "["} & set(command):
                lines.append(command)
    return lines


@pytest.mark.slow
def test_cli_lines_run_in_order(tmp_path):
    env = {**os.environ, "HYBRIDMEM_HOME": str(tmp_path / "home")}
    for line in _cli_lines():
        for command in line.split("&&"):
            args = shlex.split(command.strip())
            proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=120)
            assert proc.returncode == 0, f"{command}: {proc.stderr[-1500:]}"
