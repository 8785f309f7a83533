"""`faas server start` / `python -m colonies_server start`: the only place that reads the environment."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

from .config import Settings
from .crypto import SignatureError, id_from_prvkey

__all__ = ["main", "settings_from"]

log = logging.getLogger(__name__)
_TRUE = ("1", "true", "yes", "on")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="faas server", description="Colonies-protocol server (colonyfaas)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="run the server in the foreground")
    s.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="listen port (default $COLONIES_SERVER_PORT or 50080)")
    s.add_argument("--db", default=None, help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
                   "(default $COLONIES_DB or sqlite:///colonies.db; password from $PGPASSWORD)")
    s.add_argument("--dev", action="store_true", help="create the dev server id, colony 'dev', user and executor")
    s.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    s.add_argument("--no-sessions", action="store_true",
                   help="refuse connection sessions: every message must be signed, also from this host "
                        "(default: loopback clients may bind a connection once; $COLONIES_SERVER_SESSIONS=false)")
    s.add_argument("--unix-socket", default=None, metavar="PATH",
                   help="also listen on this Unix socket, for clients on this host that set "
                        "COLONIES_SERVER_SOCKET to it (default $COLONIES_SERVER_SOCKET; none)")
    return p


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Arguments win over environment variables, which win over Settings defaults."""
    kw: dict[str, Any] = {}
    server_id = env.get("COLONIES_SERVER_ID", "")
    if not server_id and env.get("COLONIES_SERVER_PRVKEY"):
        server_id = id_from_prvkey(env["COLONIES_SERVER_PRVKEY"])
    if server_id:
        kw["server_id"] = server_id
    port = args.port or env.get("COLONIES_SERVER_PORT") or env.get("COLONIES_SERVER_HTTP_PORT")
    if port:
        kw["port"] = int(port)
    if args.host or env.get("COLONIES_SERVER_HTTP_HOST"):
        kw["host"] = args.host or env["COLONIES_SERVER_HTTP_HOST"]
    if args.db or env.get("COLONIES_DB"):
        kw["db"] = args.db or env["COLONIES_DB"]
    if env.get("COLONIES_ALLOW_EXECUTOR_REREGISTER", "").lower() in _TRUE:
        kw["allow_executor_reregister"] = True
    if env.get("COLONIES_CRON_CHECKER_PERIOD"):
        kw["cron_period"] = int(env["COLONIES_CRON_CHECKER_PERIOD"]) / 1000
    if env.get("COLONIES_SQLITE_SYNCHRONOUS"):
        kw["sqlite_synchronous"] = env["COLONIES_SQLITE_SYNCHRONOUS"]
    if args.no_sessions or env.get("COLONIES_SERVER_SESSIONS", "true").lower() not in _TRUE:
        kw["sessions"] = False
    unix_socket = args.unix_socket or env.get("COLONIES_SERVER_SOCKET", "").strip()
    if unix_socket:
        kw["unix_socket"] = unix_socket
    level = args.log_level or ("debug" if env.get("COLONIES_VERBOSE", "").lower() in _TRUE else None)
    if level:
        kw["log_level"] = level
    return Settings(dev=args.dev, **kw)


def quiet_gc() -> None:
    """A long-running service: keep the cyclic collector out of the request path.

    Start-up objects (modules, the app, caches) are never garbage, and every request makes many
    short-lived dicts that reference counting frees; with the default threshold the collector
    still ran every ~700 allocations, scanning everything each time (~5 % of the server's CPU
    under load). Start-up objects are frozen out of its sight and it runs 20x less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(14_000, 20, 20)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from(args, os.environ)
    except (ValueError, SignatureError) as e:
        print(f"faas server: invalid configuration: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    if not settings.db.startswith(("sqlite:///", "postgresql://", "postgres://")):
        print(f"faas server: unsupported database {settings.db!r} (sqlite:///PATH or postgresql://USER@HOST:PORT/DB;"
              " a PostgreSQL password comes from PGPASSWORD)", file=sys.stderr)
        return 2
    import uvicorn

    from .app import create_app
    from .transport import listen_sockets, unlink_unix_socket, uvicorn_config

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                quiet_gc()
                also = f" and unix:{settings.unix_socket}" if settings.unix_socket else ""
                print(f"colonies server listening on http://{settings.host}:{settings.port}{also} (db {settings.db})",
                      flush=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets=sockets)
            # Here, not after run(): uvicorn re-raises the SIGTERM it handled once serve() is done.
            for sock in sockets or ():
                sock.close()  # uvloop's servers had their own copies: ours would still accept into the backlog
            if settings.unix_socket:
                unlink_unix_socket(settings.unix_socket)

    config = uvicorn_config(create_app(settings), settings)
    try:
        sockets = listen_sockets(config, settings)
    except OSError as e:
        print(f"faas server: {e}", file=sys.stderr)
        return 1
    server = _Server(config)
    server.run(sockets=sockets)  # uvicorn turns SIGINT/SIGTERM into a clean shutdown (lifespan closes the store)
    return 0 if server.started else 1
