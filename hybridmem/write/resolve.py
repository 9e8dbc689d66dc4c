"""Entity resolution inside one scope (never across): normalised key, then aliases, then
a unique first-name/full-name match for people, then, for common nouns only, embedding
similarity.

Precision first: a wrong merge moves one person's facts onto another, and then a
single-valued relation of the one ends the other's (measured before this rule: made-up
names one letter apart, "Zorax"/"Zorbx", merged at cosine >= 0.88). So a name the user
capitalised, and every person, never merges on embedding similarity alone; two proper
names merge by embedding only when one's words contain the other's ("New York" /
"New York City"). `benchmarks/entity_resolution.py` measures it.
"""

from __future__ import annotations

import numpy as np
from immutables import Map

from hybridmem.records import SELF_KEY, EntityRecord, unpack_vector
from hybridmem.text import entity_key, tokenize

PERSON_TYPES = {"person"}


class EntityResolver:
    """Finds the existing entity a mention names, precision first.

    Names of people ("name" entities, the values of `name` relations) resolve only by
    exact key, so a name never merges into the person who holds it. Building one is
    linear in the entities; lookups are dictionary reads, and one matrix product for an
    embedding match. Its maps are persistent (immutables' HAMT: a change makes a new map
    in O(log n) and shares the rest), so `copy` is free and a scope's resolver is built
    once, then carried from one graph snapshot to the next (`patched`): an add costs the
    same with 500 entities in the scope or 50,000.
    """

    def __init__(self, entities: list[EntityRecord], threshold: float) -> None:
        self._threshold = threshold
        self._by_id: Map[str, EntityRecord] = Map()
        self._by_key: Map[tuple[bool, str], EntityRecord] = Map()
        # inner dicts and sets are replaced on change, never changed in place (shared)
        self._by_alias: Map[str, dict[str, EntityRecord]] = Map()
        self._people_by_word: Map[str, frozenset[str]] = Map()
        self._matrix: tuple[list[str], np.ndarray] | None = None
        for entity in entities:
            self.add(entity)

    def copy(self) -> EntityResolver:
        """A resolver that can be changed without changing this one."""
        twin = EntityResolver.__new__(EntityResolver)
        twin._threshold = self._threshold
        twin._by_id = self._by_id
        twin._by_key = self._by_key
        twin._by_alias = self._by_alias
        twin._people_by_word = self._people_by_word
        twin._matrix = self._matrix  # replaced, never written, by whoever changes it
        return twin

    def patched(self, changed: list[EntityRecord], dropped: set[str]) -> EntityResolver:
        """A copy with entities added or changed and others removed (a graph snapshot
        carries its scope's resolver forward with this)."""
        twin = self.copy()
        for entity_id in dropped:
            twin.remove(entity_id)
        for entity in changed:
            twin.add(entity)
        return twin

    def add(self, entity: EntityRecord) -> None:
        """Make a (new or changed) entity findable."""
        old = self._by_id.get(entity.id)
        if old is not None:
            self.remove(entity.id)
        self._by_id = self._by_id.set(entity.id, entity)
        self._by_key = self._by_key.set((entity.type == "name", entity.key), entity)
        for alias in entity.aliases:
            self._by_alias = self._by_alias.set(
                alias, {**self._by_alias.get(alias, {}), entity.id: entity})
        if entity.type in PERSON_TYPES and entity.key != SELF_KEY:
            for word in entity.key.split():
                self._people_by_word = self._people_by_word.set(
                    word, self._people_by_word.get(word, frozenset()) | {entity.id})
        if _matchable(entity) and (old is None or old.embedding != entity.embedding):
            self._matrix = None  # rebuilt on the next embedding lookup

    def remove(self, entity_id: str) -> None:
        """Forget an entity (deleted, or about to be added again changed)."""
        old = self._by_id.get(entity_id)
        if old is None:
            return
        self._by_id = self._by_id.delete(entity_id)
        key = (old.type == "name", old.key)
        if self._by_key.get(key) is old:
            self._by_key = self._by_key.delete(key)
        for alias in old.aliases:
            holders = {i: e for i, e in self._by_alias.get(alias, {}).items() if i != entity_id}
            self._by_alias = (self._by_alias.set(alias, holders) if holders
                              else _without(self._by_alias, alias))
        if old.type in PERSON_TYPES and old.key != SELF_KEY:
            for word in old.key.split():
                rest = self._people_by_word.get(word, frozenset()) - {entity_id}
                self._people_by_word = (self._people_by_word.set(word, rest) if rest
                                        else _without(self._people_by_word, word))
        if _matchable(old):
            self._matrix = None

    def by_key(self, key: str) -> EntityRecord | None:
        """The (non-name) entity with exactly this key, e.g. the scope's own user."""
        return self._by_key.get((False, key))

    def lookup(self, surface: str, kind: str) -> EntityRecord | None:
        """Key, alias, or unique name-part match; None when unknown or ambiguous."""
        key = entity_key(surface)
        is_name = kind == "name"
        found = self._by_key.get((is_name, key))
        if found is not None or is_name:
            return found
        holders = [e for e in self._by_alias.get(key, {}).values() if e.type != "name"]
        if len(holders) == 1:
            return self._by_id[holders[0].id]
        if kind in PERSON_TYPES:
            return self._name_part(key)
        return None

    def _name_part(self, key: str) -> EntityRecord | None:
        # "Bob" <-> "Bob Smith" when exactly one person fits; "Bob Smith" vs "Bob Jones" never.
        words = set(key.split())
        if not words:
            return None
        candidates = frozenset().union(*(self._people_by_word.get(w, ()) for w in words))
        fits = [
            self._by_id[i] for i in candidates
            if words <= set(self._by_id[i].key.split()) or set(self._by_id[i].key.split()) <= words
        ]
        return fits[0] if len(fits) == 1 else None

    def by_embedding(self, vector: np.ndarray | None, kind: str,
                     surface: str) -> EntityRecord | None:
        """The most similar entity of a compatible type above the threshold, if any (never
        for people or names; for proper names only a containing or contained name)."""
        if vector is None or kind == "name" or kind in PERSON_TYPES:
            return None
        ids, matrix = self._vectors()
        if not ids:
            return None
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        proper = is_proper_name(surface)
        words = set(tokenize(surface))
        for j in np.argsort(-scores):
            if scores[j] < self._threshold:
                return None
            entity = self._by_id[ids[j]]
            if (proper or is_proper_name(entity.name)) and not _nested(words, entity.name):
                continue
            return entity
        return None

    def _vectors(self) -> tuple[list[str], np.ndarray]:
        if self._matrix is None:
            # People, names and the user never match by embedding: only the rest is kept,
            # so a scope that gains people (most adds) does not rebuild this.
            ids = sorted(i for i, e in self._by_id.items() if _matchable(e))
            matrix = (np.vstack([unpack_vector(self._by_id[i].embedding) for i in ids])
                      if ids else np.zeros((0, 1), np.float32))
            self._matrix = (ids, matrix)
        return self._matrix


def _without(mapping: Map, key: object) -> Map:
    return mapping.delete(key) if key in mapping else mapping


def _matchable(entity: EntityRecord) -> bool:
    """Whether `by_embedding` may return this entity."""
    return (entity.embedding is not None and entity.type not in PERSON_TYPES
            and entity.type != "name" and entity.key != SELF_KEY)


def is_proper_name(surface: str) -> bool:
    """Whether a mention is written as a proper name (a capitalised word)."""
    return any(word[:1].isupper() for word in surface.split())


def _nested(words: set[str], other: str) -> bool:
    theirs = set(tokenize(other))
    return bool(words and theirs) and (words <= theirs or theirs <= words)
