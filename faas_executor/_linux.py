"""Thin ctypes wrappers for the Linux calls Python 3.10/3.11 lacks: capabilities and unshare."""

from __future__ import annotations

import ctypes
import os

__all__ = ["CLONE_NEWIPC", "CLONE_NEWNET", "CLONE_NEWUSER", "CLONE_NEWUTS", "CAP_DAC_READ_SEARCH",
           "drop_bounding_caps", "last_cap", "set_caps", "set_dumpable", "set_keepcaps", "unshare"]

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CAP_DAC_READ_SEARCH = 2

_PR_SET_DUMPABLE = 4
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2) for the calling (single-threaded) process."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def drop_bounding_caps(keep: frozenset[int] = frozenset()) -> None:
    """Remove every capability but `keep` from the bounding set (needs CAP_SETPCAP) and clear ambient."""
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(last_cap() + 1):
        if cap not in keep:
            _check(_libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")


def set_keepcaps(on: bool) -> None:
    _check(_libc.prctl(_PR_SET_KEEPCAPS, 1 if on else 0, 0, 0, 0), "PR_SET_KEEPCAPS")


def set_caps(caps: frozenset[int]) -> None:
    """Make `caps` the effective and permitted set (inheritable empty)."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for cap in caps:
        word, bit = divmod(cap, 32)
        data[word].effective |= 1 << bit
        data[word].permitted |= 1 << bit
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def set_dumpable(on: bool) -> None:
    """PR_SET_DUMPABLE. A process that is not dumpable cannot be ptraced by processes of its own
    uid, and its /proc/<pid>/{environ,mem,…} belong to root. execve resets it."""
    _check(_libc.prctl(_PR_SET_DUMPABLE, 1 if on else 0, 0, 0, 0), "PR_SET_DUMPABLE")
