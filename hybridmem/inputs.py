"""Validation of what users pass to the public API: every bad input becomes a clear
`InvalidInputError` before anything is written."""

from __future__ import annotations

import json
import math
from typing import Any

from hybridmem.errors import InvalidInputError
from hybridmem.providers.extract.base import Message

ROLES = ("user", "assistant", "system", "tool", "human", "ai")
MAX_LIMIT = 10_000
# Milvus keeps a memory's text in a VARCHAR of at most 65,535 bytes and metadata in a JSON
# field of at most 64 KiB; both are refused here rather than cut or rejected by the engine.
MAX_TEXT_BYTES = 65_535
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 8
# Integers the stores keep (Milvus JSON and SQLite both hold signed 64-bit integers).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parse_messages(messages: Any, max_chars: int) -> list[Message]:
    """str, a role/content dict, or a list of those -> non-empty list of `Message`."""
    if isinstance(messages, (bytes, bytearray, memoryview)):
        raise InvalidInputError("messages must be text, got bytes: decode them first")
    if isinstance(messages, str):
        items: list[Any] = [{"role": "user", "content": messages}]
    elif isinstance(messages, dict):
        items = [messages]
    elif isinstance(messages, (list, tuple)):
        items = list(messages)
    else:
        raise InvalidInputError(
            f"messages must be a str, a dict or a list of dicts, got {type(messages).__name__}"
        )
    if not items:
        raise InvalidInputError("messages is empty")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, dict):
            raise InvalidInputError(f"message {i} must be a dict with role and content")
        role = item.get("role", "user")
        if role not in ROLES:
            raise InvalidInputError(f"message {i} has unknown role {role!r}; use one of {ROLES}")
        content = item.get("content")
        check_text(content, f"message {i} content", max_chars)
        name = item.get("name")
        out.append(Message(role={"human": "user", "ai": "assistant"}.get(role, role),
                           content=content, name=name if isinstance(name, str) else None))
    if all(not m.content.strip() for m in out):
        raise InvalidInputError("messages hold no text (empty or whitespace only)")
    return [m for m in out if m.content.strip()]


def check_text(text: Any, what: str, max_chars: int) -> str:
    """A str that is valid Unicode text, not too long."""
    if isinstance(text, (bytes, bytearray)):
        raise InvalidInputError(f"{what} must be text, got bytes: decode it first")
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > max_chars:
        raise InvalidInputError(
            f"{what} is {len(text)} characters, over the limit of {max_chars} "
            "(config key max_text_chars)"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode text ({exc.reason})") from None
    if "\x00" in text:
        raise InvalidInputError(f"{what} contains a NUL character")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise InvalidInputError(
            f"{what} is {size} bytes of UTF-8, over the limit of {MAX_TEXT_BYTES}; split it "
            "into several messages"
        )
    return text


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON-serialisable dict with string keys, at most 8 levels deep and 64 KiB."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a dict, got {type(metadata).__name__}")
    _check_json(metadata, "metadata", 0)
    size = len(json.dumps(metadata).encode("utf-8"))  # escaped, as Milvus measures it
    if size > MAX_METADATA_BYTES:
        raise InvalidInputError(f"metadata is {size} bytes, over {MAX_METADATA_BYTES}")
    return json.loads(json.dumps(metadata))


def _check_json(value: Any, where: str, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInputError(f"{where} nests deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where} has a non-string key {key!r}")
            check_text(key, f"{where} key", 256)
            _check_json(item, f"{where}[{key!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} is {value}, which JSON cannot hold")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidInputError(
                f"{where} is {value}, outside the signed 64-bit range the stores keep"
            )
    elif isinstance(value, str):
        check_text(value, where, MAX_METADATA_BYTES)
    elif value is not None and not isinstance(value, (bool, int)):
        raise InvalidInputError(
            f"{where} is a {type(value).__name__}, which is not JSON-serialisable"
        )


def check_limit(limit: Any) -> int:
    """An int from 1 to 10,000."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInputError(f"limit must be an int, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


def check_threshold(threshold: Any) -> float | None:
    """None, or a number from 0 to 1 (fused scores lie in that range)."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InvalidInputError(f"threshold must be a number, got {type(threshold).__name__}")
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise InvalidInputError(f"threshold must be between 0 and 1, got {threshold}")
    return float(threshold)


SIGNALS = ("vector", "bm25", "graph")


def check_signals(signals: Any) -> tuple[str, ...]:
    """None (all signals) or a non-empty subset of vector/bm25/graph."""
    if signals is None:
        return SIGNALS
    if isinstance(signals, str) or not isinstance(signals, (list, tuple, set, frozenset)):
        raise InvalidInputError("signals must be a list such as ['vector', 'bm25']")
    unknown = set(signals) - set(SIGNALS)
    if unknown or not signals:
        raise InvalidInputError(f"signals must be a non-empty subset of {SIGNALS}")
    return tuple(s for s in SIGNALS if s in signals)


def check_memory_id(memory_id: Any) -> str:
    """A memory id: a non-empty string of at most 64 characters."""
    if not isinstance(memory_id, str) or not memory_id.strip() or len(memory_id) > 64:
        raise InvalidInputError("memory_id must be a non-empty string of at most 64 characters")
    return memory_id


MAX_IDEMPOTENCY_KEY_CHARS = 200


def check_idempotency_key(key: Any) -> str | None:
    """An idempotency key: None, or 1-200 printable ASCII characters (a UUID fits)."""
    if key is None:
        return None
    if (not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS
            or not all("!" <= ch <= "~" for ch in key)):
        raise InvalidInputError(
            f"idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters "
            "without spaces (a UUID, say)")
    return key
