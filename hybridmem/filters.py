"""Metadata filters in mem0's grammar, parsed once into a small tree.

Grammar (mem0 1.0 "enhanced metadata filtering"):

    {"category": "work"}                          equality
    {"priority": {"gte": 3, "lt": 9}}             operators: eq ne gt gte lt lte in nin
                                                  contains icontains
    {"tag": "*"}                                  the key exists (any non-null value)
    {"AND": [f1, f2]}, {"OR": [...]}, {"NOT": [...]}   logic; sibling keys are ANDed

Semantics are SQL-like three-valued logic, the same as Milvus JSON filters: a comparison
with a missing key, a null, or an incomparable type is *unknown*; unknown is not a match,
and NOT(unknown) is still unknown. `vector/milvus.py` compiles the same tree to a Milvus
expression; `Filter.matches` evaluates it in Python, and the test suite checks they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

from hybridmem.errors import InvalidInputError
from hybridmem.scope import SCOPE_FIELDS

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
LOGIC = ("AND", "OR", "NOT")
MAX_KEY_CHARS = 256
MAX_DEPTH = 16


@dataclass(frozen=True)
class Condition:
    """`metadata[key] <op> value`; op "exists" has no value."""

    key: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class And:
    """All children match."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one child matches."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """The child is known not to match."""

    child: Filter


Filter = Union[Condition, And, Or, Not]  # noqa: UP007 - a runtime alias on 3.10


def parse_filters(raw: dict[str, Any] | None) -> Filter | None:
    """Parse a mem0-style filter dict (scope ids inside it are ignored here).

    Raises:
        InvalidInputError: an unknown operator, a value of the wrong type, a bad key.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"filters must be a dict, got {type(raw).__name__}")
    node = _parse_dict({k: v for k, v in raw.items() if k not in SCOPE_FIELDS}, depth=0)
    return node


def _parse_dict(raw: dict[str, Any], depth: int) -> Filter | None:
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"filters nest deeper than {MAX_DEPTH} levels")
    parts: list[Filter] = []
    for key, value in raw.items():
        if key in LOGIC:
            parts.append(_parse_logic(key, value, depth))
        elif key.lstrip("$").upper() in LOGIC and (key.startswith("$") or isinstance(value, list)):
            # {"or": [...]} / {"$and": [...]}: a logical operator misspelt, not a metadata key.
            raise InvalidInputError(
                f"logical operator {key!r} must be written {key.strip('$').upper()!r}"
            )
        else:
            parts.extend(_parse_field(key, value, depth))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logic(op: str, value: Any, depth: int) -> Filter:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, dict) for i in items):
        raise InvalidInputError(f"{op} takes a non-empty list of filter dicts")
    children = [c for c in (_parse_dict(i, depth + 1) for i in items) if c is not None]
    if not children:
        raise InvalidInputError(f"{op} holds only empty filters")
    if op == "NOT":
        inner = children[0] if len(children) == 1 else And(tuple(children))
        return Not(inner)
    return And(tuple(children)) if op == "AND" else Or(tuple(children))


def _parse_field(key: Any, value: Any, depth: int) -> list[Filter]:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise InvalidInputError(f"filter key must be a string of 1-{MAX_KEY_CHARS} characters")
    if any(ord(ch) < 32 for ch in key):
        raise InvalidInputError(f"filter key {key!r} contains a control character")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("filter key is not valid Unicode text") from None
    if value == "*":
        return [Condition(key, "exists")]
    if isinstance(value, dict):
        if not value:
            raise InvalidInputError(f"filter on {key!r} has no operator")
        out: list[Filter] = []
        for op, operand in value.items():
            if op not in COMPARISONS:
                raise InvalidInputError(
                    f"unknown filter operator {op!r} on {key!r}; "
                    f"supported: {', '.join(COMPARISONS)}"
                )
            out.append(Condition(key, op, _check_operand(key, op, operand)))
        return out
    return [Condition(key, "eq", _check_operand(key, "eq", value))]


def _check_operand(key: str, op: str, operand: Any) -> Any:
    if op in ("in", "nin"):
        if not isinstance(operand, (list, tuple)) or not operand:
            raise InvalidInputError(f"{op} on {key!r} takes a non-empty list")
        for item in operand:
            _check_scalar(key, op, item)
        return tuple(operand)
    _check_scalar(key, op, operand)
    if op in ("contains", "icontains") and not isinstance(operand, str):
        raise InvalidInputError(f"{op} on {key!r} takes a string")
    if op in ("gt", "gte", "lt", "lte") and isinstance(operand, bool):
        raise InvalidInputError(f"{op} on {key!r} takes a number or a string, not a bool")
    return operand


def _check_scalar(key: str, op: str, value: Any) -> None:
    if not isinstance(value, (str, int, float, bool)):
        raise InvalidInputError(
            f"{op} on {key!r} takes strings, numbers or bools, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{op} on {key!r} takes a finite number, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and not (
            -(2**63) <= value < 2**63):
        raise InvalidInputError(f"{op} on {key!r}: {value} is outside the signed 64-bit range")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"{op} on {key!r} takes valid Unicode text") from None
        if "\x00" in value:
            raise InvalidInputError(f"{op} on {key!r}: the value contains a NUL character")


# ----------------------------------------------------------------- evaluation


def matches(node: Filter | None, metadata: dict[str, Any] | None) -> bool:
    """Whether a memory's metadata matches the filter (unknown counts as no match)."""
    if node is None:
        return True
    return _eval(node, metadata or {}) is True


def _eval(node: Filter, md: dict[str, Any]) -> bool | None:
    if isinstance(node, Condition):
        return _compare(node, md)
    if isinstance(node, Not):
        inner = _eval(node.child, md)
        return None if inner is None else not inner
    results = [_eval(c, md) for c in node.children]
    if isinstance(node, And):
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _compare(cond: Condition, md: dict[str, Any]) -> bool | None:
    present = cond.key in md and md[cond.key] is not None
    if cond.op == "exists":
        return present
    if not present:
        return None
    actual = md[cond.key]
    op, want = cond.op, cond.value
    if op == "eq":
        return _equal(actual, want)
    if op == "ne":
        eq = _equal(actual, want)
        return None if eq is None else not eq
    if op == "in":
        return _any_equal(actual, want)
    if op == "nin":
        hit = _any_equal(actual, want)
        return None if hit is None else not hit
    if op in ("contains", "icontains"):
        fold = str.casefold if op == "icontains" else (lambda s: s)
        if isinstance(actual, str):
            return fold(want) in fold(actual)
        if isinstance(actual, list):
            return any(isinstance(a, str) and fold(a) == fold(want) for a in actual)
        return None
    return _order(actual, op, want)


def _equal(actual: Any, want: Any) -> bool | None:
    if isinstance(actual, (dict, list)):
        return None
    if isinstance(actual, str) != isinstance(want, str):
        return False
    return actual == want


def _any_equal(actual: Any, wants: tuple[Any, ...]) -> bool | None:
    results = [_equal(actual, w) for w in wants]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _order(actual: Any, op: str, want: Any) -> bool | None:
    numeric = isinstance(want, (int, float)) and not isinstance(want, bool)
    if numeric:
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return None
    elif not isinstance(actual, str):
        return None
    if op == "gt":
        return actual > want
    if op == "gte":
        return actual >= want
    if op == "lt":
        return actual < want
    return actual <= want


def pushdown(node: Filter | None) -> Filter | None:
    """The part of a filter Milvus can evaluate exactly; the rest is checked in Python.

    Returns a filter that matches a superset of `node` (None = no constraint). Conditions
    without an exact Milvus form (icontains; contains with LIKE wildcards) become "no
    constraint". `contains` and `ne`/`nin` differ from Python on values of other types
    (Milvus answers false where Python says unknown), which is safe only outside NOT, so a
    NOT above one of them is not pushed down either.
    """
    if node is None:
        return None
    if isinstance(node, Condition):
        exact = node.op != "icontains" and not (
            node.op == "contains" and any(ch in node.value for ch in "%_\\")
        )
        return node if exact else None
    if isinstance(node, Not):
        inner = pushdown(node.child)
        return node if inner == node.child and _negatable(node.child) else None
    children = [pushdown(c) for c in node.children]
    if isinstance(node, Or):
        return None if any(c is None for c in children) else Or(tuple(children))
    kept = tuple(c for c in children if c is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


def _negatable(node: Filter) -> bool:
    """Whether Milvus and Python agree on this subtree exactly, so NOT of it is safe."""
    if isinstance(node, Condition):
        return node.op in ("eq", "gt", "gte", "lt", "lte", "in", "exists")
    if isinstance(node, Not):
        return _negatable(node.child)
    return all(_negatable(c) for c in node.children)
