"""Deployed functions: /faas metadata and bundles from CFS, cached and re-checked against the latest revision."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sdk.errors import ColoniesError, NotFoundError

from .errors import FunctionNotFound, GatewayError, UpstreamError, from_colonies
from .signature import FunctionInfo, parse_function

__all__ = ["FunctionCatalog"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    info: FunctionInfo
    fileid: str
    checksum: str
    checked: float


class FunctionCatalog:
    """Function metadata by name, without a server round trip per request.

    An entry is trusted for `ttl` seconds; after that one cheap `getfilemsg` tells whether a new
    revision was deployed (new fileid/checksum), and only then is the bundle downloaded again.
    Callers force the check early with `refresh=True` (an unknown parameter or function may mean
    the function was just redeployed). Concurrent lookups of one name share one fetch.
    """

    def __init__(self, client: Any, colony: str, label: str = "/faas", ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.colony = colony
        self.label = label
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[_Entry]] = {}
        self.fetches = 0  # bundle downloads, for tests and curiosity

    def cached(self, name: str) -> FunctionInfo | None:
        entry = self._entries.get(name)
        return entry.info if entry else None

    def revision(self, name: str) -> tuple[str, str] | None:
        """(fileid, checksum) of the revision the cached info was read from, while it is trusted."""
        entry = self._entries.get(name)
        if entry is None or self._clock() - entry.checked >= self.ttl:
            return None
        return entry.fileid, entry.checksum

    def is_fresh(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and self._clock() - entry.checked < self.ttl

    async def get(self, name: str, refresh: bool = False) -> FunctionInfo:
        """The function's info; raises FunctionNotFound, or a GatewayError when the server fails."""
        entry = self._entries.get(name)
        if entry is not None and not refresh and self._clock() - entry.checked < self.ttl:
            return entry.info
        fut = self._inflight.get(name)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._inflight[name] = fut
            try:
                result = await self._revalidate(name, entry)
            except BaseException as e:
                # Others waiting on this lookup get its error, never this caller's cancellation.
                fut.set_exception(e if isinstance(e, GatewayError) else UpstreamError(
                    f"looking up function {name!r} was interrupted; retry"))
                fut.exception()  # mark retrieved: nobody else may be waiting
                raise
            else:
                fut.set_result(result)
            finally:
                del self._inflight[name]
            return result.info
        return (await asyncio.shield(fut)).info

    async def _revalidate(self, name: str, entry: _Entry | None) -> _Entry:
        files = await self._call(self.client.get_file(self.colony, self.label, name, latest=True), name)
        if not files:
            self._entries.pop(name, None)
            raise FunctionNotFound(name)
        latest = max(files, key=lambda f: f.sequencenr)
        now = self._clock()
        if entry is not None and entry.fileid == latest.fileid and entry.checksum == latest.checksum:
            fresh = _Entry(entry.info, entry.fileid, entry.checksum, now)
        else:
            data = await self._call(
                self.client.download_bytes(self.colony, self.label, fileid=latest.fileid), name)
            self.fetches += 1
            info = parse_function(name, data)
            fresh = _Entry(info, latest.fileid, latest.checksum, now)
            log.info("function %s revision %s loaded (signature %s)", name, latest.sequencenr,
                     info.signature_text or "unknown")
        self._entries[name] = fresh
        return fresh

    async def _call(self, coro: Awaitable[Any], name: str) -> Any:
        try:
            return await coro
        except NotFoundError:
            self._entries.pop(name, None)
            raise FunctionNotFound(name) from None
        except ColoniesError as e:
            raise from_colonies(e, f"looking up function {name!r}") from None

    async def names(self) -> list[str]:
        """Names of the deployed functions (one `getfilesmsg`)."""
        try:
            files = await self.client.get_files(self.colony, self.label)
        except NotFoundError:
            return []
        except ColoniesError as e:
            raise from_colonies(e, "listing functions") from None
        names = sorted({f.name for f in files or [] if f.name})
        for gone in set(self._entries) - set(names):
            self._entries.pop(gone, None)
        return names

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every deployed revision of the function, newest first."""
        files = await self._call(self.client.get_file(self.colony, self.label, name, latest=False), name)
        if not files:
            raise FunctionNotFound(name)
        ordered = sorted(files, key=lambda f: f.sequencenr, reverse=True)
        # `revision` counts this name's deploys (1 = first); sequencenr is the server's own counter.
        return [
            {"revision": len(ordered) - i, "sequencenr": f.sequencenr, "fileid": f.fileid, "checksum": f.checksum,
             "size": f.size, "added": _time(f.added)}
            for i, f in enumerate(ordered)
        ]


def _time(value: Any) -> str | None:
    if value is None or getattr(value, "year", 2) == 1:
        return None
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else str(value)
