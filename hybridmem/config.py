"""Configuration: typed pydantic models that also accept mem0's config dict as it is.

`MemoryConfig.from_dict` takes the dict from mem0's docs (keys `llm`, `embedder`,
`vector_store`, `graph_store`, `version`, each provider block as
`{"provider": ..., "config": {...}}`) and refuses any key or provider it does not know,
naming it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hybridmem.errors import ConfigError

DEFAULT_DATA_DIR = "hybridmem_data"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LLMConfig(_Strict):
    """An OpenAI-compatible chat endpoint (OpenAI, DashScope/Qwen, Ollama, vLLM …).

    `api_key`/`base_url` default to the `OPENAI_API_KEY`/`OPENAI_BASE_URL` environment
    variables, as the openai client does.
    """

    provider: Literal["openai"] = "openai"
    model: str = "gpt-4o-mini"
    temperature: float = 0.0
    max_tokens: int = 2000
    top_p: float | None = None
    api_key: str | None = None
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = Field(default=3, ge=0, le=10)
    # "tools": one forced function call; "json_schema": structured output;
    # "json_object": plain JSON mode, for endpoints that have neither.
    mode: Literal["tools", "json_schema", "json_object"] = "tools"
    custom_fact_extraction_prompt: str | None = None


class EmbedderConfig(_Strict):
    """Which embedder turns text into vectors.

    - `local` (default): all-MiniLM-L6-v2 int8 ONNX on onnxruntime, 384 dimensions, offline.
    - `openai`: any OpenAI-compatible `/embeddings` endpoint; `embedding_dims` is sent as
      `dimensions` when set.
    - `hash`: deterministic hashed word/trigram vectors, for tests only.
    """

    provider: Literal["local", "openai", "hash"] = "local"
    model: str | None = None
    embedding_dims: int | None = Field(default=None, gt=0, le=32768)
    api_key: str | None = None
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = Field(default=3, ge=0, le=10)
    batch_size: int = Field(default=16, gt=0)  # local: sorted batches of 16 measure best


class VectorStoreConfig(_Strict):
    """Milvus: a Milvus Lite directory by default, a server or Zilliz Cloud with `url`."""

    provider: Literal["milvus"] = "milvus"
    url: str | None = None
    token: str | None = None
    db_name: str | None = None
    collection_name: str = "hybridmem"
    embedding_model_dims: int | None = Field(default=None, gt=0, le=32768)
    metric_type: Literal["COSINE"] = "COSINE"
    # FLAT is exact, so a per-scope filter never costs recall (HNSW + filter measured
    # 0.43 recall@10 in NOTES-engines.md). Large server deployments may pick HNSW/AUTOINDEX.
    index_type: Literal["FLAT", "HNSW", "AUTOINDEX", "IVF_FLAT"] = "FLAT"
    # Rows written since the last flush are brute-forced in Python by Milvus Lite on every
    # search (~30 µs each); flushing every N rows bounds that cost. None: 256 when Milvus
    # is searched, 4,096 when searches run in process (Milvus is then only the durable
    # projection: a flush cost 0.1-0.2 s, 0.5-0.8 ms per row at 256, most of a bulk add's
    # time beside the embedder; rows not yet flushed are written again from the record at
    # the next open, see stores/projection.py).
    flush_every: int | None = Field(default=None, ge=1)
    # Search the record's vectors in process (exact) instead of asking Milvus; None: yes
    # for Milvus Lite (an in-process Python engine), no for a server.
    search_in_process: bool | None = None
    # Memory the in-process search may hold (least recently searched scopes go first):
    # 384-d float32 vectors take 1.5 KiB each, 150 MiB per 100k memories.
    in_process_budget_mb: int = Field(default=1024, ge=1)

    def searched_in_process(self, lite: bool) -> bool:
        """Whether searches read the record's vectors in process (`lite`: the collection
        is a Milvus Lite directory) rather than Milvus."""
        return lite if self.search_in_process is None else self.search_in_process

    def flush_rows(self, lite: bool) -> int:
        """Rows written to Milvus between two flushes."""
        if self.flush_every is not None:
            return self.flush_every
        return 4096 if self.searched_in_process(lite) else 256

    @field_validator("embedding_model_dims", mode="before")
    @classmethod
    def _dims_from_string(cls, value: Any) -> Any:
        # mem0's own examples pass "128" as a string.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value


class GraphStoreConfig(_Strict):
    """Kuzu on disk. `db` is the database path (default: `<data_dir>/graph.kuzu`)."""

    provider: Literal["kuzu"] = "kuzu"
    db: str | None = None

    @field_validator("db")
    @classmethod
    def _on_disk(cls, value: str | None) -> str | None:
        if value is not None and value.strip() in ("", ":memory:"):
            raise ValueError(
                "hybridmem keeps the graph on disk so it survives restarts with the "
                "journal; give a path (or leave `db` out for <data_dir>/graph.kuzu)"
            )
        return value


class GraphRules(_Strict):
    """How the graph decides that a new relation contradicts an old one."""

    # Relations a subject can hold only one active value of ("favorite_*": any relation
    # whose name starts so; a favourite is one).
    single_valued: list[str] = Field(
        default_factory=lambda: [
            "name", "age", "lives_in", "works_at", "works_as", "is_from", "born_in",
            "birthday", "married_to", "job_title", "nationality", "email", "phone",
            "studies_at", "favorite_*",
        ]
    )
    # Pairs of relations with opposite polarity on the same object.
    opposites: list[tuple[str, str]] = Field(
        default_factory=lambda: [
            ("likes", "dislikes"), ("loves", "hates"), ("enjoys", "dislikes"),
            ("likes", "hates"), ("loves", "dislikes"), ("enjoys", "hates"),
            ("prefers", "dislikes"),
        ]
    )
    # Relations a subject holds many of at once: another object is never a contradiction,
    # so the LLM judge is not asked ("I like tea" and "I like coffee"; two friends).
    coexisting: list[str] = Field(
        default_factory=lambda: [
            "likes", "loves", "enjoys", "prefers", "dislikes", "hates", "friend",
            "best_friend", "sister", "brother", "son", "daughter", "cousin", "colleague",
            "neighbor", "has_dog", "has_cat", "has_pet",
        ]
    )
    # Cosine similarity of entity-name embeddings above which two names in one scope are
    # the same entity, when neither the normalised key nor an alias matched.
    # Measured in benchmarks/entity_resolution.py: precision 1.0, recall 0.78 at 0.88 on
    # hand-labelled pairs (precision first; people never merge by embedding).
    resolution_threshold: float = Field(default=0.88, gt=0.0, le=1.0)


class SearchConfig(_Strict):
    """How `search` fuses its signals. See README "Search scoring"."""

    fusion: Literal["weighted", "rrf"] = "weighted"
    # Fitted leave-one-conversation-out on LoCoMo (benchmarks/locomo_retrieval.py --loco
    # --implicit: all five folds chose bm25 4, with the calibration below); graph keeps
    # the vector's weight (LoCoMo's stored turns carry no relations to fit it on).
    weights: dict[str, float] = Field(
        default_factory=lambda: {"vector": 1.0, "bm25": 4.0, "graph": 1.0}
    )
    rrf_k: int = Field(default=60, ge=1)
    # Candidates taken from each signal before fusion, as a multiple of `limit`.
    candidate_factor: int = Field(default=4, ge=1)
    min_candidates: int = Field(default=30, ge=1)
    hops: int = Field(default=2, ge=1, le=2)
    # Query-to-entity-name cosine above which an entity counts as named by the query.
    entity_match_threshold: float = Field(default=0.75, gt=0.0, le=1.0)
    # Calibration: each raw signal maps to [0, 1] by a fixed curve, never by the best
    # value of the query (a BM25 of 1e-06 is no evidence even when it is the best one).
    # vector: (cosine - floor) / (ceiling - floor), clipped; with the "background"
    # calibration (the default) the larger of that and clip((z - z_floor) / z_span),
    # z = (cosine - mean) / std over the cosines of every memory of the scope (measured
    # by the in-process index; a Milvus server search has none and keeps the cosine
    # curve). A memory standing out from what the query gets from this scope by chance
    # counts even when the query's cosines are all low: a remark that shares no word with
    # the memory it depends on reaches cosine 0.35 at best, a question naming a person
    # and a topic 0.6 (benchmarks/implicit_recall.py).
    vector_floor: float = Field(default=0.0, ge=-1.0, lt=1.0)
    vector_ceiling: float = Field(default=1.0, gt=-1.0, le=1.0)
    vector_calibration: Literal["background", "fixed"] = "background"
    vector_z_floor: float = Field(default=0.0, ge=-10.0, le=10.0)
    vector_z_span: float = Field(default=6.0, gt=0.0)
    # bm25: raw / (raw + half): a raw BM25 of `half` counts as 0.5 (memories and relation
    # sentences score on different scales, so each has its own).
    bm25_half: float = Field(default=16.0, gt=0.0)
    relation_bm25_half: float = Field(default=8.0, gt=0.0)
    # Lexical coverage: a memory's BM25 credit is also scaled by min(1, share /
    # coverage), share = raw / ideal, ideal = the BM25 of a memory holding every query
    # word once; below `bm25_min_coverage` a match earns nothing. A match on a word or two
    # of a long remark (often common ones: "yesterday", "lost") is no evidence that it is
    # the memory meant; a match on most of a question's words is. 0 = no coverage term.
    # Chosen leave-one-conversation-out on LoCoMo with 48 implicit-recall pairs stitched
    # in (benchmarks/README.md; all five folds chose these calibration values, weight 4
    # and half 16): LoCoMo r@1 41.1, r@10 76.4 on the held-out conversations (35.8 / 75.1
    # with the calibration shipped before, its grid refitted the same way), implicit
    # recall@10 50.0, as the vector alone (BM25 alone 2.1, the fusion before 18.8).
    bm25_coverage: float = Field(default=1.0, ge=0.0)
    bm25_min_coverage: float = Field(default=0.0, ge=0.0, le=1.0)
    # graph: an entity with d current edges gives each of them d**-hub_damping of the
    # evidence of naming it (the user, with dozens of edges, names little by "I").
    hub_damping: float = Field(default=0.5, ge=0.0, le=2.0)
    # Context: each memory is also found by the words of the `context_memories` memories
    # stored just before it in its scope (set when it is written), weighted against its
    # own words by `context_weight` (0 = its own words only). Merged search on LoCoMo,
    # leave-one-conversation-out, fusion grid refitted per weight: r@1 / r@10 35.8 / 75.1
    # at weight 1, 39.3 / 76.2 at 0.5 (65.5 r@10 without context, before).
    context_memories: int = Field(default=2, ge=0, le=8)
    context_weight: float = Field(default=0.5, ge=0.0, le=4.0)
    # Memory the in-process BM25 postings may hold (least recently searched scopes go
    # first; a scope evicted is read from the record again on its next search).
    lexical_budget_mb: int = Field(default=512, ge=1)

    @field_validator("weights")
    @classmethod
    def _known_signals(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"vector", "bm25", "graph"}
        if unknown:
            raise ValueError(f"unknown signal(s) {sorted(unknown)}; use vector, bm25, graph")
        if any(w < 0 for w in value.values()):
            raise ValueError("weights must be >= 0")
        return {"vector": 0.0, "bm25": 0.0, "graph": 0.0, **value}


class MemoryConfig(_Strict):
    """Everything `Memory` needs. `MemoryConfig()` is the offline embedded default."""

    data_dir: str | None = None
    llm: LLMConfig | None = None
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    vector_store: VectorStoreConfig = Field(default_factory=VectorStoreConfig)
    graph_store: GraphStoreConfig = Field(default_factory=GraphStoreConfig)
    graph: GraphRules = Field(default_factory=GraphRules)
    search: SearchConfig = Field(default_factory=SearchConfig)
    history_db_path: str | None = None
    # mem0's output format version: only v1.1 (dicts with "results") is produced, so an
    # older value is refused rather than silently answered in the newer shape.
    version: Literal["v1.1"] = "v1.1"
    # Longest text accepted for one message; longer input is refused with a clear error.
    max_text_chars: int = Field(default=32_000, gt=0)
    # Near-duplicate threshold for inferred facts in one scope (cosine).
    dedup_threshold: float = Field(default=0.97, gt=0.0, le=1.0)
    # With an LLM, current memories this close to a new fact (cosine) are shown to the
    # conflict judge, so a contradiction is caught even when no triple states it.
    conflict_candidate_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    # An add of more messages than this is stored in batches of this size, each its own
    # journaled operation (bounded memory; a crash replays one batch, not the whole call).
    add_batch_messages: int = Field(default=256, ge=1, le=10_000)

    def resolved_data_dir(self) -> Path:
        """The data directory: `data_dir`, else `$HYBRIDMEM_HOME`, else `./hybridmem_data`."""
        raw = self.data_dir or os.environ.get("HYBRIDMEM_HOME") or DEFAULT_DATA_DIR
        return Path(raw).expanduser().resolve()

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> MemoryConfig:
        """Build a config from a mem0-style dict (or our own flat field names).

        Raises:
            ConfigError: an unknown top-level key, provider or provider key, or a bad value.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(f"config must be a dict, got {type(raw).__name__}")
        data: dict[str, Any] = {}
        for key, value in raw.items():
            if key in _PROVIDER_BLOCKS:
                data[key] = _provider_block(key, value)
            elif key == "custom_fact_extraction_prompt":
                data.setdefault("llm", {})
                data["_custom_prompt"] = value
            elif key in cls.model_fields:
                data[key] = value
            else:
                known = sorted(set(cls.model_fields) | {"custom_fact_extraction_prompt"})
                raise ConfigError(
                    f"unknown config key {key!r}{_did_you_mean(key, known)}; known keys: {known}"
                )
        prompt = data.pop("_custom_prompt", None)
        if prompt is not None:
            if data.get("llm") in (None, {}):
                raise ConfigError("custom_fact_extraction_prompt needs an `llm` block")
            data["llm"]["custom_fact_extraction_prompt"] = prompt
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None


# mem0 key names that mean the same as ours.
_KEY_ALIASES = {
    "openai_base_url": "base_url",
    "uri": "url",
    "path": "db",
}

_PROVIDER_BLOCKS: dict[str, set[str]] = {
    "llm": {"openai"},
    "embedder": {"local", "openai", "hash"},
    "vector_store": {"milvus"},
    "graph_store": {"kuzu"},
}


def _provider_block(section: str, block: Any) -> dict[str, Any] | None:
    if block is None:
        if section == "llm":
            return None
        raise ConfigError(f"{section} cannot be None")
    if not isinstance(block, dict):
        raise ConfigError(f"{section} must be a dict like {{'provider': ..., 'config': {{...}}}}")
    unknown = sorted(set(block) - {"provider", "config"})
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in {section}"
            f"{_did_you_mean(unknown[0], ['provider', 'config'])}; use 'provider', 'config'"
        )
    provider = block.get("provider", next(iter(sorted(_PROVIDER_BLOCKS[section]))))
    supported = sorted(_PROVIDER_BLOCKS[section])
    if provider not in supported:
        raise ConfigError(f"unknown {section} provider {provider!r}; supported: {supported}")
    inner = block.get("config") or {}
    if not isinstance(inner, dict):
        raise ConfigError(f"{section}.config must be a dict")
    out: dict[str, Any] = {"provider": provider}
    for key, value in inner.items():
        out[_KEY_ALIASES.get(key, key)] = value
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = _dict_path(loc)
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            parts.append(f"unknown config key {where!r}{_did_you_mean(loc[-1], known)}; "
                         f"known keys there: {known}")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "invalid config: " + "; ".join(parts)


def _did_you_mean(key: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' for the known keys closest to a mistyped one, else ''."""
    close = difflib.get_close_matches(key, known, n=2)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def _dict_path(loc: list[str]) -> str:
    """The key path as the user wrote it: provider blocks keep their `config` level."""
    if loc and loc[0] in _PROVIDER_BLOCKS and len(loc) > 1:
        return ".".join([loc[0], "config", *loc[1:]])
    return ".".join(loc)


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = MemoryConfig
    for name in loc:
        annotation = model.model_fields[name].annotation
        model = next((a for a in (annotation, *getattr(annotation, "__args__", ()))
                      if isinstance(a, type) and issubclass(a, BaseModel)), model)
    aliases = {alias for alias, ours in _KEY_ALIASES.items() if ours in model.model_fields}
    return sorted((set(model.model_fields) - {"provider"}) | aliases)
