"""Functions the reliability suite deploys (a plain file: `faas deploy` reads it)."""

import os
import time


def echo(token: str, x: int, delay: float = 0.05) -> dict:
    """Answer with the caller's token and x², after `delay` s, so calls are in flight when things die."""
    print("echo", token, flush=True)
    time.sleep(delay)
    return {"token": token, "sq": x * x}


def probe(what: str, arg: str = "") -> dict:
    """Report what user code can see and do from inside a worker (used by the security tests)."""
    out: dict = {"what": what}
    if what == "env":
        out["env"] = dict(os.environ)
    elif what == "read":
        try:
            with open(arg, "rb") as f:
                out["read"] = f.read(4096).decode("latin-1")
        except OSError as e:
            out["error"] = f"{type(e).__name__}: {e}"
    elif what == "write":
        try:
            with open(arg, "w") as f:
                f.write("x")
            out["wrote"] = True
        except OSError as e:
            out["error"] = f"{type(e).__name__}: {e}"
    elif what == "cwd":
        out["cwd"] = os.getcwd()
    elif what == "parent_environ":
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as f:
                out["read"] = f.read().decode("latin-1")
        except OSError as e:
            out["error"] = f"{type(e).__name__}: {e}"
    elif what == "scan_environ":
        found = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        found.append(f.read().decode("latin-1"))
                except OSError:
                    pass
        out["read"] = "\n".join(found)
    return out


def flood(mib: int) -> int:
    """Print `mib` MiB of output; the executor must cap what reaches the server."""
    line = "y" * 1023 + "\n"
    for _ in range(mib * 1024):
        os.write(1, line.encode())
    return mib


def fork_bomb(n: int) -> dict:
    """Try to start `n` processes."""
    started, error = 0, ""
    pids = []
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            pids.append(pid)
            started += 1
    except OSError as e:
        error = f"{type(e).__name__}: {e}"
    for pid in pids:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    return {"started": started, "error": error}


def open_files(n: int) -> dict:
    """Try to hold `n` open files."""
    held, error = [], ""
    try:
        for _ in range(n):
            held.append(open(os.devnull))  # noqa: SIM115 - held open on purpose
    except OSError as e:
        error = f"{type(e).__name__}: {e}"
    count = len(held)
    for f in held:
        f.close()
    return {"opened": count, "error": error}


def big_file(mib: int) -> dict:
    """Try to write a `mib` MiB file in the scratch dir."""
    written, error = 0, ""
    chunk = b"z" * (1 << 20)
    try:
        with open("big.bin", "wb") as f:
            for _ in range(mib):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as e:
        error = f"{type(e).__name__}: {e}"
    return {"written_mib": written, "error": error}


def hog(mib: int) -> int:
    """Allocate `mib` MiB."""
    block = bytearray(mib << 20)
    return len(block)


def connect(port: int) -> dict:
    """Open a TCP connection to 127.0.0.1:port."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            return {"connected": True}
    except OSError as e:
        return {"connected": False, "error": f"{type(e).__name__}: {e}"}


def connect_net(port: int) -> dict:
    """The same as `connect`, deployed with --network."""
    return connect(port)


def once(token: str, delay: float) -> str:
    """Say it started (a log line the test waits for), take `delay` s, then answer with the token."""
    print(f"started {token}", flush=True)
    time.sleep(delay)
    return token


def flood_exact() -> int:
    """Print exactly 1 MiB in 1 KiB lines, pause so all of it is read, then print 1 MiB more."""
    line = ("y" * 1023 + "\n").encode()
    for _ in range(1024):
        os.write(1, line)
    time.sleep(0.5)
    for _ in range(1024):
        os.write(1, line)
    return 2
