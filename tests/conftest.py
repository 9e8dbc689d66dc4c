"""Shared fixtures: real embedded engines in temporary directories, never mocks."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hybridmem import Memory, MemoryConfig
from hybridmem.demo import STATEMENTS
from tests.fake_openai import FakeOpenAI
from tests.milvus_server import SHARED_ENV, stop_run_server


def pytest_configure(config: pytest.Config) -> None:
    """In the controller (the only pytest process with -n0), make the directory this
    run's processes share, before xdist spawns the workers that inherit it: the Milvus
    server one of them starts is found there by the others, and stopped here at the end."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        os.environ[SHARED_ENV] = tempfile.mkdtemp(prefix="hybridmem-tests-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller is the last process of the run: it stops the run's Milvus server."""
    shared = os.environ.get(SHARED_ENV)
    if "PYTEST_XDIST_WORKER" not in os.environ and shared:
        try:
            stop_run_server(Path(shared))
        finally:
            shutil.rmtree(shared, ignore_errors=True)
            del os.environ[SHARED_ENV]


@pytest.fixture(scope="session")
def shared_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memory]:
    """One offline Memory (local embedder, rules extractor) shared by tests that each
    use their own scope ids, which is itself what scopes promise."""
    memory = Memory(MemoryConfig(data_dir=str(tmp_path_factory.mktemp("shared"))))
    yield memory
    memory.close()


@pytest.fixture
def uid() -> str:
    """A fresh user id."""
    return f"user-{uuid.uuid4().hex[:10]}"


# The article's Practice 2 statements as printed there, with its non-breaking hyphen
# (U+2011) in "Spider-Man", which matching must fold and storage must keep.
PRACTICE_2 = [s.replace("Spider-Man", "Spider\u2011Man") for s in STATEMENTS]


@pytest.fixture
def alice(shared_memory: Memory, uid: str) -> str:
    """A fresh user who told the seven Practice 2 statements."""
    for text in PRACTICE_2:
        shared_memory.add(text, user_id=uid)
    return uid


@pytest.fixture
def fresh_memory(tmp_path: Path) -> Iterator[Memory]:
    """A Memory of its own, in a temporary data dir."""
    memory = Memory(MemoryConfig(data_dir=str(tmp_path / "data")))
    yield memory
    memory.close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible server on 127.0.0.1."""
    with FakeOpenAI() as server:
        yield server


def llm_config(server: FakeOpenAI, data_dir: Path, **llm: object) -> dict:
    """A mem0-style config pointing the LLM and the embedder at the fake server."""
    return {
        "data_dir": str(data_dir),
        "llm": {"provider": "openai", "config": {
            "model": "test-model", "api_key": "sk-test", "openai_base_url": server.base_url,
            "max_retries": 2, "timeout": 5, **llm}},
        "embedder": {"provider": "openai", "config": {
            "model": "test-embedding", "embedding_dims": server.embedding_dims,
            "api_key": "sk-test", "openai_base_url": server.base_url, "max_retries": 1,
            "timeout": 5}},
    }
