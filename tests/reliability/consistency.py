"""Checks that the three stores agree with each other and with what was acknowledged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hybridmem import Memory
from hybridmem.providers.extract import Message, RulesExtractor
from hybridmem.scope import Scope


@dataclass
class Acks:
    """What the worker acknowledged, and the one call it may have died in."""

    texts: dict[str, str] = field(default_factory=dict)  # id -> latest acknowledged text
    users: dict[str, str] = field(default_factory=dict)  # id -> user
    deleted: set[str] = field(default_factory=set)
    in_flight: dict = field(default_factory=dict)  # announced, never acknowledged

    def may_be_gone(self, memory_id: str) -> bool:
        """Whether the unacknowledged last call could have removed this memory."""
        op = self.in_flight.get("op")
        return (op == "delete" and self.in_flight["id"] == memory_id) or (
            op == "delete_all" and self.users.get(memory_id) == self.in_flight["user"])

    def may_read(self, memory_id: str, text: str) -> bool:
        """Whether the unacknowledged last call could have set this text."""
        return (self.in_flight.get("op") == "update" and self.in_flight["id"] == memory_id
                and self.in_flight["text"] == text)


def acknowledged(ack_path: Path) -> Acks:
    """Replay the worker's log."""
    acks = Acks()
    if not ack_path.exists():
        return acks
    lines = [json.loads(line) for line in ack_path.read_text().splitlines()]
    if lines and lines[-1].get("intent"):
        acks.in_flight = lines[-1]
    for ack in lines:
        if ack.get("intent"):
            continue
        if ack["op"] == "add":
            for item in ack["results"]:
                if item["id"] not in acks.texts:  # a NONE keeps the first text
                    acks.texts[item["id"]] = item["memory"]
                    acks.users[item["id"]] = ack["user"]
                acks.deleted.discard(item["id"])
        elif ack["op"] == "update":
            acks.texts[ack["id"]] = ack["text"]
        elif ack["op"] == "delete":
            acks.deleted.add(ack["id"])
            acks.texts.pop(ack["id"], None)
        else:
            gone = {i for i, u in acks.users.items() if u == ack["user"]}
            acks.deleted |= gone
            for i in gone:
                acks.texts.pop(i, None)
    return acks


def problems(memory: Memory, ack_path: Path, users: tuple[str, ...]) -> list[str]:
    """Every disagreement found (empty when the stores are consistent)."""
    out: list[str] = []
    if memory.pending():
        out.append(f"journal still pending after recovery: {memory.pending()}")
    acks = acknowledged(ack_path)
    catalog = {}
    edges = []
    entities = []
    for user in users:
        scope = Scope.of(user)
        for record in memory.engines.catalog.list(scope, include_superseded=True):
            catalog[record.id] = record
        edges += memory.engines.graph.edges(scope, include_invalid=True)
        entities += memory.engines.graph.entities(scope)
    for memory_id, text in acks.texts.items():
        record = catalog.get(memory_id)
        if record is None:
            if not acks.may_be_gone(memory_id):
                out.append(f"acknowledged memory {memory_id} is missing")
        elif record.text != text and not acks.may_read(memory_id, record.text):
            out.append(f"memory {memory_id} has {record.text!r}, acknowledged {text!r}")
    for memory_id in acks.deleted & set(catalog):
        out.append(f"deleted memory {memory_id} is back")
    milvus_ids = memory.engines.vectors.all_ids()
    check = memory.check()
    if not check["clean"]:
        out.append(f"check() found divergences: {check['found']} {check['notes']}")
    if set(catalog) != milvus_ids:
        out.append(f"catalog and Milvus differ: only catalog {set(catalog) - milvus_ids}, "
                   f"only Milvus {milvus_ids - set(catalog)}")
    supported: set[str] = set()
    for edge in edges:
        missing = set(edge.memory_ids) - set(catalog)
        if missing or not edge.memory_ids:
            out.append(f"edge {edge.id} ({edge.relation}) points at missing memories {missing}")
        supported |= set(edge.memory_ids)
    touched = {e.source_id for e in edges} | {e.target_id for e in edges}
    for entity in entities:
        if entity.id not in touched:
            out.append(f"entity {entity.name!r} has no edge")
    rules = RulesExtractor()
    for record in catalog.values():
        history = [h["event"] for h in memory.history(record.id)]
        if not history or history[0] != "ADD":
            out.append(f"memory {record.id} has no ADD history row: {history}")
        if record.inferred and record.superseded_at is None:
            found = rules.extract([Message("user", record.text)]).relations
            if any(not r.negated and r.source != r.target for r in found) and (
                    record.id not in supported):
                out.append(f"memory {record.id} {record.text!r} lost its edges")
    if memory.stats()["vectors"] != memory.stats()["memories"]:
        out.append(f"counts differ: {memory.stats()}")
    return out
