"""The executor run by an ordinary user: its state dir, its own process, its workers, its warnings.

Tests run as root; the non-root cases run in a forked child that drops to `nobody`, so they see
what an executor started by an unprivileged user (a Kubernetes pod with runAsNonRoot) sees.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faas_executor import _linux, sandbox
from faas_executor.cli import main
from faas_executor.config import ExecutorSettings, default_state_dir
from faas_executor.executor import Executor, StateDirError
from faas_executor.pool import PoolSettings, WorkerPool
from sdk.client import Colonies

from .conftest import source
from .test_cli import ENV

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="drops to another uid / chowns: needs root")


def as_nobody(fn: Callable[[], Any]) -> Any:
    """fn() in a forked child running as uid/gid 65534; its result (or its error, re-raised)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            reply: tuple[bool, Any] = (True, fn())
        except BaseException as e:  # noqa: BLE001 - everything goes back to the test
            reply = (False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        with os.fdopen(w, "wb") as f:
            f.write(pickle.dumps(reply))
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise AssertionError(f"in the child running as uid {NOBODY}: {value}")
    return value


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A directory every uid can reach (pytest's tmp_path is under a root-only directory)."""
    d = Path(tempfile.mkdtemp(prefix="faas-state-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def shared_tmp(open_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TMPDIR like /tmp (world-writable, sticky) for the default state dir."""
    tmp = open_tmp / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def executor_in(state_dir: str | None = None, **pool: Any) -> Executor:
    settings = ExecutorSettings(colonyname="dev", colony_prvkey=ENV["COLONIES_COLONY_PRVKEY"])
    if state_dir is not None:
        settings = ExecutorSettings(colonyname="dev", colony_prvkey=ENV["COLONIES_COLONY_PRVKEY"], state_dir=state_dir)
    if pool:
        from dataclasses import replace

        settings = replace(settings, pool=replace(settings.pool_settings(), **pool))
    return Executor(settings, Colonies("127.0.0.1", 50099, tls=False))


@needs_root
def test_a_non_root_executor_gets_a_state_dir_of_its_own_beside_roots(shared_tmp: Path) -> None:
    root_dir = Path(default_state_dir())
    assert root_dir == shared_tmp / "colonyfaas-executor"
    executor_in().pool.close()  # a root executor ran here first and left its directory
    assert root_dir.is_dir() and root_dir.stat().st_uid == 0

    def start() -> tuple[str, int, int]:
        e = executor_in()  # the default state dir, as `faas executor start` without --state-dir
        try:
            st = os.stat(e.settings.state_dir)
            return e.settings.state_dir, st.st_uid, stat.S_IMODE(st.st_mode)
        finally:
            e.pool.close()

    state_dir, owner, mode = as_nobody(start)
    assert state_dir == str(shared_tmp / f"colonyfaas-executor-{NOBODY}")
    assert owner == NOBODY and not mode & 0o022


@needs_root
def test_a_default_state_dir_someone_else_made_is_refused_with_a_clear_message(
        shared_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    planted = Path(default_state_dir())
    planted.mkdir()
    os.chown(planted, NOBODY, NOBODY)  # e.g. made in /tmp by another user before the executor started
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["start"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert f"{planted} belongs to uid {NOBODY}" in err and "--state-dir" in err
    assert list(planted.iterdir()) == []  # nothing was written into it


@needs_root
def test_an_explicit_state_dir_that_cannot_be_made_fails_with_a_clear_message(open_tmp: Path) -> None:
    locked = open_tmp / "locked"
    locked.mkdir(mode=0o755)

    def start() -> str:
        try:
            executor_in(str(locked / "state")).pool.close()
        except StateDirError as e:
            return str(e)
        return "started"

    message = as_nobody(start)
    assert "Permission denied" in message and str(locked / "state") in message and "--state-dir" in message


def test_a_default_state_dir_writable_by_others_is_closed(shared_tmp: Path) -> None:
    own = Path(default_state_dir())
    own.mkdir()
    os.chmod(own, 0o777)  # made under a lax umask
    executor_in().pool.close()
    assert stat.S_IMODE(own.stat().st_mode) == 0o755


@needs_root
def test_an_undumpable_process_hides_its_environment_from_its_own_uid() -> None:
    def environ_owner(dumpable: bool) -> int:
        _linux.set_dumpable(dumpable)
        return os.stat(f"/proc/{os.getpid()}/environ").st_uid

    assert as_nobody(lambda: environ_owner(True)) == NOBODY  # readable by any process of that uid
    assert as_nobody(lambda: environ_owner(False)) == 0  # the colony key in it: root's only


@needs_root
def test_a_non_root_executor_without_landlock_or_namespaces_warns(open_tmp: Path) -> None:
    scratch = open_tmp / "scratch"
    os.chmod(open_tmp, 0o777)

    def exposure(landlock: bool, namespaces: bool) -> str | None:
        pool = WorkerPool(PoolSettings(scratch_root=str(scratch), uid_base=None, cgroups=False,
                                       landlock=landlock, namespaces=namespaces))
        try:
            return pool.exposure()
        finally:
            pool.close()

    warning = as_nobody(lambda: exposure(landlock=False, namespaces=False))
    assert warning is not None and "neither Landlock nor a user namespace" in warning
    assert exposure(landlock=False, namespaces=False) is None  # root: each slot has a uid of its own


SYSTEM_PYTHON = "/usr/bin/python3.11"


@needs_root
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}, which any uid can run")
@pytest.mark.skipif(not sandbox.detect().userns, reason="no user namespaces here")
def test_a_non_root_worker_has_no_capabilities_in_its_own_namespace(open_tmp: Path) -> None:
    # The project's interpreter may live where another uid cannot run it (pyenv under /root):
    # the worker uses the system's, which needs only the stdlib (no Landlock or seccomp here).
    os.chmod(open_tmp, 0o777)
    probe = source("probe", """
        import os, resource
        def probe():
            status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
            return [os.getuid(), status["CapEff"].strip(), status["CapBnd"].strip(),
                    resource.getrlimit(resource.RLIMIT_NPROC)[0]]
    """)

    def call() -> tuple[list[Any], str]:
        pool = WorkerPool(PoolSettings(scratch_root=str(open_tmp / "scratch"), uid_base=None, cgroups=False,
                                       landlock=False, seccomp=False, python=SYSTEM_PYTHON, nproc=48))
        try:
            out = pool.run(probe, [], {}, timeout=30)
            assert out.ok, out.error
            return out.value, pool.describe()
        finally:
            pool.close()

    (uid, cap_eff, cap_bnd, nproc), line = as_nobody(call)
    assert uid == NOBODY  # mapped to itself in its own namespace
    assert int(cap_eff, 16) == 0 and int(cap_bnd, 16) == 0
    if sandbox._nproc_per_userns():
        assert nproc == 48 and "NPROC (per user namespace)" in line


@needs_root
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}, which any uid can run")
@pytest.mark.skipif(not sandbox.detect().userns, reason="no user namespaces here")
def test_a_non_root_worker_runs_async_functions_in_its_own_namespace(open_tmp: Path) -> None:
    # The event loop's epoll and self-pipe socketpair, and a default-executor thread, with no
    # capabilities in a user namespace of the worker's own (tests/faas_executor/test_worker.py
    # covers the root case with every layer).
    os.chmod(open_tmp, 0o777)
    gather = source("gather", """
        import asyncio, os
        async def gather(n):
            loop = asyncio.get_running_loop()
            values = await asyncio.gather(*(asyncio.sleep(0.01, i) for i in range(n)))
            return [os.getuid(), await loop.run_in_executor(None, sum, values)]
    """)

    def call() -> list[Any]:
        pool = WorkerPool(PoolSettings(scratch_root=str(open_tmp / "scratch"), uid_base=None, cgroups=False,
                                       landlock=False, seccomp=False, python=SYSTEM_PYTHON))
        try:
            out = pool.run(gather, [4], {}, timeout=30)
            assert out.ok, out.error
            assert "namespaces" in next(iter(pool.workers().values())).layers
            return list(out.value)
        finally:
            pool.close()

    assert as_nobody(call) == [NOBODY, 6]


def test_an_explicit_state_dir_may_be_a_symlink_the_default_may_not(open_tmp: Path, shared_tmp: Path) -> None:
    real = open_tmp / "real"
    real.mkdir()
    link = open_tmp / "state"
    link.symlink_to(real)
    executor_in(str(link)).pool.close()  # e.g. /var/lib/faas -> /data/faas
    assert (real / "bundles").is_dir()

    Path(default_state_dir()).symlink_to(real)  # planted in the shared TMPDIR
    with pytest.raises(StateDirError, match="is a symbolic link"):
        executor_in()
