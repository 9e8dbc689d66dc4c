"""Scopes: the user_id / agent_id / run_id walls around every read and write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hybridmem.errors import ScopeError

MAX_SCOPE_ID_CHARS = 512
SCOPE_FIELDS = ("user_id", "agent_id", "run_id")


@dataclass(frozen=True)
class Scope:
    """A set of scope ids; at least one is given.

    A write belongs to exactly the ids given. A read with some ids sees every record whose
    ids equal those (ids not given are not constrained): `user_id="a"` sees all of user a's
    runs, `user_id="a", run_id="r"` only run r. No id is ever defaulted.
    """

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    @classmethod
    def of(
        cls,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        *,
        filters: dict[str, Any] | None = None,
    ) -> Scope:
        """Validate and build a scope; mem0 also accepts the ids inside `filters`.

        Raises:
            ScopeError: no id given, an id that is not a non-empty string, or an id over
                512 characters.
        """
        values = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        if filters:
            for name in SCOPE_FIELDS:
                if name in filters:
                    if values[name] is not None and values[name] != filters[name]:
                        raise ScopeError(f"{name} given twice with different values")
                    values[name] = filters[name]
        for name, value in values.items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise ScopeError(f"{name} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise ScopeError(f"{name} must not be empty or blank")
            if len(value) > MAX_SCOPE_ID_CHARS:
                raise ScopeError(f"{name} is longer than {MAX_SCOPE_ID_CHARS} characters")
            if "\x00" in value:
                raise ScopeError(f"{name} must not contain a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ScopeError(f"{name} is not valid Unicode text (a lone surrogate?)") \
                    from None
        scope = cls(**values)
        if not scope.ids():
            raise ScopeError(
                "one of user_id, agent_id or run_id is required (hybridmem never defaults "
                "to a shared scope)"
            )
        return scope

    @classmethod
    def from_row(cls, row: Any) -> Scope:
        """The scope of a stored row or record (its three id fields, "" = not set)."""
        get = row.get if isinstance(row, dict) else lambda k: getattr(row, k, None)
        return cls(**{k: get(k) or None for k in SCOPE_FIELDS})

    def ids(self) -> dict[str, str]:
        """The given ids only."""
        return {k: v for k, v in self.as_row().items() if v}

    def as_row(self) -> dict[str, str]:
        """All three ids, "" where not given (how the stores keep them)."""
        return {
            "user_id": self.user_id or "",
            "agent_id": self.agent_id or "",
            "run_id": self.run_id or "",
        }

    def contains(self, row: dict[str, Any]) -> bool:
        """Whether a stored row (with the three id fields) lies inside this read scope."""
        return all((row.get(k) or "") == v for k, v in self.ids().items())
