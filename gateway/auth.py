"""Optional API keys: `Authorization: Bearer <key>` checked in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

__all__ = ["ApiKeys"]

# Which routes need a key is decided in routes.py: health, metrics and the API description stay open.


class ApiKeys:
    """The accepted keys; an empty set means authentication is off."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in keys if k)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> str | None:
        """None when the header carries an accepted key (or auth is off), else the reason it does not."""
        if not self._keys:
            return None
        if not authorization:
            return "missing Authorization header (expected: Bearer <api key>)"
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "Authorization header must be: Bearer <api key>"
        given = token.strip().encode()
        ok = False
        for key in self._keys:  # no early exit: the time taken does not depend on which key matched
            ok |= hmac.compare_digest(given, key)
        return None if ok else "invalid API key"
