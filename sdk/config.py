"""Client configuration from the Colonies ecosystem's env names (COLONIES_*, AWS_S3_*), read once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .envfile import load_envfile

__all__ = [
    "Config",
    "DEFAULT_PORT",
    "S3Config",
]

DEFAULT_PORT = 50080
_TRUE = ("true", "1", "yes", "on")


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _TRUE


def _port(value: str | None, name: str, default: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a port number, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name} must be 1..65535, got {port}")
    return port


@dataclass(frozen=True)
class S3Config:
    """Where CFS bytes live: AWS_S3_ENDPOINT is `host:port`, as pycolonies requires."""

    endpoint: str
    accesskey: str = field(default="", repr=False)
    secretkey: str = field(default="", repr=False)
    bucket: str = ""
    tls: bool = False
    skipverify: bool = False
    region: str = ""

    @property
    def host(self) -> str:
        return self.endpoint.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not host:
            raise ValueError(f"AWS_S3_ENDPOINT must be host:port, got {self.endpoint!r}")
        return _port(port, "AWS_S3_ENDPOINT port", 0)


@dataclass(frozen=True)
class Config:
    """Everything a client needs; `from_env` is the only place that reads environment variables."""

    host: str = "localhost"
    port: int = DEFAULT_PORT
    tls: bool = False
    colonyname: str = ""
    colony_prvkey: str = field(default="", repr=False)
    prvkey: str = field(default="", repr=False)
    executorname: str = ""
    executortype: str = ""
    s3: S3Config | None = None
    local_store: str = ""
    # COLONIES_SERVER_SOCKET: reach the server through this Unix socket (`faas server start
    # --unix-socket`) instead of TCP to host:port; for clients on the server's host.
    unix_socket: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read COLONIES_SERVER_HOST/_PORT/_TLS/_SOCKET, COLONIES_COLONY_NAME, COLONIES_COLONY_PRVKEY,
        COLONIES_PRVKEY, COLONIES_EXECUTOR_NAME/_TYPE and AWS_S3_* from `env` (default os.environ).

        COLONIES_TLS (the v1.9 spelling) is honoured when COLONIES_SERVER_TLS is unset."""
        e = os.environ if env is None else env
        tls = e.get("COLONIES_SERVER_TLS")
        s3 = None
        endpoint = e.get("AWS_S3_ENDPOINT", "").strip()
        if endpoint:
            s3 = S3Config(endpoint=endpoint, accesskey=e.get("AWS_S3_ACCESSKEY", ""),
                          secretkey=e.get("AWS_S3_SECRETKEY", ""), bucket=e.get("AWS_S3_BUCKET", ""),
                          tls=_flag(e.get("AWS_S3_TLS")), skipverify=_flag(e.get("AWS_S3_SKIPVERIFY")),
                          region=e.get("AWS_S3_REGION", ""))
            s3.port  # noqa: B018 - validate host:port now, not at the first upload
        return cls(
            host=e.get("COLONIES_SERVER_HOST", "").strip() or "localhost",
            port=_port(e.get("COLONIES_SERVER_PORT"), "COLONIES_SERVER_PORT", DEFAULT_PORT),
            tls=_flag(tls if tls is not None else e.get("COLONIES_TLS")),
            colonyname=e.get("COLONIES_COLONY_NAME", ""),
            colony_prvkey=e.get("COLONIES_COLONY_PRVKEY", ""),
            prvkey=e.get("COLONIES_PRVKEY", ""),
            executorname=e.get("COLONIES_EXECUTOR_NAME", ""),
            executortype=e.get("COLONIES_EXECUTOR_TYPE", ""),
            s3=s3,
            local_store=e.get("COLONYFAAS_LOCAL_STORE", "").strip(),
            unix_socket=e.get("COLONIES_SERVER_SOCKET", "").strip(),
        )

    @classmethod
    def from_envfile(cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
        """A ColonyOS env file (e.g. `.faas/env`); its values override `env` (default: none)."""
        return cls.from_env({**(env or {}), **load_envfile(path)})

    def with_(self, **changes: object) -> Config:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The env variables that reproduce this config (for pycolonies scripts and `faas dev`)."""
        env = {
            "COLONIES_SERVER_HOST": self.host,
            "COLONIES_SERVER_PORT": str(self.port),
            "COLONIES_SERVER_TLS": "true" if self.tls else "false",
            "COLONIES_COLONY_NAME": self.colonyname,
            "COLONIES_COLONY_PRVKEY": self.colony_prvkey,
            "COLONIES_PRVKEY": self.prvkey,
            "COLONIES_EXECUTOR_NAME": self.executorname,
        }
        if self.executortype:
            env["COLONIES_EXECUTOR_TYPE"] = self.executortype
        if self.unix_socket:
            env["COLONIES_SERVER_SOCKET"] = self.unix_socket
        if self.s3 is not None:
            env.update({
                "AWS_S3_ENDPOINT": self.s3.endpoint,
                "AWS_S3_ACCESSKEY": self.s3.accesskey,
                "AWS_S3_SECRETKEY": self.s3.secretkey,
                "AWS_S3_BUCKET": self.s3.bucket,
                "AWS_S3_TLS": "true" if self.s3.tls else "false",
                "AWS_S3_SKIPVERIFY": "true" if self.s3.skipverify else "false",
                "AWS_S3_REGION": self.s3.region,
            })
        elif self.local_store:
            env["COLONYFAAS_LOCAL_STORE"] = self.local_store
        return env
