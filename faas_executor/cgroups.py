"""Per-worker cgroups (v1 memory+pids, or v2): a memory limit, a pids limit, kill-all and OOM detection.

Created by the parent under the executor's own cgroup (so a container's limits still apply),
one per worker; the parent moves the worker in before it runs any user code.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from pathlib import Path

__all__ = ["Cgroup", "CgroupRoot", "detect_version"]

log = logging.getLogger(__name__)
_ROOT = Path("/sys/fs/cgroup")


def _own_paths() -> dict[str, str]:
    """controller → this process's cgroup path ('' key for v2)."""
    out: dict[str, str] = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _hid, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _v1_base(controller: str, own: dict[str, str]) -> Path | None:
    mount = _ROOT / controller
    if not (mount / "cgroup.procs").exists():
        return None
    base = mount / own.get(controller, "/").lstrip("/")
    return base if os.access(base, os.W_OK) else None


def detect_version() -> str | None:
    """'v1' if memory and pids v1 hierarchies are writable, 'v2' if a writable unified one has
    both controllers, else None."""
    own = _own_paths()
    if _v1_base("memory", own) and _v1_base("pids", own):
        return "v1"
    unified = _ROOT if (_ROOT / "cgroup.controllers").exists() else None
    if unified is not None:
        base = unified / own.get("", "/").lstrip("/")
        try:
            controllers = (base / "cgroup.controllers").read_text().split()
        except OSError:
            return None
        if {"memory", "pids"} <= set(controllers) and os.access(base, os.W_OK):
            return "v2"
    return None


class CgroupRoot:
    """The executor's parent cgroup(s) `colonyfaas-<pid>` holding one child cgroup per worker."""

    def __init__(self, version: str, name: str | None = None) -> None:
        self.version = version
        self.name = name or f"colonyfaas-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        own = _own_paths()
        if version == "v1":
            self.dirs = {c: base / self.name for c in ("memory", "pids")
                         if (base := _v1_base(c, own)) is not None}
        else:
            base = _ROOT / own.get("", "/").lstrip("/")
            self.dirs = {"": base / self.name}
        for d in self.dirs.values():
            _sweep_stale(d.parent)
            d.mkdir(exist_ok=True)
        if version == "v2":
            # Children of our group need the controllers delegated to them.
            (self.dirs[""] / "cgroup.subtree_control").write_text("+memory +pids")

    def create(self, worker: str, memory_bytes: int | None, pids_max: int) -> Cgroup:
        return Cgroup(self, worker, memory_bytes, pids_max)

    def remove(self) -> None:
        for d in self.dirs.values():
            _remove_tree(d)


def _remove_tree(d: Path) -> None:
    """Kill everything in `d` and its child groups, then remove them (deepest first)."""
    for child in [c for c in d.iterdir() if c.is_dir()] if d.exists() else []:
        _remove_tree(child)
    _kill_all(d)
    try:
        d.rmdir()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot remove cgroup %s: %s", d, e)


def _sweep_stale(parent: Path) -> None:
    """Remove groups left by executors that died without cleaning up (`colonyfaas-<pid>-*`)."""
    for d in parent.glob("colonyfaas-*-*"):
        try:
            pid = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        _remove_tree(d)


class Cgroup:
    """One worker's cgroup(s)."""

    def __init__(self, root: CgroupRoot, worker: str, memory_bytes: int | None, pids_max: int) -> None:
        self.version = root.version
        self.dirs = {c: d / worker for c, d in root.dirs.items()}
        for d in self.dirs.values():
            if d.exists():
                _kill_all(d)
                d.rmdir()
            d.mkdir()
        if self.version == "v1":
            if memory_bytes:
                mem = self.dirs["memory"]
                (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
                try:  # without swap accounting this file is absent; the limit above still holds
                    (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                except OSError:
                    pass
            (self.dirs["pids"] / "pids.max").write_text(str(pids_max))
        else:
            d = self.dirs[""]
            if memory_bytes:
                (d / "memory.max").write_text(str(memory_bytes))
                try:
                    (d / "memory.swap.max").write_text("0")
                except OSError:
                    pass
            (d / "pids.max").write_text(str(pids_max))

    def add(self, pid: int) -> None:
        for d in self.dirs.values():
            (d / "cgroup.procs").write_text(str(pid))

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed something in this group."""
        try:
            if self.version == "v1":
                text = (self.dirs["memory"] / "memory.oom_control").read_text()
            else:
                text = (self.dirs[""] / "memory.events").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def kill_all(self) -> None:
        for d in self.dirs.values():
            _kill_all(d)

    def remove(self) -> None:
        for d in self.dirs.values():
            _remove_tree(d)


def _kill_all(d: Path) -> None:
    """SIGKILL every process in the group until it is empty (a fork bomb may still be forking)."""
    for _ in range(100):
        try:
            pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # The killed processes leave the group asynchronously; wait for their exit to be visible.
        _wait_empty(d)


def _wait_empty(d: Path) -> None:
    import select

    procs = d / "cgroup.procs"
    for _ in range(50):
        try:
            if not procs.read_text().strip():
                return
        except OSError:
            return
        select.select([], [], [], 0.002)  # no event exists for "group emptied" in v1
