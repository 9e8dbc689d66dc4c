"""Config: mem0's dict as it is, strict about unknown keys and providers."""

from __future__ import annotations

import pytest

from hybridmem import ConfigError, MemoryConfig

ARTICLE_PRACTICE_1 = {
    "llm": {"provider": "openai", "config": {"model": "qwen-plus", "temperature": 0.2,
                                             "max_tokens": 2000}},
    "embedder": {"provider": "openai", "config": {"model": "text-embedding-v3",
                                                  "embedding_dims": 128}},
    "vector_store": {"provider": "milvus", "config": {
        "collection_name": "mem0_test1", "embedding_model_dims": "128",
        "url": "http://c-xxx.milvus.aliyuncs.com:19530", "token": "root:xxx",
        "db_name": "default"}},
    "version": "v1.1",
}


def test_article_config_parses_as_is():
    config = MemoryConfig.from_dict(ARTICLE_PRACTICE_1)
    assert config.vector_store.embedding_model_dims == 128  # given as the string "128"
    assert config.vector_store.url.startswith("http://c-xxx")
    assert config.vector_store.token == "root:xxx"
    assert config.vector_store.db_name == "default"
    assert config.llm.model == "qwen-plus" and config.llm.temperature == 0.2
    assert config.embedder.embedding_dims == 128


def test_article_practice_2_graph_store():
    raw = {**ARTICLE_PRACTICE_1, "graph_store": {"provider": "kuzu",
                                                  "config": {"db": "./mem0-example.kuzu"}}}
    assert MemoryConfig.from_dict(raw).graph_store.db == "./mem0-example.kuzu"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"vector_stor": {}}, "vector_stor"),
        ({"vector_store": {"provider": "qdrant"}}, "qdrant"),
        ({"llm": {"provider": "anthropic", "config": {}}}, "anthropic"),
        ({"vector_store": {"provider": "milvus", "config": {"urll": "x"}}}, "urll"),
        ({"embedder": {"provider": "openai", "config": {"modle": "x"}}}, "modle"),
        ({"graph_store": {"provider": "neo4j"}}, "neo4j"),
        ({"graph_store": {"provider": "kuzu", "config": {"db": ":memory:"}}}, "on disk"),
        ({"vector_store": {"provider": "milvus",
                           "config": {"embedding_model_dims": "12x"}}}, "embedding_model_dims"),
        # Accepted by mem0 but not honoured here: refused, never silently ignored.
        ({"version": "v1.0"}, "version"),
        ({"vector_store": {"provider": "milvus", "config": {"metric_type": "L2"}}},
         "metric_type"),
    ],
)
def test_unknown_or_bad_config_is_named(raw, named):
    with pytest.raises(ConfigError) as info:
        MemoryConfig.from_dict(raw)
    assert named in str(info.value)


@pytest.mark.parametrize(("raw", "meant"), [
    ({"vector_stor": {}}, "vector_store"),
    ({"embeder": {"provider": "local"}}, "embedder"),
    ({"datadir": "x"}, "data_dir"),
    ({"vector_store": {"provider": "milvus", "config": {"urll": "x"}}}, "url"),
    ({"vector_store": {"provder": "milvus"}}, "provider"),
])
def test_a_typo_gets_the_close_match(raw, meant):
    with pytest.raises(ConfigError, match=f"did you mean {meant!r}"):
        MemoryConfig.from_dict(raw)


def test_env_home_is_the_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRIDMEM_HOME", str(tmp_path / "home"))
    assert MemoryConfig().resolved_data_dir() == (tmp_path / "home").resolve()
    monkeypatch.delenv("HYBRIDMEM_HOME")
    assert MemoryConfig().resolved_data_dir().name == "hybridmem_data"


def test_openai_env_is_honoured(monkeypatch, tmp_path, fake_openai):
    from hybridmem import Memory
    from tests.fake_openai import tool_reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    fake_openai.chat_script = [tool_reply({"facts": [{"text": "I surf", "relations": []}]})]
    config = {"data_dir": str(tmp_path), "llm": {"provider": "openai", "config": {}}}
    with Memory.from_config(config) as memory:
        memory.add("I surf", user_id="u")
    [_] = fake_openai.chat_requests()  # the request went where the environment said
    assert fake_openai.headers[-1]["authorization"] == "Bearer sk-env"


@pytest.mark.parametrize(("raw", "key"), [
    ({"vector_store": {"provider": "milvus", "config": {"embedding_model_dims": "128"}}},
     "vector_store.config.embedding_model_dims"),
    ({"embedder": {"provider": "local", "config": {"embedding_dims": 128}}},
     "embedder.config.embedding_dims"),
])
def test_a_dimension_the_local_embedder_cannot_make_names_the_key(raw, key):
    from hybridmem.providers.embed import create_embedder

    config = MemoryConfig.from_dict(raw)
    with pytest.raises(ConfigError) as info:
        create_embedder(config.embedder, config.vector_store)
    message = str(info.value)
    assert "384" in message and "128" in message and key in message, message
