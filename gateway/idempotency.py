"""Idempotency keys: a retried request with the same key returns the first invocation, not a new one."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["IdempotencyConflict", "IdempotencyStore", "Reservation", "fingerprint"]

MAX_KEY_LENGTH = 255


class IdempotencyConflict(ValueError):
    """The key was already used for this function with different arguments."""


@dataclass(frozen=True)
class Reservation:
    """The invocation a key stands for; processid is None while the first request is still submitting."""

    function: str
    key: str
    fingerprint: str
    processid: str | None
    expires: float


def fingerprint(args: list[Any], kwargs: dict[str, Any]) -> str:
    """A stable hash of the call's arguments (to refuse reusing a key for a different call)."""
    text = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyStore:
    """In-memory (function, key) → process id, each entry kept `ttl` seconds (24 h by default).

    One store per gateway process: behind several workers or replicas a retry must reach the same
    process to be recognised (docs/GATEWAY.md). Bounded: the oldest entries go first when full.
    """

    def __init__(self, ttl: float = 24 * 3600.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], Reservation] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def get(self, function: str, key: str) -> Reservation | None:
        self._expire()
        return self._entries.get((function, key))

    def reserve(self, function: str, key: str, fp: str) -> Reservation | None:
        """Claim the key for a new invocation; returns the existing reservation if there is one.

        Raises IdempotencyConflict when the existing one was made with other arguments.
        """
        existing = self.get(function, key)
        if existing is not None:
            if existing.fingerprint != fp:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was already used for {function} with different arguments")
            return existing
        self._entries[(function, key)] = Reservation(function, key, fp, None, self._clock() + self.ttl)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        return None

    def complete(self, function: str, key: str, processid: str) -> None:
        """Record the process the reserved key now stands for."""
        r = self._entries.get((function, key))
        if r is not None:
            self._entries[(function, key)] = Reservation(function, key, r.fingerprint, processid, r.expires)

    def release(self, function: str, key: str) -> None:
        """Forget a reservation whose submission failed, so a retry can submit."""
        r = self._entries.get((function, key))
        if r is not None and r.processid is None:
            del self._entries[(function, key)]

    def _expire(self) -> None:
        now = self._clock()
        # Insertion order equals expiry order (one ttl for all), so stop at the first live entry.
        while self._entries:
            first = next(iter(self._entries.values()))
            if first.expires > now:
                break
            self._entries.popitem(last=False)
