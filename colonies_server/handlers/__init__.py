"""RPC handlers, one module per area; importing this package registers them all."""

from __future__ import annotations

from . import (  # noqa: F401
    attributes,
    colonies,
    crons,
    executors,
    files,
    functions,
    graphs,
    logs,
    processes,
    server,
    users,
)

__all__: list[str] = []
