"""Server settings: one frozen object built at the entrypoint; nothing below it reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEV_COLONY_NAME", "DEV_COLONY_PRVKEY", "DEV_EXECUTOR_NAME", "DEV_EXECUTOR_TYPE", "DEV_PRVKEY",
           "DEV_SERVER_PRVKEY", "DEV_USER_NAME", "Settings"]

# Standard ColonyOS dev identities (protocol §2.2); only used by --dev.
DEV_SERVER_PRVKEY = "fcc79953d8a751bf41db661592dc34d30004b1a651ffa0725b03ac227641499d"
DEV_COLONY_PRVKEY = "ba949fa134981372d6da62b6a56f336ab4d843b22c02a4257dcf7d0d73097514"
DEV_PRVKEY = "ddf7f7791208083b6a9ed975a72684f6406a269cfa36f1b1c32045c0a71fff05"
DEV_COLONY_NAME = "dev"
DEV_USER_NAME = "myuser"
DEV_EXECUTOR_NAME = "myexecutor"
DEV_EXECUTOR_TYPE = "cli"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs; every timeout and limit has a finite default."""

    host: str = "127.0.0.1"
    port: int = 50080
    db: str = "sqlite:///colonies.db"
    dev: bool = False
    # Server-owner id; "" = keep the one stored in the database (or the dev id with --dev).
    server_id: str = ""
    allow_executor_reregister: bool = False
    body_limit: int = 16 * 1024 * 1024
    max_string: int = 1024 * 1024  # longest accepted name/label/log message (bytes)
    max_list_count: int = 100  # getprocessesmsg & co (upstream limit)
    max_log_count: int = 500
    max_assign_timeout: float = 3600.0
    max_subscribe_timeout: float = 24 * 3600.0
    # Background timer (maxwaittime, maxexectime, leases) and cron checker periods, seconds.
    timer_period: float = 1.0
    cron_period: float = 1.0
    # Lease extension: bounds for the lease an executor may ask for in executorheartbeatmsg.
    lease_min: float = 0.1
    lease_max: float = 3600.0
    # SQLite WAL sync mode. NORMAL: an acknowledged write survives kill -9 of the server (it is in the
    # OS page cache once COMMIT returns) but not a power loss; FULL: also power loss, at one fsync per
    # group commit (~4 ms on these VMs). See docs/SERVER.md.
    sqlite_synchronous: str = "NORMAL"
    # Connection sessions (colonies_server.sessions): a loopback client may bind a connection to its
    # identity once instead of signing every message on it.
    sessions: bool = True
    # Also listen on this Unix socket ("" = TCP only): clients on the same host (a gateway, an
    # executor) reach the server without TCP's loopback path (docs/SERVER.md, "A Unix socket for clients on this host").
    unix_socket: str = ""
    log_level: str = "info"
    build_version: str = "colonyfaas-0.1.0"
    build_time: str = ""
