"""Who is calling, and in which scope they may act: the one place the key-to-scope rule
lives (REST routes and MCP tools both ask `Principal.scope_ids`).

The rule: a key bound to a user (or an agent) acts only in that scope. Its bound ids may
be left out (they are implied) or repeated; any other value for them, in the arguments or
anywhere in `filters`, is refused with `PermissionDeniedError`. The other ids narrow the
scope further (a user key may name a run_id). An admin key, or a server started with
`--no-auth` on loopback, names any scope.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridmem.errors import (
    AuthenticationError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from hybridmem.scope import SCOPE_FIELDS
from hybridmem.stores.keys import KeyInfo, KeyRing


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a key's id and what it is bound to."""

    key_id: str | None
    admin: bool
    bound: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_key(cls, key: KeyInfo) -> Principal:
        """The principal a verified key stands for."""
        return cls(key_id=key.id, admin=key.admin, bound=dict(key.bound))

    @classmethod
    def owner(cls, **bound: str) -> Principal:
        """The local owner (no key: `--no-auth` on loopback, or `hybridmem mcp` on its own
        store), optionally pinned to a scope."""
        return cls(key_id=None, admin=not bound, bound={k: v for k, v in bound.items() if v})

    def scope_ids(self, user_id: Any = None, agent_id: Any = None, run_id: Any = None,
                  filters: Any = None) -> dict[str, Any]:
        """The scope ids a call acts in: the ones given, with this key's bound ids filled
        in. Values are checked as scope ids later, by `Memory` (`ScopeError`).

        Raises:
            PermissionDeniedError: an id (or a filter on one) names another scope than
                the key is bound to.
        """
        given = {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id),
                                   ("run_id", run_id)) if v is not None}
        for name, value in self.bound.items():
            if name in given and given[name] != value:
                raise self._denied(name, given[name])
            given[name] = value
        if filters is not None:
            for name, value in _scope_terms(filters):
                if name in self.bound and value != self.bound[name]:
                    raise self._denied(name, value)
        return given

    def sees(self, row: Mapping[str, Any]) -> bool:
        """Whether a stored row (a memory, a history row, a pending operation) lies in
        the scope this key is bound to."""
        return all(row.get(name) == value for name, value in self.bound.items())

    def require_admin(self, what: str) -> None:
        """Refuse `what` unless the caller may act on the whole store.

        Raises:
            PermissionDeniedError: a key bound to a scope.
        """
        if not self.admin:
            raise PermissionDeniedError(f"{what} needs an admin key (`hybridmem keys create "
                                        "--admin`); this key is bound to "
                                        f"{self._binding()}")

    def _binding(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.bound.items())

    def _denied(self, name: str, value: Any) -> PermissionDeniedError:
        shown = repr(value) if isinstance(value, str) else "a filter"
        return PermissionDeniedError(
            f"this key is bound to {self._binding()} and cannot act in {name}={shown}; "
            f"leave {name} out (it is implied) or use an admin key")


def _scope_terms(filters: Any, depth: int = 0) -> list[tuple[str, Any]]:
    """Every (scope field, value) a mem0 filter mentions, at any depth (AND/OR/NOT
    lists included), so a nested term cannot slip another scope past the rule."""
    if depth > 32:
        return []
    found: list[tuple[str, Any]] = []
    if isinstance(filters, Mapping):
        for key, value in filters.items():
            if key in SCOPE_FIELDS:
                found.append((key, value))
            else:
                found += _scope_terms(value, depth + 1)
    elif isinstance(filters, list | tuple):
        for item in filters:
            found += _scope_terms(item, depth + 1)
    return found


class FailedAttempts:
    """Failed keys per client address in a sliding window; past `limit`, the address is
    refused for the rest of the window (its remembered addresses are bounded)."""

    def __init__(self, limit: int = 10, window: float = 60.0, addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._addresses = addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str) -> None:
        """Raise `TooManyAttemptsError` while `address` is over the limit."""
        times = self._recent(address)
        if times is not None and len(times) >= self.limit:
            wait = max(1.0, self.window - (time.monotonic() - times[0]))
            raise TooManyAttemptsError(
                f"too many failed keys from {address}; retry in {wait:.0f} s",
                retry_after=round(wait))

    def failed(self, address: str) -> None:
        """Count one failed key from `address`."""
        times = self._recent(address)
        if times is None:
            times = self._seen[address] = deque(maxlen=self.limit)
            while len(self._seen) > self._addresses:
                self._seen.popitem(last=False)
        times.append(time.monotonic())

    def _recent(self, address: str) -> deque[float] | None:
        times = self._seen.get(address)
        if times is None:
            return None
        horizon = time.monotonic() - self.window
        while times and times[0] < horizon:
            times.popleft()
        self._seen.move_to_end(address)
        return times


class Access:
    """Turns a request's headers into a `Principal` (or refuses them)."""

    def __init__(self, keys: KeyRing | None, attempts: FailedAttempts | None = None) -> None:
        """`keys=None` serves without keys (`--no-auth`): every caller is the owner."""
        self.keys = keys
        self.attempts = attempts or FailedAttempts()

    @property
    def open(self) -> bool:
        """Whether requests need no key."""
        return self.keys is None

    def authenticate(self, headers: Mapping[str, str], address: str) -> Principal:
        """The principal of a request, from `Authorization: Bearer KEY` (or `Token KEY`,
        as mem0's client sends) or mem0's `X-API-Key: KEY`.

        Raises:
            AuthenticationError: no key, or one that is unknown or revoked.
            TooManyAttemptsError: this address sent too many bad keys lately.
        """
        if self.keys is None:
            return Principal.owner()
        self.attempts.check(address)
        key = presented_key(headers)
        if key is None:
            raise AuthenticationError(
                "this server needs a key: send `Authorization: Bearer KEY` or `X-API-Key: "
                "KEY` (`hybridmem keys create --user U` makes one)")
        found = self.keys.verify(key)
        if found is None:
            self.attempts.failed(address)
            raise AuthenticationError("the key is unknown or revoked")
        return Principal.of_key(found)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, if any."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None
