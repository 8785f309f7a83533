"""The executor's settings: one frozen object, built by the CLI (the only place that reads env)."""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .pool import PoolSettings

__all__ = ["DEFAULT_TYPE", "ExecutorSettings", "default_name", "default_state_dir"]

DEFAULT_TYPE = "faas-executor"


def default_name(executortype: str = DEFAULT_TYPE) -> str:
    """A unique name, so several executors can join one colony without configuration."""
    return f"{executortype}-{os.uname().nodename.split('.')[0]}-{uuid.uuid4().hex[:6]}"


def default_state_dir() -> str:
    """Shared by the executors of one uid on a machine: the bundle cache is content-addressed and
    written atomically; each executor's scratch dirs get their own subdirectory. One per uid, so
    that a non-root executor does not trip over the directory a root one made in a shared TMPDIR
    (and the executor checks that the directory is its own: Executor's state-dir check)."""
    uid = os.geteuid()
    return str(Path(tempfile.gettempdir()) / ("colonyfaas-executor" if uid == 0 else f"colonyfaas-executor-{uid}"))


@dataclass(frozen=True)
class ExecutorSettings:
    """Who the executor is in the colony and how it runs calls. Every timeout is finite."""

    colonyname: str
    executorname: str = field(default_factory=default_name)
    executortype: str = DEFAULT_TYPE
    prvkey: str = field(default="", repr=False)
    colony_prvkey: str = field(default="", repr=False)
    # Workers: one more than the two cores of the machine it was measured on. While the executor's
    # batched closes travel, a third worker keeps both cores busy: on average +14 % calls/s at c=64
    # against 2 there, +9 % against 4 (bench/README.md, ninth round). Set --concurrency to your cores + 1.
    concurrency: int = 3
    prefetch: int = 10
    assign_timeout: float = 5.0
    default_timeout: float = 600.0
    lease: float = 30.0
    label: str = "/faas"
    register_functions: bool = True
    unregister_on_exit: bool = True
    state_dir: str = field(default_factory=default_state_dir)
    pool: PoolSettings | None = None

    def __post_init__(self) -> None:
        if not self.colonyname:
            raise ValueError("a colony name is required (COLONIES_COLONY_NAME)")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be 0 or more, got {self.prefetch}")
        if not (self.prvkey or self.colony_prvkey):
            raise ValueError("either the colony key (COLONIES_COLONY_PRVKEY) to register a new executor, "
                             "or the key of a registered executor (COLONIES_PRVKEY) is required")
        for name in ("assign_timeout", "default_timeout", "lease"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def cache_dir(self) -> str:
        return str(Path(self.state_dir) / "bundles")

    def pool_settings(self) -> PoolSettings:
        """The pool's settings: one warm worker slot per concurrent call."""
        if self.pool is not None:
            return self.pool
        scratch = Path(self.state_dir) / f"scratch-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        return PoolSettings(scratch_root=str(scratch), size=self.concurrency)
