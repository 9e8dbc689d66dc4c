"""BM25 over the current memories of hot scopes, in process: each memory's own text, and
the texts stored just before it in its scope (its context) at `context_weight`.

SQLite FTS5 computed bm25() for every row matching any query word before it could rank
them: 8.3 ms of a 22 ms search at 10k memories per user, most of a 111 ms search at
100k. Here each scope's postings are flat arrays, and a query scores its words'
postings in a few numpy operations.

The model is the relations' (`read/bm25.py`): Okapi BM25 (k1 1.2, b 0.75), Lucene's IDF
less the IDF of a word in every memory (floored at 1e-6, as FTS5 floors it: found, but
no evidence), the same stems. A word's weight in a memory is its count in the text plus
`context_weight` times its count in the context, and a memory's length is its text's
stems plus its context's (as FTS5 weighted its columns). Statistics are those of the
scope's current memories: superseded ones are never shown, and other users' words say
nothing about how rare a word is for this one.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from hybridmem.dates import DATE_MARKER, date_words
from hybridmem.read.bm25 import K1, B
from hybridmem.read.scope_cache import (
    TRIM_AFTER_ROWS,
    CachedScopes,
    ScopeCache,
    release_free_memory,
)
from hybridmem.records import MemoryText, WritePlan
from hybridmem.scope import SCOPE_FIELDS, Scope
from hybridmem.stores.catalog import context_lines
from hybridmem.text import content_stems, stems, tokenize

# Query words scored at most (FTS5's query was cut at the same length).
MAX_QUERY_WORDS = 32
# Removed memories stay as dead rows until they outnumber this many and the live ones.
_COMPACT_AFTER = 256
# Python-side cost per row (id string, its dict slot) and per distinct word, for the budget.
_ROW_BYTES, _WORD_BYTES = 200, 300


@dataclass
class _Posting:
    """The rows a word occurs in, with its count in each row's text and context."""

    rows: array = field(default_factory=lambda: array("I"))
    own: array = field(default_factory=lambda: array("f"))
    near: array = field(default_factory=lambda: array("f"))


class _ScopePostings:
    """One read scope's postings. Rows are appended; a removed memory's row is marked dead
    and skipped until compaction drops dead rows."""

    def __init__(self, compact_after: int = _COMPACT_AFTER) -> None:
        self._compact_after = compact_after
        self.ids: list[str] = []
        self.row: dict[str, int] = {}
        self.live = array("B")
        self.own_length = array("f")
        self.near_length = array("f")
        self.postings: dict[str, _Posting] = {}
        self.own_total = self.near_total = 0.0
        self._entries = 0

    @classmethod
    def built(cls, texts: list[MemoryText]) -> _ScopePostings:
        """The postings of many memories at once (a scope's first search): each distinct
        line stemmed once, the postings laid out by numpy (100k memories: 2.4 s, where
        adding them one by one took 6.8 s, both on 2 busy cores)."""
        built = cls()
        n = len(texts)
        if not n:
            return built
        line_of: dict[str, int] = {}
        own_text = [indexed_text(item) for item in texts]
        for item, text in zip(texts, own_text, strict=True):
            line_of.setdefault(text, len(line_of))
            for line in item.context:
                line_of.setdefault(line, len(line_of))
        stemmed = [stems(line) for line in line_of]
        flat = list(chain.from_iterable(stemmed))
        vocabulary = {word: i for i, word in enumerate(dict.fromkeys(flat))}
        # each line's words, one entry per occurrence (np.unique below adds them up)
        line_words = np.fromiter(map(vocabulary.__getitem__, flat), np.int64, len(flat))
        line_counts = np.ones(len(flat), np.float32)
        size = np.fromiter(map(len, stemmed), np.int64, len(stemmed))
        start = np.cumsum(size) - size
        line_length = size.astype(np.float32)

        def entries(rows: np.ndarray, lines: np.ndarray):
            """(row, word, count) for every word of each (row, line) pair."""
            k = size[lines]
            at = np.repeat(start[lines] - (np.cumsum(k) - k), k) + np.arange(k.sum())
            return np.repeat(rows, k), line_words[at], line_counts[at]

        own_line = np.fromiter((line_of[t] for t in own_text), np.int64, n)
        near_row = np.fromiter((r for r, t in enumerate(texts) for _ in t.context), np.int64)
        near_line = np.fromiter((line_of[c] for t in texts for c in t.context), np.int64)
        own = entries(np.arange(n), own_line)
        near = entries(near_row, near_line)
        key = np.concatenate([own[1], near[1]]) * n + np.concatenate([own[0], near[0]])
        unique, inverse = np.unique(key, return_inverse=True)
        zeros_own, zeros_near = np.zeros(len(near[2])), np.zeros(len(own[2]))
        own_tf = np.bincount(inverse, np.concatenate([own[2], zeros_own]), len(unique))
        near_tf = np.bincount(inverse, np.concatenate([zeros_near, near[2]]), len(unique))
        word_of, row_of = unique // n, (unique % n).astype(np.uint32)
        own_tf, near_tf = own_tf.astype(np.float32), near_tf.astype(np.float32)
        bounds = [0, *(np.flatnonzero(np.diff(word_of)) + 1).tolist(), len(unique)]
        if not len(unique):  # no memory has a word
            bounds = [0]
        names = list(vocabulary)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            built.postings[names[word_of[a]]] = _Posting(
                array("I", row_of[a:b].tobytes()), array("f", own_tf[a:b].tobytes()),
                array("f", near_tf[a:b].tobytes()))
        built._entries = len(unique)
        built.ids = [t.memory_id for t in texts]
        built.row = {memory_id: r for r, memory_id in enumerate(built.ids)}
        built.live = array("B", b"\x01" * n)
        own_length = line_length[own_line]
        near_length = np.bincount(near_row, line_length[near_line], n).astype(np.float32)
        built.own_length = array("f", own_length.tobytes())
        built.near_length = array("f", near_length.tobytes())
        built.own_total, built.near_total = float(own_length.sum()), float(near_length.sum())
        return built

    @property
    def nbytes(self) -> int:
        per_row = 9 + _ROW_BYTES  # live flag and two lengths, then the id and its slot
        return len(self.ids) * per_row + len(self.postings) * _WORD_BYTES + self._entries * 12

    def add(self, memory_id: str, own: list[str], near: list[str]) -> None:
        """Index a memory from its stems (replacing what it said before)."""
        self.remove(memory_id)
        r = len(self.ids)
        self.ids.append(memory_id)
        self.row[memory_id] = r
        self.live.append(1)
        self.own_length.append(len(own))
        self.near_length.append(len(near))
        self.own_total += len(own)
        self.near_total += len(near)
        own_counts, near_counts = Counter(own), Counter(near)
        for word in own_counts.keys() | near_counts.keys():
            posting = self.postings.get(word)
            if posting is None:
                posting = self.postings[word] = _Posting()
            posting.rows.append(r)
            posting.own.append(own_counts.get(word, 0))
            posting.near.append(near_counts.get(word, 0))
            self._entries += 1

    def remove(self, memory_id: str) -> None:
        """Stop finding a memory (nothing if it is not indexed)."""
        r = self.row.pop(memory_id, None)
        if r is None:
            return
        self.live[r] = 0
        self.own_total -= self.own_length[r]
        self.near_total -= self.near_length[r]
        dead = len(self.ids) - len(self.row)
        if dead > max(self._compact_after, len(self.row)):
            self._compact()

    def _compact(self) -> None:
        keep = np.frombuffer(self.live, np.uint8).astype(bool)
        renumber = (np.cumsum(keep) - 1).astype(np.uint32)
        self._entries = 0
        for word in list(self.postings):
            posting = self.postings[word]
            rows = np.frombuffer(posting.rows, np.uint32)
            kept = keep[rows]
            if not kept.any():
                del self.postings[word]
                continue
            posting.rows = array("I", renumber[rows[kept]].tobytes())
            posting.own = array("f", np.frombuffer(posting.own, np.float32)[kept].tobytes())
            posting.near = array("f", np.frombuffer(posting.near, np.float32)[kept].tobytes())
            self._entries += len(posting.rows)
        alive = np.flatnonzero(keep)
        self.ids = [self.ids[i] for i in alive]
        self.row = {memory_id: i for i, memory_id in enumerate(self.ids)}
        self.live = array("B", bytes([1]) * len(self.ids))
        for name in ("own_length", "near_length"):
            column = np.frombuffer(getattr(self, name), np.float32)[alive]
            setattr(self, name, array("f", column.tobytes()))

    def scores(self, words: Iterable[str], context_weight: float) -> np.ndarray:
        """BM25 of every row (0 for dead rows and rows without a query word)."""
        out = np.zeros(len(self.ids), np.float64)
        n = len(self.row)
        with_context = context_weight > 0
        total = self.own_total + (self.near_total if with_context else 0.0)
        if n == 0 or total <= 0:
            return out
        average = total / n
        # What Lucene's IDF gives a word every current memory has: subtracted, so such a
        # word weighs nothing (FTS5's classic IDF did the same, but it also gave nothing
        # to a word in half of a small scope's memories, which still tells them apart).
        no_evidence = math.log(1 + 0.5 / (n + 0.5))
        live = np.frombuffer(self.live, np.uint8)
        own_length = np.frombuffer(self.own_length, np.float32)
        near_length = np.frombuffer(self.near_length, np.float32)
        for word in words:
            posting = self.postings.get(word)
            if posting is None:
                continue
            rows = np.frombuffer(posting.rows, np.uint32)
            tf = np.frombuffer(posting.own, np.float32).astype(np.float64)
            if with_context:
                tf = tf + context_weight * np.frombuffer(posting.near, np.float32)
            hit = (live[rows] == 1) & (tf > 0)
            found = int(np.count_nonzero(hit))
            if not found:
                continue
            rows, tf = rows[hit], tf[hit]
            length = own_length[rows] + (near_length[rows] if with_context else 0.0)
            idf = _idf(n, found, no_evidence)
            out[rows] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        return out

    def ideal(self, words: Iterable[str], context_weight: float) -> float:
        """The BM25 a memory of average length holding each query word once would get:
        the sum of the words' IDF (a word no current memory has counts as the rarest).
        A real match's score over this says how much of the query's evidence it holds."""
        n = len(self.row)
        if n == 0:
            return 0.0
        no_evidence = math.log(1 + 0.5 / (n + 0.5))
        live = np.frombuffer(self.live, np.uint8)
        total = 0.0
        for word in words:
            posting = self.postings.get(word)
            found = 0
            if posting is not None:
                rows = np.frombuffer(posting.rows, np.uint32)
                tf = np.frombuffer(posting.own, np.float32)
                if context_weight > 0:
                    tf = tf + np.frombuffer(posting.near, np.float32)
                found = int(np.count_nonzero((live[rows] == 1) & (tf > 0)))
            total += _idf(n, found, no_evidence)
        return total


def _idf(n: int, found: int, no_evidence: float) -> float:
    """Lucene's IDF of a word in `found` of `n` memories, less a word-in-every-memory's,
    floored at 1e-6 (found, but no evidence)."""
    return max(math.log(1 + (n - found + 0.5) / (found + 0.5)) - no_evidence, 1e-6)


def query_words(query: str) -> list[str]:
    """The stems a query is scored by: its content words (question words such as "what",
    "when", "did" are stop words), and for a "when" question the marker every memory
    that names or implies a date carries (`dates.DATE_MARKER`): it asks for one."""
    words = list(dict.fromkeys(content_stems(query)))[:MAX_QUERY_WORDS]
    if words and "when" in tokenize(query):
        words += [w for w in stems(DATE_MARKER) if w not in words]
    return words


def indexed_text(item: MemoryText) -> str:
    """A memory's own words as indexed: its text, then the dates it speaks of resolved
    against when it was said (`dates.date_words`: "yesterday" said on 8 May 2023 is also
    found as "7 may 2023")."""
    words = date_words(item.text, item.created_at)
    return f"{item.text} {' '.join(words)}" if words else item.text


def _stemmed(texts: Iterable[MemoryText]) -> Iterable[tuple[str, list[str], list[str]]]:
    """(id, text stems, context stems); a line quoted by several contexts (each memory
    is in the context of the next ones) is stemmed once."""
    seen: dict[str, list[str]] = {}

    def line_stems(line: str) -> list[str]:
        found = seen.get(line)
        if found is None:
            found = seen[line] = stems(line)
        return found

    for item in texts:
        near = [s for line in item.context for s in line_stems(line)]
        yield item.memory_id, line_stems(indexed_text(item)), near


class LexicalIndex(CachedScopes[_ScopePostings]):
    """Per-scope BM25 over current memories, loaded from the record and patched by each
    applied plan."""

    def __init__(self, load: Callable[[Scope], list[MemoryText]], budget_bytes: int) -> None:
        self._load = load
        self._cache: ScopeCache[_ScopePostings] = ScopeCache(self._loaded, budget_bytes)

    def search(self, query: str, scope: Scope, limit: int, *, context_weight: float = 1.0
               ) -> list[tuple[str, float]]:
        """The `limit` best current memories of a read scope for the query's content words:
        (id, BM25 score > 0), best first, ties by id."""
        words = query_words(query)
        if not words or limit <= 0:
            return []
        with self._cache.lock:
            postings = self._cache.get(scope)
            scores = postings.scores(words, context_weight)
            found = np.flatnonzero(scores > 0)
            if len(found) > limit:  # the limit-th best score: rows above it, then ties by id
                cut = float(np.partition(scores[found], len(found) - limit)[len(found) - limit])
                found = found[scores[found] >= cut]
            ranked = [(postings.ids[r], float(scores[r])) for r in found]
        return sorted(ranked, key=lambda item: (-item[1], item[0]))[:limit]

    def ideal(self, query: str, scope: Scope, *, context_weight: float = 1.0) -> float:
        """`_ScopePostings.ideal` of the query's content words in a read scope: what a
        memory holding every query word once would score (0 for an empty scope)."""
        words = query_words(query)
        if not words:
            return 0.0
        with self._cache.lock:
            return self._cache.get(scope).ideal(words, context_weight)

    def _loaded(self, scope: Scope) -> _ScopePostings:
        texts = self._load(scope)
        postings = _ScopePostings.built(texts)
        if len(texts) >= TRIM_AFTER_ROWS:  # the texts read to build it are freed now
            del texts
            release_free_memory()
        return postings

    def apply(self, plan: WritePlan, restated: Mapping[str, MemoryText]) -> None:
        """Bring the cached scopes up to date with an applied plan; `restated`: memories
        whose context the record rewrote because a memory it quotes changed or went."""
        gone = [*plan.delete_memory_ids, *(s.memory_id for s in plan.supersede)]

        def patch(scope: Scope, postings: _ScopePostings) -> None:
            for memory_id in gone:
                postings.remove(memory_id)
            current = []
            for write in plan.memories:
                record = write.record
                if not scope.contains(record.model_dump(include=set(SCOPE_FIELDS))):
                    continue
                if record.superseded_at is None:
                    current.append(MemoryText(record.id, record.text,
                                              context_lines(record.context), record.created_at))
                else:
                    postings.remove(record.id)
            for memory_id, own, near in _stemmed(current):
                postings.add(memory_id, own, near)
            # after the plan's own memories: the record's rewrite of a context is newer
            again = [t for i, t in restated.items() if i in postings.row]
            for memory_id, own, near in _stemmed(again):
                postings.add(memory_id, own, near)

        self._cache.apply(plan, patch)
