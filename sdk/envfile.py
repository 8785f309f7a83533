"""ColonyOS-style env files (`export KEY=value`, `KEY="value"`, comments) parsed into a dict."""

from __future__ import annotations

import os
import re
import shlex

__all__ = ["format_envfile", "load_envfile", "parse_envfile"]

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def _value(raw: str) -> str:
    raw = raw.strip()
    if not raw:
        return ""
    try:
        # shlex handles both quote styles and escapes the way a shell would; `#` starts a comment
        # only after whitespace, as in sh.
        parts = shlex.split(raw, comments=True, posix=True)
    except ValueError:
        return raw.strip("\"'")
    return " ".join(parts)


def parse_envfile(text: str) -> dict[str, str]:
    """KEY -> value for every assignment line; other lines (comments, `unset`, blank) are ignored.
    Later assignments win, as when the file is sourced."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            env[m.group(1)] = _value(m.group(2))
    return env


def load_envfile(path: str | os.PathLike[str]) -> dict[str, str]:
    with open(path, encoding="utf-8") as f:
        return parse_envfile(f.read())


def format_envfile(env: dict[str, str]) -> str:
    """An env file that both `source` and `parse_envfile` read back to `env`."""
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())
