"""Bundles cached on disk by checksum (verified on every read) and in memory once parsed.

The CFS checksum of a file is the SHA-256 of its bytes, the same digest `bundle.checksum` computes,
so one lookup of the newest version's metadata tells whether its bytes are already here; a new
deploy has a new checksum and is fetched once.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .bundle import Bundle, checksum, parse_bundle

__all__ = ["BundleCache", "ChecksumMismatch"]

log = logging.getLogger(__name__)


class ChecksumMismatch(ValueError):
    """Fetched bytes do not hash to the checksum CFS recorded for them."""


class BundleCache:
    """Thread-safe; `directory` is private to the executor (workers never read it)."""

    def __init__(self, directory: str | os.PathLike[str], max_parsed: int = 256) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._parsed: dict[str, Bundle] = {}
        self._max = max_parsed
        self._lock = threading.Lock()
        self.fetches = 0

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex checksum: {digest!r}")
        return self.directory / digest

    def get(self, name: str, digest: str) -> Bundle | None:
        """The bundle with this checksum, from memory or verified disk; None if not cached."""
        with self._lock:
            hit = self._parsed.get(digest)
        if hit is not None and hit.name == name:
            return hit
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if checksum(data) != digest:
            log.warning("cached bundle %s is corrupt; dropping it", path)
            path.unlink(missing_ok=True)
            return None
        return self._remember(parse_bundle(name, data))

    def put(self, name: str, data: bytes, expected: str | None = None) -> Bundle:
        """Verify (`expected` = CFS checksum), parse, then store; raises ChecksumMismatch or BundleError."""
        digest = checksum(data)
        if expected is not None and digest != expected:
            raise ChecksumMismatch(f"function {name!r}: downloaded bytes hash to {digest}, CFS says {expected}")
        bundle = parse_bundle(name, data)
        path = self._path(digest)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return self._remember(bundle)

    def get_or_fetch(self, name: str, digest: str, fetch: Callable[[], bytes]) -> Bundle:
        """The cached bundle, or `fetch()` its bytes once, verify and cache them."""
        cached = self.get(name, digest)
        if cached is not None:
            return cached
        self.fetches += 1
        return self.put(name, fetch(), expected=digest)

    def _remember(self, bundle: Bundle) -> Bundle:
        with self._lock:
            if len(self._parsed) >= self._max:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[bundle.checksum] = bundle
        return bundle
