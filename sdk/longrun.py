"""Settings for long-running processes built on the SDK (the gateway, the executor)."""

from __future__ import annotations

import gc
import logging

__all__ = ["LOG_LEVELS", "configure_logging", "quiet_gc"]

LOG_LEVELS = ("debug", "info", "warning", "error")
"""What the CLIs' --log-level accepts (configure_logging takes any level name logging knows)."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log a line per HTTP request at INFO: the executor's heartbeat alone made one every
# few seconds, burying the lines about calls.
_CHATTY = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    """Log to stderr at `level` (a name such as "info"); the HTTP client's per-request lines only
    at DEBUG, where they help."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    logging.basicConfig(level=numeric, format=LOG_FORMAT)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)


def quiet_gc() -> None:
    """Keep the cyclic collector off the request path of a long-running service.

    Start-up objects (modules, the app, caches) are never garbage, and every request makes many
    short-lived dicts that reference counting frees; with the default threshold the collector
    still ran every ~700 allocations, scanning everything each time (~5 % of a process's CPU under
    load). Start-up objects are frozen out of its sight and it runs 20x less often. (The server
    has the same function in colonies_server.cli: it imports nothing of the SDK.)
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(14_000, 20, 20)
