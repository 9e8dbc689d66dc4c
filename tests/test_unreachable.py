"""Endpoints that cannot be reached (a host name that does not resolve, a port nobody
listens on) are named in the error, with the cause the network gave."""

from __future__ import annotations

import re
import socket

import pytest

from hybridmem import EmbeddingError, LLMError, Memory, StoreError

NO_HOST = "no-such-host.invalid"  # RFC 2606: never resolves


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens on it once closed


def _resolver_says() -> str:
    """What this machine's resolver says about NO_HOST ("Name or service not known", or
    "Temporary failure in name resolution" without DNS)."""
    with pytest.raises(socket.gaierror) as info:
        socket.getaddrinfo(NO_HOST, 1)
    return info.value.strerror


def _endpoints() -> list[tuple[str, str]]:
    return [(f"http://{NO_HOST}:1/v1", _resolver_says()),
            (f"http://127.0.0.1:{_refused_port()}/v1", "Connection refused")]


def test_an_unreachable_llm_is_named_with_the_cause(tmp_path):
    for i, (url, cause) in enumerate(_endpoints()):
        config = {"data_dir": str(tmp_path / str(i)), "llm": {"provider": "openai", "config": {
            "model": "m", "api_key": "k", "openai_base_url": url, "max_retries": 0}}}
        with Memory.from_config(config) as memory, pytest.raises(LLMError) as info:
            memory.add("I climb", user_id="u")
        assert info.value.failure == "connection"
        assert url in str(info.value) and cause in str(info.value), str(info.value)


def test_an_unreachable_embedder_is_named_with_the_cause(tmp_path):
    for i, (url, cause) in enumerate(_endpoints()):
        config = {"data_dir": str(tmp_path / str(i)), "embedder": {
            "provider": "openai", "config": {"model": "e", "embedding_dims": 8, "api_key": "k",
                                             "openai_base_url": url, "max_retries": 0}}}
        with Memory.from_config(config) as memory, pytest.raises(EmbeddingError) as info:
            memory.add("I climb", user_id="u", infer=False)
        assert url in str(info.value) and cause in str(info.value), str(info.value)


@pytest.mark.parametrize(("host", "cause"), [
    (NO_HOST, re.compile("resol|name", re.IGNORECASE)),
    ("127.0.0.1", re.compile("Connection refused")),
])
def test_an_unreachable_milvus_server_is_named_with_the_cause(tmp_path, host, cause):
    url = f"http://{host}:{_refused_port()}"
    config = {"data_dir": str(tmp_path), "vector_store": {"provider": "milvus", "config": {
        "url": url, "collection_name": "c"}}}
    with pytest.raises(StoreError) as info:
        Memory.from_config(config)
    message = str(info.value)
    # pymilvus says only "Fail connecting to server on host:port"; the cause is gRPC's
    detail = message.split("server unavailable", 1)[-1]
    assert url in message and cause.search(detail), message
