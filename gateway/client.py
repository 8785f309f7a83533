"""The one AsyncColonies client a gateway process keeps (one pooled, kept-alive HTTP connection set)."""

from __future__ import annotations

import inspect
from typing import Any

from .settings import Settings

__all__ = ["close_client", "make_client"]


def make_client(settings: Settings) -> Any:
    """An AsyncColonies bound to the gateway's user key, with the store bundles are downloaded
    from: S3, else the local-directory store (what `faas dev` runs without an S3 server)."""
    from sdk import AsyncColonies
    from sdk.config import S3Config
    from sdk.stores import LocalStore, S3Store, Store

    store: Store | None = None
    if settings.s3.configured:
        s3 = settings.s3
        store = S3Store(S3Config(endpoint=s3.endpoint, accesskey=s3.accesskey, secretkey=s3.secretkey,
                                 bucket=s3.bucket, tls=s3.tls, skipverify=s3.skipverify, region=s3.region))
    elif settings.local_store:
        store = LocalStore(settings.local_store)
    return AsyncColonies(host=settings.server_host, port=settings.server_port, tls=settings.server_tls,
                         prvkey=settings.prvkey, store=store, timeout=settings.rpc_timeout,
                         max_connections=settings.rpc_connections, unix_socket=settings.server_socket)


async def close_client(client: Any) -> None:
    """Close a client made by make_client (or handed in by a test)."""
    for name in ("aclose", "close"):
        close = getattr(client, name, None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result
            return
