"""Isolation layers for a worker: what the machine offers (detected in the parent) and applying
them once in the worker child before any user code is loaded.

Layers, applied in this order by `apply` (each one optional and reported):
  namespaces  unshare net (when the function has no network), ipc and uts
  rlimits     AS (memory), CPU (per call, inside a lifetime budget), NOFILE, FSIZE, NPROC, CORE=0
  uid         drop to an unprivileged per-slot uid, all capabilities dropped (keeping only
              CAP_DAC_READ_SEARCH when the Python runtime itself is not readable by that uid)
  landlock    read-only allowlist (the runtime, system dirs), writes only in the scratch dir,
              TCP bind/connect denied unless network, no signals/abstract sockets outside the worker
  seccomp     deny kernel-admin syscalls; deny AF_INET/AF_INET6/AF_PACKET sockets unless network
The cgroup layer (memory and pids limits) is set by the parent, see `cgroups.py`.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Capabilities", "Policy", "apply", "default_read_paths", "detect", "describe",
           "readable_by", "set_call_cpu"]

MiB = 1024 * 1024

# Denied with EPERM: administration, kernel modules, tracing other processes, namespaces
# (after ours are set), keyrings, bpf/perf. Names unknown to the running arch are skipped.
DENIED_SYSCALLS = (
    "acct", "add_key", "bpf", "chroot", "clock_adjtime", "clock_settime", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "init_module", "ioperm", "iopl",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
    "move_mount", "name_to_handle_at", "open_by_handle_at", "open_tree", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "quotactl", "reboot",
    "request_key", "setdomainname", "sethostname", "setns", "settimeofday", "swapoff", "swapon",
    "syslog", "umount2", "unshare", "userfaultfd", "vhangup",
)
# Without a uid drop the worker stays uid 0 and owns most system files: deny changing modes,
# owners and extended attributes (Landlock does not cover these).
ROOT_ONLY_DENIED = ("chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
                    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr")
_AF_INET, _AF_INET6, _AF_PACKET = 2, 10, 17


@dataclass(frozen=True)
class Policy:
    """What the worker child applies to itself at start (sent in the init frame)."""

    scratch: str
    memory_mb: int | None = 256
    cpu_seconds: int = 60
    cpu_budget_seconds: int = 3600
    nofile: int = 256
    fsize_mb: int = 256
    nproc: int = 64
    uid: int | None = None
    keep_read_search: bool = False
    network: bool = False
    namespaces: bool = True
    landlock: bool = True
    seccomp: bool = True
    read_paths: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        d = asdict(self)
        d["read_paths"] = list(self.read_paths)
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Policy:
        return cls(**{**d, "read_paths": tuple(d.get("read_paths", ()))})


@dataclass(frozen=True)
class Capabilities:
    """What this machine offers, detected once in the parent."""

    root: bool
    landlock_abi: int
    seccomp: str | None  # None when available, else why not
    userns: bool
    cgroup: str | None  # "v1" / "v2" / None
    bwrap: str | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def detect(python: str = sys.executable) -> Capabilities:
    """Probe each layer without applying anything (`python`: the workers' interpreter)."""
    notes: list[str] = []
    try:
        import landlockpy

        abi = landlockpy.abi_version()
    except ImportError:
        abi = 0
        notes.append("landlock: pip install 'colonyfaas[executor]'")
    except OSError:
        abi = 0
    seccomp: str | None
    try:
        import pyseccomp

        pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        seccomp = None
    except ImportError:
        seccomp = "pyseccomp not installed (pip install 'colonyfaas[executor]')"
    except OSError as e:  # libseccomp missing
        seccomp = f"libseccomp unavailable: {e}"
    import shutil

    from . import cgroups

    return Capabilities(root=os.geteuid() == 0, landlock_abi=abi, seccomp=seccomp,
                        userns=_userns_possible(python), cgroup=cgroups.detect_version(),
                        bwrap=shutil.which("bwrap"), notes=tuple(notes))


def _userns_possible(python: str) -> bool:
    """Whether a worker's unshare will work. Not root: tried in a child (~50 ms, once), since a
    container's seccomp profile, an LSM or kernel.unprivileged_userns_clone can refuse it whatever
    max_user_namespaces says."""
    if os.geteuid() == 0:
        return True
    import subprocess

    from . import _linux

    flags = _linux.CLONE_NEWUSER | _linux.CLONE_NEWNET | _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS
    code = f"import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare({flags}) != 0)"
    try:
        return subprocess.run([python, "-I", "-S", "-c", code], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _nproc_per_userns() -> bool:
    """Since Linux 5.14 RLIMIT_NPROC counts per user namespace: in a worker's own namespace it
    caps that worker's processes, not every process of the executor's uid on the machine."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def readable_by(path: str, uid: int, gid: int) -> bool:
    """Whether `uid`/`gid` (no supplementary groups) can reach and read `path` by mode bits."""
    p = Path(path)
    chain = [*reversed(p.parents), p]
    for i, part in enumerate(chain):
        try:
            st = part.stat()
        except OSError:
            return False
        need = stat.S_IXOTH if i < len(chain) - 1 or stat.S_ISDIR(st.st_mode) else 0
        need |= stat.S_IROTH if i == len(chain) - 1 else 0
        if st.st_uid == uid:
            mode = (st.st_mode >> 6) & 0o7
        elif st.st_gid == gid:
            mode = (st.st_mode >> 3) & 0o7
        else:
            mode = st.st_mode & 0o7
        if mode & need != need:
            return False
    return True


# What user code may read under /etc and /dev: name resolution, TLS roots, time zones, users and
# groups, the dynamic loader, mime types; the harmless character devices. Not the whole of /etc
# (shadow, keys, service configs) nor /dev (block devices): a worker that keeps
# CAP_DAC_READ_SEARCH could read them all, and Landlock's allowlist is what stops it.
ETC_READABLE = ("alternatives", "ca-certificates", "ca-certificates.conf", "crypto-policies", "debian_version",
                "gai.conf", "group", "host.conf", "hostname", "hosts", "ld.so.cache", "ld.so.conf",
                "ld.so.conf.d", "locale.alias", "localtime", "magic", "mime.types", "networks",
                "nsswitch.conf", "os-release", "passwd", "pki", "protocols", "resolv.conf", "services",
                "ssl", "timezone")
DEV_READABLE = ("full", "null", "random", "urandom", "zero")


def default_read_paths() -> tuple[str, ...]:
    """The Landlock read allowlist: the Python runtime a worker runs (`python -I`: the prefixes
    and site-packages, not the executor's sys.path or working directory), this package, the
    system's program and library dirs, and the /etc and /dev entries above."""
    import site

    package_dir = str(Path(__file__).resolve().parent)
    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, package_dir,
             str(Path(sys.executable).resolve().parent.parent),
             "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/proc", "/sys/devices/system/cpu"}
    cands |= set(site.getsitepackages())
    cands |= {f"/etc/{name}" for name in ETC_READABLE} | {f"/dev/{name}" for name in DEV_READABLE}
    cands |= {os.path.realpath(p) for p in list(cands)}
    return tuple(sorted(p for p in cands if os.path.exists(p)))


def describe(caps: Capabilities, policy: Policy, cgroup_active: bool) -> str:
    """The one log line naming every layer and whether it is active."""
    parts = []
    if policy.uid is not None and caps.root:
        extra = " + CAP_DAC_READ_SEARCH (runtime not readable by it)" if policy.keep_read_search else ""
        parts.append(f"uid=on (per-slot uid from {policy.uid}{extra}, no other capabilities)")
    else:
        parts.append("uid=off (not root)" if not caps.root
                     else "uid=off (disabled: uid 0 with every capability dropped, chmod/chown denied)")
    if policy.uid is not None and caps.root:
        nproc = "NPROC"
    elif not caps.root and policy.namespaces and caps.userns and _nproc_per_userns():
        nproc = "NPROC (per user namespace)"
    else:
        nproc = "NPROC(no effect without uid drop)"
    parts.append(f"rlimits=on (AS {policy.memory_mb} MiB+base, CPU {policy.cpu_seconds}s/call, "
                 f"NOFILE {policy.nofile}, FSIZE {policy.fsize_mb} MiB, {nproc})")
    parts.append(f"cgroup={'on (' + str(caps.cgroup) + ' memory+pids)' if cgroup_active else 'off'}")
    ns_ok = policy.namespaces and (caps.root or caps.userns)
    parts.append(f"namespaces={'on (net unless allowed, ipc, uts)' if ns_ok else 'off'}")
    if policy.landlock and caps.landlock_abi:
        parts.append(f"landlock=on (ABI {caps.landlock_abi}: read-only allowlist, write scratch only, "
                     "tcp denied unless allowed)")
    else:
        why = ("disabled" if not policy.landlock
               else "landlockpy not installed: pip install 'colonyfaas[executor]'"
               if any(n.startswith("landlock:") for n in caps.notes)
               else "unavailable: kernel without Landlock, or its syscalls blocked")
        parts.append(f"landlock=off ({why})")
    if policy.seccomp and caps.seccomp is None:
        parts.append(f"seccomp=on ({len(DENIED_SYSCALLS)} syscalls denied, inet sockets denied unless allowed)")
    else:
        parts.append(f"seccomp=off ({caps.seccomp or 'disabled'})")
    parts.append(f"bwrap={'available, not needed' if caps.bwrap else 'not installed'}")
    return "sandbox: " + ", ".join(parts)


# ---- child side -------------------------------------------------------------------------------

def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _setrlimit(which: int, soft: int, hard: int | None = None) -> None:
    cur_soft, cur_hard = resource.getrlimit(which)
    want_hard = soft if hard is None else hard
    if cur_hard != resource.RLIM_INFINITY:
        want_hard = min(want_hard, cur_hard)  # hard limits can only go down (no CAP_SYS_RESOURCE)
    resource.setrlimit(which, (min(soft, want_hard), want_hard))


_cpu_soft: list[int] = []  # the soft RLIMIT_CPU this process last set (only set_call_cpu changes it)


def set_call_cpu(cpu_seconds: int) -> float:
    """Before each call: allow `cpu_seconds` more CPU time (within the lifetime budget); returns used.

    The limit is only moved when less than `cpu_seconds` is left, rounded to the second the
    kernel counts in, which makes the common call a single getrusage."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    used = ru.ru_utime + ru.ru_stime
    if _cpu_soft and _cpu_soft[0] - used >= cpu_seconds:
        return used
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used) + 1 + cpu_seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    _cpu_soft[:] = [soft]
    return used


def apply(policy: Policy) -> list[str]:
    """Apply every enabled layer to the calling process; returns the layers now active.

    A layer the kernel refuses is skipped and named "<layer>:off(<reason>)" so the parent can log
    it; nothing here raises for a missing layer.
    """
    active: list[str] = []
    root = os.geteuid() == 0
    own_userns = False
    if policy.namespaces:
        from . import _linux

        flags = _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS | (0 if policy.network else _linux.CLONE_NEWNET)
        if not root:
            flags |= _linux.CLONE_NEWUSER
        try:
            _linux.unshare(flags)
            own_userns = not root
            active.append("namespaces")
        except OSError as e:
            active.append(f"namespaces:off({e.strerror})")

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _setrlimit(resource.RLIMIT_NOFILE, policy.nofile)
    _setrlimit(resource.RLIMIT_FSIZE, policy.fsize_mb * MiB)
    _setrlimit(resource.RLIMIT_CPU, policy.cpu_seconds, max(policy.cpu_budget_seconds, policy.cpu_seconds))
    if policy.memory_mb:
        _setrlimit(resource.RLIMIT_AS, _vm_size() + policy.memory_mb * MiB)
    if (policy.uid is not None and root) or (own_userns and _nproc_per_userns()):
        _setrlimit(resource.RLIMIT_NPROC, policy.nproc)
    active.append("rlimits")

    if root:
        active.append(_drop_privileges(policy))
    elif own_userns:
        active.append(_drop_namespace_caps())

    if policy.landlock:
        active.append(_landlock(policy))
    if policy.seccomp:
        active.append(_seccomp(policy, still_root=os.geteuid() == 0))
    return active


def _drop_privileges(policy: Policy) -> str:
    from . import _linux

    keep = frozenset({_linux.CAP_DAC_READ_SEARCH}) if policy.keep_read_search else frozenset()
    _linux.drop_bounding_caps(keep)
    if policy.uid is None:
        _linux.set_caps(frozenset())
        return "caps"
    os.setgroups([])
    os.setresgid(policy.uid, policy.uid, policy.uid)
    _linux.set_keepcaps(bool(keep))
    os.setresuid(policy.uid, policy.uid, policy.uid)
    _linux.set_caps(keep)
    _linux.set_keepcaps(False)
    return "uid"


def _drop_namespace_caps() -> str:
    """Not root, in a user namespace of its own, the worker holds every capability there (over its
    own net, ipc and uts namespaces): drop them all, as a uid-dropped worker has none."""
    from . import _linux

    try:
        _linux.drop_bounding_caps()
        _linux.set_caps(frozenset())
    except OSError as e:
        return f"caps:off({e.strerror})"
    return "caps"


def _landlock(policy: Policy) -> str:
    try:
        import landlockpy
        from landlockpy import AccessFS, AccessNet, Ruleset, Scope

        abi = landlockpy.abi_version()
        if abi < 1:
            return "landlock:off(kernel)"
        read = AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.EXECUTE
        handled_net = AccessNet.NONE if policy.network else AccessNet.BIND_TCP | AccessNet.CONNECT_TCP
        with Ruleset(handled_fs=landlockpy.fs_for_abi(abi), handled_net=handled_net,
                     scoped=Scope.SIGNAL | Scope.ABSTRACT_UNIX_SOCKET) as rs:
            for path in policy.read_paths:
                if os.path.isdir(path):
                    rs.allow_path(path, read)
                elif os.path.exists(path):  # directory rights on a file are EINVAL
                    rs.allow_path(path, AccessFS.READ_FILE | AccessFS.EXECUTE)
            for dev in ("/dev/null", "/dev/zero"):
                if os.path.exists(dev):
                    rs.allow_path(dev, AccessFS.READ_FILE | AccessFS.WRITE_FILE)
            rs.allow_path(policy.scratch, landlockpy.fs_for_abi(abi))
            rs.restrict()
        return "landlock"
    except ImportError:
        return "landlock:off(landlockpy not installed)"
    except OSError as e:
        return f"landlock:off({e})"


def _seccomp(policy: Policy, still_root: bool) -> str:
    try:
        import errno

        import pyseccomp as sc
    except ImportError:
        return "seccomp:off(pyseccomp not installed)"
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        names = DENIED_SYSCALLS + (ROOT_ONLY_DENIED if still_root else ())
        for name in names:
            try:
                f.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError, RuntimeError):
                continue  # not a syscall on this architecture
        if not policy.network:
            for family in (_AF_INET, _AF_INET6, _AF_PACKET):
                f.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.EQ, family))
        f.load()
        return "seccomp"
    except OSError as e:
        return f"seccomp:off({e})"
