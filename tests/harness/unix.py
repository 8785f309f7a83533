"""What the kernel says about Unix sockets (/proc/net/unix), for tests of who connects through one."""

from __future__ import annotations

from pathlib import Path


def connected_on(path: str | Path) -> int:
    """Connected sockets bound to this Unix socket path: the server's ends of its clients'
    connections (/proc/net/unix state 03)."""
    rows = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:]]
    return sum(1 for r in rows if len(r) == 8 and r[7] == str(path) and r[5] == "03")
