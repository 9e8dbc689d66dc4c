"""Entity resolution inside one scope (never across): normalised key, then aliases, then
a unique first-name/full-name match for people, then embedding similarity."""

from __future__ import annotations

import numpy as np

from hybridmem.records import SELF_KEY, EntityRecord, unpack_vector
from hybridmem.text import entity_key

PERSON_TYPES = {"person"}


class EntityResolver:
    """Finds the existing entity a mention names, precision first.

    Names of people ("name" entities, the values of `name` relations) resolve only by
    exact key, so a name never merges into the person who holds it.
    """

    def __init__(self, entities: list[EntityRecord], threshold: float) -> None:
        self._threshold = threshold
        self._entities: list[EntityRecord] = []
        self._by_key: dict[tuple[bool, str], EntityRecord] = {}
        self._by_alias: dict[str, list[EntityRecord]] = {}
        for entity in entities:
            self.add(entity)

    def add(self, entity: EntityRecord) -> None:
        """Make a (new or changed) entity findable."""
        self._entities = [e for e in self._entities if e.id != entity.id] + [entity]
        self._by_key[(entity.type == "name", entity.key)] = entity
        for alias in entity.aliases:
            holders = [e for e in self._by_alias.get(alias, []) if e.id != entity.id]
            self._by_alias[alias] = [*holders, entity]

    def lookup(self, surface: str, kind: str) -> EntityRecord | None:
        """Key, alias, or unique name-part match; None when unknown or ambiguous."""
        key = entity_key(surface)
        is_name = kind == "name"
        found = self._by_key.get((is_name, key))
        if found is not None or is_name:
            return found
        holders = [e for e in self._by_alias.get(key, []) if e.type != "name"]
        if len(holders) == 1:
            return holders[0]
        if kind in PERSON_TYPES:
            return self._name_part(key)
        return None

    def _name_part(self, key: str) -> EntityRecord | None:
        # "Bob" <-> "Bob Smith" when exactly one person fits; "Bob Smith" vs "Bob Jones" never.
        words = set(key.split())
        fits = [
            e for e in self._entities
            if e.type in PERSON_TYPES and e.key != SELF_KEY
            and (words <= set(e.key.split()) or set(e.key.split()) <= words)
        ]
        return fits[0] if len(fits) == 1 else None

    def by_embedding(self, vector: np.ndarray | None, kind: str) -> EntityRecord | None:
        """The most similar entity of a compatible type above the threshold, if one."""
        if vector is None or kind == "name":
            return None
        best, best_score = None, self._threshold
        for entity in self._entities:
            if entity.embedding is None or entity.type == "name" or entity.key == SELF_KEY:
                continue
            if (kind in PERSON_TYPES) != (entity.type in PERSON_TYPES):
                continue
            score = float(np.dot(unpack_vector(entity.embedding), vector))
            if score >= best_score:
                best, best_score = entity, score
        return best
