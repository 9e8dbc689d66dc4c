"""`Memory`: the public facade, with mem0's method names, argument shapes and result dicts."""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hybridmem.config import MemoryConfig
from hybridmem.dates import parse_timestamp
from hybridmem.engines import Engines
from hybridmem.errors import (
    ClosedError,
    HybridMemError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from hybridmem.filters import matches, parse_filters
from hybridmem.inputs import (
    check_idempotency_key,
    check_limit,
    check_memory_id,
    check_metadata,
    check_signals,
    check_text,
    check_threshold,
    parse_messages,
)
from hybridmem.providers.chat import JSONChat
from hybridmem.providers.embed import create_embedder
from hybridmem.providers.extract import create_extractor
from hybridmem.read.lexical_index import LexicalIndex
from hybridmem.read.render import render
from hybridmem.read.retriever import Hit, Retriever
from hybridmem.read.snapshot import GraphSnapshots
from hybridmem.read.vector_index import VectorIndex
from hybridmem.records import EdgeRecord, MemoryRecord, iso
from hybridmem.scope import Scope
from hybridmem.stores.opened import Stores, open_stores
from hybridmem.write.conflicts import LLMConflictJudge
from hybridmem.write.planner import GraphPlanner
from hybridmem.write.transfer import export_lines, import_plans
from hybridmem.write.writer import Writer

if TYPE_CHECKING:
    import networkx

    from hybridmem.providers.extract.base import Message

log = logging.getLogger(__name__)
T = TypeVar("T")


class _CallGate:
    """Counts public calls in flight, so closing never pulls a store from under one
    (closing Kuzu under a running query can crash the process)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self.closed = False

    @contextmanager
    def enter(self) -> Iterator[None]:
        with self._cond:
            if self.closed:
                raise ClosedError("this Memory is closed")
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Refuse new calls; wait for those running. False if they outlast `timeout`."""
        with self._cond:
            self.closed = True
            return self._cond.wait_for(lambda: self._active == 0, timeout)


class _KeyedCalls:
    """One call at a time per (scope, idempotency key): a repeat sent while the first is
    still running waits for it, then finds its result in the journal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[Scope, str], list[Any]] = {}  # key -> [lock, users]

    @contextmanager
    def hold(self, scope: Scope, key: str | None) -> Iterator[None]:
        if key is None:
            yield
            return
        with self._lock:
            entry = self._held.setdefault((scope, key), [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._held[(scope, key)]


def _open_call(method: Callable[..., T]) -> Callable[..., T]:
    """A public method: refused once closed, waited for by close()."""
    @functools.wraps(method)
    def wrapper(self: Memory, *args: Any, **kwargs: Any) -> T:
        with self._gate.enter():
            return method(self, *args, **kwargs)

    return wrapper


class _Background:
    """One worker thread that applies journaled adds in the order they were handed over
    (`add(..., wait=False)`); `flush` waits for it and reports what failed."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._errors: list[HybridMemError] = []
        self._lock = threading.Lock()
        self._abandoned = False  # set by a stop that timed out: what is left stays journaled
        self._thread = threading.Thread(target=self._run, name="hybridmem-adds", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if not self._abandoned:
                    job()
            except HybridMemError as exc:  # the input stays journaled: retry_pending()
                log.warning("background add failed (kept in the journal): %s", exc)
                with self._lock:
                    self._errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - the worker must outlive one bad add
                log.exception("background add failed (kept in the journal)")
                with self._lock:
                    self._errors.append(StoreError(f"background add failed: {exc!r}"))
            finally:
                self._queue.task_done()

    def flush(self) -> list[HybridMemError]:
        """Wait until every handed-over add has run; the errors since the last flush."""
        self._queue.join()
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def wait(self) -> None:
        """Wait until every handed-over add has run (its errors stay for `flush`)."""
        self._queue.join()

    def stop(self, timeout: float) -> tuple[list[HybridMemError], bool]:
        """Run what was handed over for up to `timeout` s, then stop. Returns the errors
        and whether everything ran; adds left over stay journaled (the next open replays
        them), so a queue of slow LLM adds never holds `close()` for ever."""
        self._queue.put(None)
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            self._abandoned = True
        with self._lock:
            errors, self._errors = self._errors, []
        return errors, done


class Memory:
    """Long-term memory for agents: facts in Milvus, people and relations in Kuzu.

    `Memory()` runs fully offline: data under `./hybridmem_data` (or `$HYBRIDMEM_HOME`),
    Milvus Lite, the local ONNX embedder and the rules extractor. `Memory.from_config(d)`
    takes mem0's config dict. One `Memory` per data directory at a time; close it (or use
    `with Memory() as m:`) to release the directory.
    """

    def __init__(self, config: MemoryConfig | dict[str, Any] | None = None, *,
                 repair: bool = False) -> None:
        """Open (or create) the store a config names.

        `repair=True` also rebuilds a catalog that lost writes (or was lost) from Milvus
        and Kuzu, and makes both engines match it; what was done is in `self.recovered`.

        Raises:
            ConfigError: a bad config, or one that names another store's files.
            StoreLockedError: another Memory holds this store.
            StoreError: a damaged file or an engine that cannot open (the message names
                the file and the command that repairs it).
        """
        if not isinstance(config, MemoryConfig):
            config = MemoryConfig.from_dict(config)
        self.config = config
        self._closed = False
        self._gate = _CallGate()
        self._keyed_calls = _KeyedCalls()
        self._background: _Background | None = None
        self._background_lock = threading.Lock()
        embedder = create_embedder(config.embedder, config.vector_store)
        stores = open_stores(config, embedder.dims, repair=repair)
        self._stores: Stores = stores
        self.data_dir: Path = stores.paths.data_dir
        #: The store's record (the SQLite file that is the source of truth).
        self.record_path: Path = stores.paths.catalog
        self._embedder = embedder
        self._chat = JSONChat(config.llm) if config.llm is not None else None
        self._catalog, self._journal = stores.catalog, stores.journal
        self._vectors, self._graph = stores.vectors, stores.graph
        self._snapshots = GraphSnapshots(self._graph)
        in_process = config.vector_store.searched_in_process(stores.paths.milvus_lite)
        self._index = VectorIndex(
            self._catalog.scope_vectors, embedder.dims,
            config.vector_store.in_process_budget_mb * 2**20) if in_process else None
        self._lexical = LexicalIndex(self._catalog.scope_texts,
                                     config.search.lexical_budget_mb * 2**20)
        judge = LLMConflictJudge(self._chat) if self._chat is not None else None
        self._planner = GraphPlanner(self._graph, self._snapshots, config.graph, judge)
        self._writer = Writer(
            config=config, db=stores.db, journal=self._journal, catalog=self._catalog,
            vectors=self._vectors, graph_store=self._graph, mirror=stores.mirror,
            projections=stores.projections, snapshots=self._snapshots, index=self._index,
            lexical=self._lexical, planner=self._planner, embedder=self._embedder,
            extractor=create_extractor(
                self._chat, config.llm.custom_fact_extraction_prompt if config.llm else None
            ),
        )
        self._retriever = Retriever(
            embedder=self._embedder, vectors=self._vectors, catalog=self._catalog,
            snapshots=self._snapshots, config=config.search,
            index=self._index, lexical=self._lexical,
        )
        # Closing needs Milvus Lite's gRPC server, whose worker pool concurrent.futures
        # shuts down when the interpreter exits, before atexit handlers run, and a flush
        # sent after that (or from __del__ during finalization) waits forever. So the
        # finalizer runs at the first exit hook (see _close_before_exit), or when the
        # Memory is garbage collected; never from __del__.
        self._finalizer = weakref.finalize(self, _close_stores, self._writer.lock, stores)
        self._finalizer.atexit = False
        _close_before_exit(self._finalizer)
        try:
            replayed = self._writer.recover()
        except BaseException:
            self.close()
            raise
        #: What opening did: operations finished or still pending, engines brought back
        #: in step with the record (`{"finished", "pending", ...counts}`).
        self.recovered: dict[str, int] = {**replayed, **stores.opened.found}

    @classmethod
    def from_config(cls, config_dict: dict[str, Any] | None) -> Memory:
        """Build from a mem0-style config dict (see `MemoryConfig.from_dict`)."""
        return cls(MemoryConfig.from_dict(config_dict))

    # ------------------------------------------------------------ writes

    @_open_call
    def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool = True,
        memory_type: str | None = None,
        prompt: str | None = None,
        idempotency_key: str | None = None,
        timestamp: Any = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """Remember messages (a str, a role/content dict, or a list of them).

        With `infer=True` facts and relations are extracted (one LLM call when an LLM is
        configured, else the rules extractor); with `infer=False` each message is stored
        verbatim. Exact duplicates in the scope are not stored twice (event "NONE").

        `idempotency_key` (any unique string, a UUID say) makes the add happen once: a
        call repeated with the same key and input in the same scope, after a crash or a
        lost answer, returns the first call's result and stores nothing again.

        `timestamp` (a datetime, an ISO 8601 string or unix seconds, as mem0 takes it):
        when the messages were said. It becomes the memories' `created_at` (an imported
        conversation keeps its dates), and relative dates in them ("yesterday", "last
        week", "two years ago") are resolved against it into words search can match
        ("7 may 2023"). Default: now.

        `wait=False` returns once the input is journaled (durable: a crash replays it) and
        leaves extraction and storage to a background worker, so an agent's reply need not
        wait on the LLM; adds run one after the other in the order given. `flush()` waits
        for them (and raises what failed; a failed add stays journaled for
        `retry_pending()`); `close()` waits too. Until then a search may not see them.

        Returns:
            `{"results": [{"id", "memory", "event"}], "relations": {"added_entities",
            "deleted_entities"}}`; with `wait=False`, empty results and `"queued"`: the
            journaled operation ids (see `pending()`).

        Raises:
            ScopeError, InvalidInputError: bad scope ids, messages or metadata (nothing
                stored).
            ProviderError: the LLM/embedding endpoint failed; the input stays journaled
                and `retry_pending()` finishes it later.
        """
        if memory_type is not None:
            raise InvalidInputError(
                f"memory_type={memory_type!r} is not supported by hybridmem (mem0's procedural "
                "memory summarises agent runs); leave it out to store facts and relations"
            )
        if prompt is not None:
            raise InvalidInputError(
                "prompt= on add is not supported by hybridmem; set the extraction prompt once "
                "with the config key custom_fact_extraction_prompt"
            )
        if not isinstance(infer, bool):
            raise InvalidInputError("infer must be True or False")
        if not isinstance(wait, bool):
            raise InvalidInputError("wait must be True or False")
        if not wait and idempotency_key is not None:
            raise InvalidInputError(
                "idempotency_key needs wait=True (the key's result is the add's result)")
        scope = Scope.of(user_id, agent_id, run_id)
        parsed = parse_messages(messages, self.config.max_text_chars)
        clean_metadata = check_metadata(metadata)
        key = check_idempotency_key(idempotency_key)
        said_at = parse_timestamp(timestamp) if timestamp is not None else None
        merged: dict[str, Any] = {"results": [], "relations": {"added_entities": [],
                                                               "deleted_entities": []}}
        if not wait:
            return {**merged, "queued": self._queue_add(scope, parsed, clean_metadata, infer,
                                                        said_at)}
        digest = _input_digest(parsed, clean_metadata, infer, said_at) if key else None
        with self._keyed_calls.hold(scope, key):
            # A long conversation is stored in batches, each journaled and applied on its
            # own, so memory stays bounded and a crash replays one batch, not the whole call.
            size = self.config.add_batch_messages
            for number, start in enumerate(range(0, len(parsed), size)):
                batch = parsed[start : start + size]
                batch_key = f"{key}#{number}" if key else None
                try:
                    result = self._keyed_result(scope, batch_key, digest) if key else None
                    if result is None:
                        with self._writer.journaled("add", scope, {
                            "messages": [m.__dict__ for m in batch], "metadata": clean_metadata,
                            "infer": infer, "timestamp": said_at,
                        }, idem_key=batch_key, idem_input=digest) as op_id:
                            result = self._writer.add(op_id, scope, batch, clean_metadata,
                                                      infer, timestamp=said_at)
                except HybridMemError as exc:
                    if start:
                        exc.add_note(f"messages 0-{start - 1} of this call were stored; "
                                     f"{start}-{len(parsed) - 1} were not")
                    raise
                merged["results"] += result["results"]
                for name in ("added_entities", "deleted_entities"):
                    merged["relations"][name] += result["relations"][name]
        return merged

    def _queue_add(self, scope: Scope, parsed: list[Message], metadata: dict[str, Any],
                   infer: bool, said_at: str | None) -> list[str]:
        """Journal each batch now; hand its planning and applying to the worker."""
        with self._background_lock:
            if self._closed:  # close() has taken the worker: nothing may queue behind it
                raise ClosedError("this Memory is closing; add(wait=False) was not queued")
            if self._background is None:
                self._background = _Background()
            worker = self._background
        size = self.config.add_batch_messages
        queued = []
        for start in range(0, len(parsed), size):
            batch = parsed[start : start + size]
            op_id = self._writer.begin_running("add", scope, {
                "messages": [m.__dict__ for m in batch], "metadata": metadata,
                "infer": infer, "timestamp": said_at})
            queued.append(op_id)

            def job(op_id: str = op_id, batch: list[Message] = batch) -> None:
                try:
                    self._writer.add(op_id, scope, batch, metadata, infer, timestamp=said_at)
                finally:
                    self._writer.end_running(op_id)

            worker.submit(job)
        return queued

    def _wait_background(self) -> None:
        # An add handed over before a delete, update or reset lands before it: otherwise
        # add(wait=False) then delete_all() would bring the user's memories back.
        with self._background_lock:
            worker = self._background
        if worker is not None:
            worker.wait()

    @_open_call
    def flush(self) -> None:
        """Wait until every `add(..., wait=False)` handed over so far has been applied.

        Raises:
            HybridMemError: the first error of an add that failed since the last flush
                (its input stays journaled; `retry_pending()` finishes it).
        """
        with self._background_lock:
            worker = self._background
        errors = worker.flush() if worker is not None else []
        if errors:
            if len(errors) > 1:
                errors[0].add_note(f"{len(errors) - 1} more background adds failed too")
            raise errors[0]

    def _keyed_result(self, scope: Scope, key: str, digest: str | None
                      ) -> dict[str, Any] | None:
        """The result of an add already journaled with this key (finishing it first if it
        is still pending), or None when there is none."""
        prior = self._journal.keyed(scope, key)
        if prior is None:
            return None
        if prior.input != digest:
            raise InvalidInputError(
                "this idempotency_key was already used for another add in this scope; use a "
                "new key for new input")
        if prior.status == "done" and prior.result is not None:
            return prior.result
        if prior.status == "quarantined":
            raise InvalidInputError(
                f"the add with this idempotency_key failed repeatedly and is quarantined "
                f"(operation {prior.id}, see pending()): {self._journal.error(prior.id)}")
        result = self._writer.replay(prior.id)
        if result is None:  # finished meanwhile (by a recovery): its answer is journaled
            found = self._journal.keyed(scope, key)
            result = found.result if found is not None else None
        if result is None:
            raise InvalidInputError(f"the add with this idempotency_key (operation "
                                    f"{prior.id}) cannot be answered again; use a new key")
        return result

    @_open_call
    def update(self, memory_id: str, data: str, *, metadata: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Replace a memory's text (and, if given, its metadata); relations follow."""
        check_memory_id(memory_id)
        text = check_text(data, "data", self.config.max_text_chars)
        if not text.strip():
            raise InvalidInputError("data is empty")
        clean_metadata = check_metadata(metadata) if metadata is not None else None
        self._wait_background()
        record = self._record(memory_id)
        with self._writer.journaled("update", record.scope, {
            "memory_id": memory_id, "text": text, "metadata": clean_metadata,
        }) as op_id:
            return self._writer.update(op_id, memory_id, text, clean_metadata)

    @_open_call
    def delete(self, memory_id: str) -> dict[str, Any]:
        """Erase one memory for real, with the edges and entities only it supported."""
        check_memory_id(memory_id)
        self._wait_background()
        record = self._record(memory_id)
        with self._writer.journaled("delete", record.scope, {"memory_id": memory_id}) as op_id:
            return self._writer.delete(op_id, memory_id)

    @_open_call
    def delete_all(
        self, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Erase every memory, entity and relation of a scope (a scope id is required)."""
        scope = Scope.of(user_id, agent_id, run_id)
        self._wait_background()
        with self._writer.journaled("delete_all", scope, {}) as op_id:
            return self._writer.delete_all(op_id, scope)

    @_open_call
    def reset(self) -> None:
        """Erase EVERYTHING in this store (all scopes): vectors, graph, catalog, history
        and journal. Never called implicitly."""
        self._wait_background()
        with self._writer.lock:
            self._vectors.ensure_open()  # opened and checked before the record is emptied
            db = self._stores.db
            with db.transaction() as conn:
                for table in ("memories", "tombstones", "entities", "edges", "history", "ops"):
                    conn.execute(f"DELETE FROM {table}")
                db.set_meta({"epoch": 0, "vector_epoch": 0})
            self._vectors.drop()
            self._graph.drop_all(self._stores.projections.store_id)
            self._stores.projections.flush()
            self._forget_caches()

    @_open_call
    def retry_pending(self) -> dict[str, int]:
        """Finish operations left unfinished by a crash or a provider failure (oldest
        first, each input once; a provider failure stops the replay, the rest wait).

        Returns `{"finished": n, "pending": m}` (m still waiting), plus
        `"repeated_dropped": k` when k journaled adds repeated an input already waiting in
        their scope.
        """
        return self._writer.recover()

    @_open_call
    def pending(self) -> list[dict[str, Any]]:
        """Journaled operations not finished yet: id, kind, status (`received`: replayed
        by `retry_pending()`; `quarantined`: failed repeatedly, replayed only after you
        fix the cause, see `discard_pending`), attempts, last error, scope ids."""
        return [
            {"id": op.id, "kind": op.kind, "status": op.status, "attempts": op.attempts,
             "error": op.error, "created_at": op.created_at,
             **(op.scope.ids() if op.scope else {})}
            for op in self._journal.pending()
        ]

    @_open_call
    def discard_pending(self, op_id: str) -> None:
        """Drop a journaled operation that is not finished (e.g. a quarantined add).

        Raises:
            NotFoundError: no unfinished operation has that id.
        """
        with self._writer.lock:
            if self._journal.status(op_id) not in ("received", "quarantined"):
                raise NotFoundError(f"no pending operation with id {op_id!r}")
            self._journal.discard(op_id, force=True)

    @_open_call
    def check(self) -> dict[str, Any]:
        """Compare every memory, vector, entity and edge of Milvus and Kuzu with the
        record (a full scan). Returns `{"clean": bool, "found": {kind: n}, "notes": [...],
        "pending": n}`; `clean` is about the engines, `pending` counts journaled
        operations still to replay (see `pending()`)."""
        with self._writer.lock:
            report = self._stores.projections.check()
        return {"clean": report.clean, "found": report.found, "notes": report.notes,
                "pending": len(self._journal.pending())}

    @_open_call
    def repair(self) -> dict[str, Any]:
        """Make Milvus and Kuzu match the record exactly (rewrites what differs); then
        check again. Returns the repair's counts and the check that followed."""
        with self._writer.lock:
            done = self._stores.projections.repair()
            self._forget_caches()
            after = self._stores.projections.check()
        return {"repaired": done.found, "clean": after.clean, "found": after.found}

    # ------------------------------------------------------------ reads

    @_open_call
    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
        filters: dict[str, Any] | None = None,
        threshold: float | None = None,
        signals: tuple[str, ...] | list[str] | None = None,
    ) -> dict[str, Any]:
        """One ranked list of memories and relations for a query (no LLM call).

        `signals` restricts the retrievers to some of "vector", "bm25", "graph" (to compare
        them, as benchmarks/locomo_retrieval.py does); by default all three run.

        Each hit: `id`, `memory` (text), `score` (fused, 0..1), `type` ("memory" |
        "relation"), `score_components` ({signal: {raw, normalized}}), `provenance`
        (`memory_ids`, `created_at`); relations add `source`, `relationship`, `destination`.
        """
        check_text(query, "query", self.config.max_text_chars)
        if not query.strip():
            raise InvalidInputError("query is empty")
        scope = Scope.of(user_id, agent_id, run_id, filters=filters)
        where = parse_filters(filters)
        hits = self._retriever.search(
            query, scope, limit=check_limit(limit), where=where,
            threshold=check_threshold(threshold), signals=check_signals(signals),
        )
        return {"results": [self._hit_dict(h) for h in hits]}

    @_open_call
    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or None."""
        check_memory_id(memory_id)
        record = self._catalog.get(memory_id)
        return _memory_dict(record) if record is not None else None

    @_open_call
    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        limit: int = 100,
        include_invalid: bool = False,
        as_of: datetime | str | None = None,
    ) -> dict[str, Any]:
        """A scope's memories (newest first) and relations.

        `include_invalid=True` adds superseded memories and ended relations (each with
        `valid`, `invalidated_at`, `superseded_by`, `reason`); `as_of` shows the store
        as it was at that moment.
        """
        scope = Scope.of(user_id, agent_id, run_id, filters=filters)
        where = parse_filters(filters)
        limit = check_limit(limit)
        moment = _as_of(as_of)
        records = self._catalog.list(scope, include_superseded=include_invalid, as_of=moment)
        records = [r for r in records if matches(where, r.metadata)][:limit]
        edges = self._graph.edges(scope, include_invalid=include_invalid, as_of=moment)
        return {
            "results": [_memory_dict(r) for r in records],
            "relations": [_relation_dict(e) for e in edges],
        }

    @_open_call
    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """ADD/UPDATE/DELETE rows of a memory, plus INVALIDATE (an edge it supported was
        contradicted) and SUPERSEDE (all of them were) rows; oldest first."""
        check_memory_id(memory_id)
        return [
            {**h.model_dump(exclude={"user_id", "agent_id", "run_id"}),
             **{k: v for k, v in h.model_dump(include={"user_id", "agent_id", "run_id"}).items()
                if v}, "updated_at": None, "is_deleted": h.event == "DELETE"}
            for h in self._journal.history(memory_id)
        ]

    @_open_call
    def graph(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_invalid: bool = False,
        as_of: datetime | str | None = None,
    ) -> networkx.MultiDiGraph:
        """The scope's entity graph as a `networkx.MultiDiGraph`.

        Nodes carry `name`, `type`, `aliases`, `mentions`; edges (keyed by edge id) carry
        `relation`, `fact`, `text`, `valid`, `created_at`, `invalidated_at`, `reason` and
        `memory_ids` (provenance). By default only the current graph.
        """
        import networkx as nx  # only graph() needs it (0.2 s to import)

        scope = Scope.of(user_id, agent_id, run_id)
        out = nx.MultiDiGraph()
        for e in self._graph.entities(scope):
            out.add_node(e.id, name=e.name, type=e.type, aliases=list(e.aliases),
                         mentions=e.mentions, is_user=e.key == "@self", created_at=e.created_at)
        for edge in self._graph.edges(scope, include_invalid=include_invalid,
                                      as_of=_as_of(as_of)):
            out.add_edge(
                edge.source_id, edge.target_id, key=edge.id, relation=edge.relation,
                fact=edge.fact, text=render(edge.source_name, edge.relation, edge.target_name),
                valid=edge.valid, created_at=edge.created_at,
                invalidated_at=edge.invalidated_at, superseded_by=edge.superseded_by,
                reason=edge.reason, memory_ids=list(edge.memory_ids),
            )
        return out

    @_open_call
    def export(
        self, *, user_id: str | None = None, agent_id: str | None = None,
        run_id: str | None = None, all_scopes: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """The scope's memories, entities and relations (incl. history) as JSON-ready
        dicts, one per line of an export file; `all_scopes=True` exports everything."""
        scope = None if all_scopes else Scope.of(user_id, agent_id, run_id)
        return export_lines(self._catalog, self._graph, scope)

    @_open_call
    def import_lines(self, lines: Iterable[dict[str, Any]],
                     progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Load lines made by `export` (ids kept; texts embedded again). Each batch is a
        journaled operation. `progress(n)` is called with the lines each batch carried.

        Raises:
            InvalidInputError: a line is not valid; nothing after it is written.
        """
        counts = {"memories": 0, "entities": 0, "relations": 0}
        for plan, n in import_plans(list(lines), embed=self._embedder.embed,
                                    dims=self._embedder.dims):
            with self._writer.journaled("import", None, {}) as op_id, self._writer.lock:
                plan.op_id = op_id
                self._writer.run(plan)
            counts["memories"] += len(plan.memories)
            counts["entities"] += len(plan.entities)
            counts["relations"] += len(plan.edges)
            if progress is not None:
                progress(n)
        self._forget_caches()
        return counts

    @_open_call
    def stats(self) -> dict[str, int]:
        """Row counts in each store (all scopes): `memories` (the record), `vectors`
        (Milvus), `entities`/`relations` (Kuzu), and `pending_operations`."""
        entities, edges = self._graph.count()
        return {"memories": self._catalog.count(), "vectors": self._vectors.count(),
                "entities": entities, "relations": edges,
                "pending_operations": len(self._journal.pending())}

    @property
    def engines(self) -> Engines:
        """The engines behind this Memory, for diagnostics and benchmarks (see
        `hybridmem.engines`; reading is safe, writing through them bypasses the journal)."""
        return Engines(vectors=self._vectors, graph=self._graph, catalog=self._catalog,
                       projections=self._stores.projections, snapshots=self._snapshots,
                       lexical=self._lexical, vector_index=self._index,
                       embedder=self._embedder, chat=self._chat, retriever=self._retriever)

    def _forget_caches(self) -> None:
        """Drop the read path's in-process views (they are loaded again from the record)."""
        self._snapshots.clear()
        self._lexical.clear()
        if self._index is not None:
            self._index.clear()

    def _record(self, memory_id: str) -> MemoryRecord:
        record = self._catalog.get(memory_id)
        if record is None:
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return record

    def _hit_dict(self, hit: Hit) -> dict[str, Any]:
        c = hit.candidate
        base = {"id": c.id, "memory": hit.text, "score": round(c.score, 6), "type": c.kind,
                "score_components": c.components()}
        if hit.memory is not None:
            record = hit.memory
            return {**_memory_dict(record), **base,
                    "provenance": {"memory_ids": [record.id], "created_at": record.created_at}}
        edge = hit.edge
        assert edge is not None
        return {**base, "source": edge.source_name, "relationship": edge.relation,
                "destination": edge.target_name, "fact": edge.fact,
                "created_at": edge.created_at,
                **{k: v for k, v in edge.model_dump(include={"user_id", "agent_id",
                                                             "run_id"}).items() if v},
                "provenance": {"memory_ids": list(c.memory_ids), "created_at": edge.created_at}}

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Make Milvus durable, close every store and release it (idempotent).

        Called for you at interpreter exit and when the Memory is garbage collected, but
        `with Memory() as m:` (or an explicit `close()`) releases the store at once.
        """
        with self._background_lock:
            if self._closed:
                return
            self._closed = True  # no add(wait=False) queues from here on
            worker, self._background = self._background, None
        if worker is not None:  # the handed-over adds finish first (for a while)
            errors, done = worker.stop(CLOSE_WAIT_SECONDS)
            for exc in errors:
                log.warning("a background add failed and stays journaled: %s", exc)
            if not done:
                log.warning("background adds were still running after %.0f s; the rest stay "
                            "journaled and the next open applies them", CLOSE_WAIT_SECONDS)
        if not self._gate.close(CLOSE_WAIT_SECONDS):
            log.warning("calls were still running after %.0f s; closing anyway",
                        CLOSE_WAIT_SECONDS)
        self._finalizer()  # a finalizer runs once; the exit hook then finds it dead


    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



# How long closing waits for a write still running in another thread before it gives up
# on the engines (the journal finishes that write on the next open).
CLOSE_WAIT_SECONDS = 30.0


def _close_before_exit(close: Callable[[], Any]) -> None:
    # threading._register_atexit (CPython's hook for concurrent.futures) runs its
    # callbacks last-registered-first before worker pools stop, so this one runs while
    # Milvus Lite still answers. atexit is the fallback where the hook does not exist.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(close)
            return
        except RuntimeError:  # the interpreter is already shutting down
            pass
    atexit.register(close)


def _close_stores(write_lock: threading.RLock, stores: Stores) -> None:
    """Close the store once no write is running; never raises."""
    if write_lock.acquire(timeout=CLOSE_WAIT_SECONDS):
        try:
            stores.close()
        finally:
            write_lock.release()
    else:
        log.warning("a write was still running after %.0f s; closing without flushing "
                    "(the journal finishes it on the next open)", CLOSE_WAIT_SECONDS)
        stores.lock.release()


def _input_digest(messages: list[Any], metadata: dict[str, Any], infer: bool,
                  timestamp: str | None = None) -> str:
    """What an idempotency key is bound to: the add's input, whatever batch it is in
    (the timestamp only when one is given, so keys journaled before it existed match)."""
    fields: dict[str, Any] = {"messages": [m.__dict__ for m in messages],
                              "metadata": metadata, "infer": infer}
    if timestamp is not None:
        fields["timestamp"] = timestamp
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def _as_of(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(f"as_of {value!r} is not an ISO date-time") from None
    if not isinstance(value, datetime):
        raise InvalidInputError("as_of must be a datetime or an ISO string")
    return iso(value)


def _memory_dict(record: MemoryRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id, "memory": record.text, "hash": record.hash,
        "metadata": record.metadata, "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
    for key in ("user_id", "agent_id", "run_id", "role", "actor_id"):
        value = getattr(record, key)
        if value:
            out[key] = value
    if record.superseded_at is not None:
        out["superseded_at"] = record.superseded_at
        out["superseded_by"] = record.superseded_by
    return out


def _relation_dict(edge: EdgeRecord) -> dict[str, Any]:
    return {
        "id": edge.id, "source": edge.source_name, "relationship": edge.relation,
        "target": edge.target_name, "destination": edge.target_name,
        "memory": render(edge.source_name, edge.relation, edge.target_name),
        "fact": edge.fact, "valid": edge.valid, "created_at": edge.created_at,
        "invalidated_at": edge.invalidated_at, "superseded_by": edge.superseded_by,
        "reason": edge.reason, "memory_ids": list(edge.memory_ids),
    }
