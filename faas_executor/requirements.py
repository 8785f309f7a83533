"""A bundle's pip requirements, installed once per executor machine, outside the sandbox.

`faas deploy --requirements FILE` records the requirement lines in the bundle. Before the first
call of such a bundle the executor runs `pip install --target` (with its own interpreter, the one
the workers run) into `<state_dir>/requirements/<key>`, where the key is a hash of the lines and
the Python version: bundles with the same requirements share one install, and a new deploy with
other requirements gets its own. The install is written to a temporary directory and renamed into
place when complete, so a half-finished install is never used; concurrent first calls wait for
one install. Workers get the directory on `sys.path` and may read (never write) it under their
Landlock rules. pip's own environment variables apply (`PIP_INDEX_URL`, `PIP_NO_INDEX`, …).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from .bundle import BundleError

__all__ = ["RequirementsInstaller"]

log = logging.getLogger(__name__)
_DONE = ".installed"


class RequirementsInstaller:
    """Installs requirement sets on demand; `site_for(lines)` is the directory to put on sys.path."""

    def __init__(self, root: str | Path, python: str = sys.executable, timeout: float = 900.0) -> None:
        self.root = Path(root)
        self.python = python
        self.timeout = timeout
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # workers run as other uids and read (only) what is installed here
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def key(self, lines: Sequence[str]) -> str:
        tag = f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}"
        return hashlib.sha256("\n".join([tag, *lines]).encode()).hexdigest()[:32]

    def site_for(self, name: str, lines: Sequence[str]) -> str | None:
        """The installed directory for these requirement lines (None when there are none);
        installs them first if needed. BundleError (saying what pip said) if that fails."""
        if not lines:
            return None
        key = self.key(lines)
        target = self.root / key
        if (target / _DONE).exists():
            return str(target / "site")
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if not (target / _DONE).exists():
                self._install(name, list(lines), target)
        return str(target / "site")

    def _install(self, name: str, lines: list[str], target: Path) -> None:
        tmp = self.root / f".{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        reqfile = tmp / "requirements.txt"
        reqfile.write_text("\n".join(lines) + "\n")
        cmd = [self.python, "-m", "pip", "install", "--target", str(tmp / "site"), "--no-input",
               "--disable-pip-version-check", "--no-warn-script-location", "--quiet", "-r", str(reqfile)]
        what = f"installing the requirements of {name!r} ({', '.join(lines)})"
        log.info("%s", what)
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BundleError(f"{what} timed out after {self.timeout:g} s") from None
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BundleError(f"{what} failed: cannot run pip: {e}") from None
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            said = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
            raise BundleError(f"{what} failed (pip exit {proc.returncode}): " + " | ".join(said[-6:]))
        for root, _dirs, files in os.walk(tmp):  # readable by the workers' uids
            os.chmod(root, 0o755)
            for f in files:
                path = os.path.join(root, f)
                if not os.path.islink(path):
                    os.chmod(path, 0o644 | (os.stat(path).st_mode & 0o111))
        (tmp / _DONE).write_text(f"{time.monotonic() - started:.1f} s\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another executor on this machine finished the same install first
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / _DONE).exists():
                raise BundleError(f"{what} failed: cannot move it into {target}") from None
        log.info("%s: done in %.1f s", what, time.monotonic() - started)
