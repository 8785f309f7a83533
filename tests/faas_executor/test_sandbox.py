"""Isolation of user code in a worker: each layer is checked where this machine has it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from faas_executor import sandbox
from faas_executor.handle import Reason
from faas_executor.pool import WorkerPool
from tests.faas_executor.conftest import PoolFactory, source
from tests.harness.require import require

CAPS = sandbox.detect()
ROOT = os.geteuid() == 0
LANDLOCK = CAPS.landlock_abi > 0
SECCOMP = CAPS.seccomp is None


def run(pool: WorkerPool, code: str, *args: object, **limits: object) -> object:
    out = pool.run(source("probe", code, limits=dict(limits)), list(args), {}, timeout=30)
    assert out.ok, out.error
    return out.value


def test_the_start_line_names_every_layer(pool: WorkerPool) -> None:
    line = pool.describe()
    assert "\n" not in line
    for layer in ("uid=", "rlimits=on", "cgroup=", "namespaces=", "landlock=", "seccomp=", "bwrap="):
        assert layer in line
    assert ("landlock=on" in line) == LANDLOCK
    assert ("seccomp=on" in line) == SECCOMP
    assert ("uid=on" in line) == ROOT


def test_workers_report_the_layers_they_applied(pool: WorkerPool) -> None:
    run(pool, "def probe():\n    return 1\n")
    layers = next(iter(pool.workers().values())).layers
    assert "rlimits" in layers
    assert ("landlock" in layers) == LANDLOCK
    assert ("seccomp" in layers) == SECCOMP
    if ROOT:
        assert "uid" in layers and "namespaces" in layers


def test_the_executors_environment_never_reaches_user_code(pool: WorkerPool,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLONIES_PRVKEY", "executor-secret-key")
    env = run(pool, """
        import os
        def probe():
            try:
                with open(f"/proc/{os.getppid()}/environ", "rb") as f:
                    parent = f.read().decode(errors="replace")
            except OSError as e:
                parent = type(e).__name__
            return [dict(os.environ), parent]
    """)
    assert isinstance(env, list)
    own, parent = env
    assert "COLONIES_PRVKEY" not in own
    assert set(own) <= {"PATH", "LANG", "HOME", "TMPDIR", "MALLOC_ARENA_MAX"}
    require(ROOT or LANDLOCK, "a uid drop or Landlock", "run as root or on a kernel with Landlock")
    assert "executor-secret-key" not in parent
    assert parent == "PermissionError"


def test_the_executors_key_file_cannot_be_read(pool: WorkerPool, tmp_path: Path) -> None:
    key = tmp_path / "executor.key"
    key.write_text("executor-secret-key")
    key.chmod(0o600)
    require(LANDLOCK or (ROOT and not pool.keep_read_search), "Landlock or a plain uid drop",
            "a kernel with Landlock, or a Python install readable by the worker uid")
    got = run(pool, """
        def probe(path):
            try:
                return open(path).read()
            except OSError as e:
                return type(e).__name__
    """, str(key))
    assert got == "PermissionError"


def test_writes_only_inside_the_call_scratch_dir(pool: WorkerPool, tmp_path: Path) -> None:
    require(LANDLOCK, "Landlock", "a kernel with Landlock (ABI >= 1) and pip install landlockpy")
    got = run(pool, """
        import os, tempfile
        def probe(outside):
            results = {}
            for path in outside:
                try:
                    open(path, "w").write("x")
                    results[path] = "written"
                except OSError as e:
                    results[path] = type(e).__name__
            with open("inside.txt", "w") as f:
                f.write("ok")
            fd, tmp = tempfile.mkstemp()
            os.close(fd)
            return [results, open("inside.txt").read(), tmp.startswith(os.getcwd())]
    """, [str(tmp_path / "escape.txt"), "/tmp/colonyfaas-escape.txt", str(Path.cwd() / "escape.txt")])
    assert isinstance(got, list)
    results, inside, tmp_in_scratch = got
    assert set(results.values()) == {"PermissionError"}
    assert inside == "ok" and tmp_in_scratch
    assert not (tmp_path / "escape.txt").exists()


CONNECT = """
    import socket
    def probe(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return "connected"
        except OSError as e:
            return type(e).__name__
"""


def test_network_is_denied_unless_the_function_asks_for_it(make_pool: PoolFactory) -> None:
    require(ROOT or LANDLOCK or SECCOMP, "a network layer", "root (net namespace), Landlock or seccomp")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        pool = make_pool()
        assert run(pool, CONNECT, port) != "connected"
        assert run(pool, CONNECT, port, network=True) == "connected"


def test_inet_sockets_are_refused_by_seccomp(pool: WorkerPool) -> None:
    require(SECCOMP, "seccomp", "pip install pyseccomp (libseccomp2)")
    got = run(pool, """
        import socket
        def probe():
            out = []
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                try:
                    socket.socket(socket.AF_INET, kind).close()
                    out.append("created")
                except OSError as e:
                    out.append(type(e).__name__)
            return out
    """)
    assert got == ["PermissionError", "PermissionError"]


def test_kernel_admin_syscalls_are_denied(pool: WorkerPool) -> None:
    require(SECCOMP, "seccomp", "pip install pyseccomp (libseccomp2)")
    got = run(pool, """
        import ctypes, errno
        def probe():
            libc = ctypes.CDLL(None, use_errno=True)
            rc = libc.unshare(0x00020000)
            return [rc, errno.errorcode.get(ctypes.get_errno())]
    """)
    assert got == [-1, "EPERM"]


def test_no_capabilities_beyond_read_search(pool: WorkerPool) -> None:
    require(ROOT, "root", "run the executor as root to drop to an unprivileged uid")
    got = run(pool, """
        import os
        def probe():
            status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
            return [os.getuid(), int(status["CapEff"].strip(), 16), int(status["CapBnd"].strip(), 16)]
    """)
    assert isinstance(got, list)
    uid, eff, bnd = got
    assert uid == pool.uid_base
    assert eff & ~(1 << 2) == 0 and bnd & ~(1 << 2) == 0


def test_user_code_cannot_signal_the_executor(pool: WorkerPool) -> None:
    require(ROOT or LANDLOCK, "a uid drop or Landlock signal scoping", "root or a kernel with Landlock ABI >= 6")
    got = run(pool, """
        import os
        def probe():
            try:
                os.kill(os.getppid(), 0)
                return "allowed"
            except OSError as e:
                return type(e).__name__
    """)
    assert got == "PermissionError"


def _uid_processes(uids: range) -> list[int]:
    """Live (not zombie: killed orphans wait for init to reap them) processes of these uids."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in uids:
                    state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_fork_bomb_is_contained_and_cleaned_up(make_pool: PoolFactory) -> None:
    require(ROOT or CAPS.cgroup, "a pids cgroup or an unprivileged uid with NPROC", "run as root")
    pool = make_pool(nproc=16, size=1)
    got = run(pool, """
        import os, signal
        def probe():
            n = 0
            try:
                while n < 5000:
                    if os.fork() == 0:
                        while True:
                            signal.pause()
                    n += 1
            except OSError as e:
                return [n, type(e).__name__]
            return [n, "unbounded"]
    """)
    assert isinstance(got, list)
    forks, error = got
    assert error == "BlockingIOError" and forks < 16
    uids = range(pool.uid_base, pool.uid_base + 1) if pool.uid_base is not None else range(0)
    pool.close()
    assert _uid_processes(uids) == []


def test_open_files_are_capped(make_pool: PoolFactory) -> None:
    pool = make_pool(nofile=32)
    got = run(pool, """
        import os
        def probe():
            fds = []
            try:
                while len(fds) < 1000:
                    fds.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as e:
                return [len(fds), type(e).__name__]
            finally:
                for fd in fds:
                    os.close(fd)
            return [len(fds), "unbounded"]
    """)
    assert isinstance(got, list)
    opened, error = got
    assert error == "OSError" and opened < 32


def test_without_a_uid_drop_root_keeps_no_capabilities(make_pool: PoolFactory) -> None:
    require(ROOT, "root", "run as root (this checks the layer used when --uid-base none)")
    pool = make_pool(uid_base=None)
    got = run(pool, """
        import os
        def probe():
            status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
            open("mine", "w").close()
            try:
                os.chmod("mine", 0o777)
                chmod = "allowed"
            except OSError as e:
                chmod = type(e).__name__
            return [os.getuid(), int(status["CapEff"].strip(), 16), chmod]
    """)
    assert got == [0, 0, "PermissionError" if SECCOMP else "allowed"]
    assert "uid=off" in pool.describe()


def test_secrets_and_devices_stay_unreadable(pool: WorkerPool) -> None:
    require(LANDLOCK or (ROOT and not pool.keep_read_search), "Landlock or a plain uid drop",
            "a kernel with Landlock, or a Python install readable by the worker uid")
    paths = [p for p in ("/etc/shadow", "/etc/gshadow", "/dev/loop0", "/root", "/var/log") if os.path.exists(p)]
    got = run(pool, """
        import os
        def probe(paths):
            out = {}
            for p in paths:
                try:
                    if os.path.isdir(p):
                        os.listdir(p)
                    else:
                        open(p, "rb").read(1)
                    out[p] = "read"
                except OSError as e:
                    out[p] = type(e).__name__
            import json, ssl, zoneinfo
            ssl.create_default_context()  # TLS roots under /etc/ssl stay readable
            return [out, json.dumps(str(zoneinfo.ZoneInfo("Europe/Stockholm")))]
    """, paths)
    assert isinstance(got, list)
    assert got[0] == {p: "PermissionError" for p in paths}
    assert "Stockholm" in got[1]


def test_each_worker_runs_in_its_own_limited_cgroup(make_pool: PoolFactory) -> None:
    require(CAPS.cgroup, "writable cgroups (v1 memory+pids or v2)", "run as root with cgroupfs mounted rw")
    pool = make_pool(memory_mb=128, nproc=20)
    pid = run(pool, "import os\ndef probe():\n    return os.getpid()\n")
    worker = next(iter(pool.workers().values()))
    assert worker.cgroup is not None and worker.pid == pid
    dirs = worker.cgroup.dirs
    if CAPS.cgroup == "v1":
        assert int((dirs["memory"] / "memory.limit_in_bytes").read_text()) == (128 + 64) << 20
        assert (dirs["pids"] / "pids.max").read_text().strip() == "20"
        assert str(pid) in (dirs["memory"] / "cgroup.procs").read_text().split()
    else:
        assert int((dirs[""] / "memory.max").read_text()) == (128 + 64) << 20
        assert (dirs[""] / "pids.max").read_text().strip() == "20"
    pool.close()
    assert not any(d.exists() for d in dirs.values())


def test_memory_the_address_space_cap_cannot_see_is_stopped_by_the_cgroup(make_pool: PoolFactory) -> None:
    # memfd pages are charged to the worker's cgroup but not to its RLIMIT_AS: only the cgroup's
    # limit (memory cap + 64 MiB) stops this function; the kernel's OOM kill is then reported as
    # a memory kill, and the next call gets a fresh worker.
    require(CAPS.cgroup, "writable cgroups (v1 memory+pids or v2)", "run as root with cgroupfs mounted rw")
    pool = make_pool(memory_mb=128, size=1)
    b = source("shm", """
        import os
        def shm(mib):
            chunk, fds = b"x" * (1 << 20), []
            for part in range(4):  # four files: each stays under the file-size cap
                fds.append(os.memfd_create(f"part{part}"))
                for _ in range(mib // 4):
                    os.write(fds[-1], chunk)
            return len(fds)
    """)
    first = pool.run(b, [400], {}, timeout=60)
    assert first.reason is Reason.MEMORY, first
    assert first.error == "worker killed: memory limit 128 MiB exceeded"
    assert not pool.workers()
    assert pool.run(b, [8], {}, timeout=30).value == 4  # within the limit: a fresh worker runs it


def test_a_planned_layer_that_fails_to_apply_fails_the_worker(make_pool: PoolFactory) -> None:
    import shutil
    import tempfile

    # A scratch dir any uid can reach (tmp_path is under a 0700 dir).
    parent = tempfile.mkdtemp(prefix="colonyfaas-test-")
    os.chmod(parent, 0o711)
    try:
        _planned_layer_fails(make_pool(scratch_root=os.path.join(parent, "scratch")))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _planned_layer_fails(pool: WorkerPool) -> None:
    require(LANDLOCK and pool.keep_read_search, "Landlock and a runtime the worker uid cannot reach",
            "this machine's layout (Python under a 0700 home) is what makes a Landlock rule fail here")
    # Without the read-search capability the worker cannot open its runtime's directories to
    # add Landlock rules for them: the layer fails, and the worker must not run user code.
    pool.keep_read_search = False
    out = pool.run(source("probe", "def probe():\n    return 1\n"), [], {}, timeout=30)
    assert out.reason is Reason.CRASH
    assert "sandbox layer failed: landlock:off" in out.error
    assert not pool.workers()
