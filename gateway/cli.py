"""`faas gateway start`: the gateway's entrypoint, the only place that reads the environment."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from sdk.longrun import LOG_LEVELS, configure_logging, quiet_gc

from .settings import ConfigError, Settings

__all__ = ["app_from_env", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faas gateway", description="the colonyfaas HTTP gateway")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start = sub.add_parser("start", help="serve the gateway (FastAPI on uvicorn)")
    start.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    start.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    start.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    start.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    return parser


def app_from_env():  # type: ignore[no-untyped-def]  # uvicorn factory for --workers > 1
    """The app, configured from this process's environment (each uvicorn worker calls it once)."""
    from .app import create_app

    return create_app(Settings.from_env(os.environ))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as e:
        print(f"faas gateway: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("faas gateway: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from .app import create_app
        from .serving import GatewayHttpProtocol
    except ImportError as e:
        print(f"faas gateway: {e.name or e} is missing; pip install 'colonyfaas[gateway]'", file=sys.stderr)
        return 2
    configure_logging(args.log_level)
    print(f"faas gateway: http://{args.host}:{args.port}  (server {settings.server_url}, colony "
          f"{settings.colony}, auth {'on' if settings.api_keys else 'off'})", file=sys.stderr)
    quiet_gc()
    served = {"host": args.host, "port": args.port, "log_level": args.log_level, "access_log": False,
              "http": GatewayHttpProtocol, "timeout_keep_alive": max(1, math.ceil(settings.keepalive))}
    if args.workers > 1:
        uvicorn.run("gateway.cli:app_from_env", factory=True, workers=args.workers, **served)
    else:
        uvicorn.run(create_app(settings), **served)
    return 0
