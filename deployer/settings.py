"""The CLI's settings, read once from the environment and an env file, and the connection they describe."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DeployerError

if TYPE_CHECKING:
    from sdk import Config

    from .deploy import Target

__all__ = ["DEFAULT_ENV_FILE", "DEFAULT_GATEWAY_URL", "Settings", "connect", "load_settings"]

DEFAULT_ENV_FILE = Path(".faas/env")
DEFAULT_GATEWAY_URL = "http://localhost:8000"


@dataclass(frozen=True)
class Settings:
    """Everything the commands need, read once from the environment and the env file."""

    config: Config
    gateway_url: str
    executortype: str
    env_file: Path | None


def load_settings(env: Mapping[str, str], env_file: str | None) -> Settings:
    """Settings from `env` plus an env file (values in the file win, as when it is sourced
    after the shell's own exports). `env_file` None means `.faas/env` if it exists; "" none."""
    from sdk import Config, load_envfile

    path: Path | None
    if env_file is None:
        path = DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None
    else:
        path = Path(env_file) if env_file else None
        if path is not None and not path.is_file():
            raise DeployerError(f"env file not found: {path}")
    merged = dict(env)
    if path is not None:
        try:
            merged.update(load_envfile(path))
        except (OSError, UnicodeDecodeError) as e:
            raise DeployerError(f"cannot read env file {path}: {e}") from None
    try:
        config = Config.from_env(merged)
    except ValueError as e:
        raise DeployerError(str(e)) from None
    return Settings(config=config,
                    gateway_url=(merged.get("FAAS_GATEWAY_URL") or DEFAULT_GATEWAY_URL).rstrip("/"),
                    executortype=merged.get("FAAS_EXECUTOR_TYPE") or "faas-executor",
                    env_file=path)


@contextmanager
def connect(settings: Settings) -> Iterator[Target]:
    """A client for the configured server, key and store; fails early on missing settings."""
    from sdk import Colonies, id_from_prvkey

    from .deploy import Target

    cfg = settings.config
    where = f" (read {settings.env_file})" if settings.env_file else ""
    if not cfg.colonyname:
        raise DeployerError(f"COLONIES_COLONY_NAME is not set{where}; export the COLONIES_* variables "
                            "or point --env-file at the file `faas dev` writes")
    if not cfg.prvkey:
        raise DeployerError(f"COLONIES_PRVKEY is not set{where}")
    try:
        id_from_prvkey(cfg.prvkey)
    except ValueError as e:
        raise DeployerError(f"COLONIES_PRVKEY is not a valid private key: {e}") from None
    s3_url = None
    if cfg.s3 is not None:
        s3_url = f"{'https' if cfg.s3.tls else 'http'}://{cfg.s3.endpoint}"
    with Colonies.from_config(cfg) as client:
        yield Target(client, cfg.colonyname, s3_url)
