"""Our Dockerfile rules (a small lint: pinned bases, non-root, `faas` entrypoint), pure functions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf if part.strip())
        buf = []
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    return out


_EXACT_TAG = re.compile(r"^[^:@\s]+:(?P<tag>\d+\.\d+\.\d+[^\s]*)$")
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_INITS = ({"tini", "/usr/bin/tini", "/sbin/tini", "dumb-init", "/usr/bin/dumb-init"}, {"--"})


def dockerfile_errors(text: str) -> list[str]:
    """Our rules: multi-stage, every base pinned to an exact release, a non-root USER in the final
    stage, ENTRYPOINT in exec form running `faas` (optionally behind an init), apt without
    recommends."""
    ins = dockerfile_instructions(text)
    errors: list[str] = []
    froms = [i for i in ins if i.keyword == "FROM"]
    if len(froms) < 2:
        errors.append("not a multi-stage build (one FROM)")
    stages: set[str] = set()
    for f in froms:
        parts = f.args.split()
        image = next((p for p in parts if not p.startswith("--")), "")
        if image.lower() not in stages and not (_EXACT_TAG.match(image) or _DIGEST.match(image)):
            errors.append(f"line {f.line}: base image {image!r} is not pinned to an exact version "
                          "(name:X.Y.Z… or @sha256)")
        if len(parts) >= 3 and parts[-2].upper() == "AS":
            stages.add(parts[-1].lower())
    final = [i for i in ins if froms and i.line > froms[-1].line]
    users = [i for i in final if i.keyword == "USER"]
    if not users:
        errors.append("no USER in the final stage: the image would run as root")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        errors.append(f"line {users[-1].line}: the final USER is root")
    entrypoints = [i for i in final if i.keyword == "ENTRYPOINT"]
    if not entrypoints:
        errors.append("no ENTRYPOINT in the final stage")
    else:
        entry = entrypoints[-1]
        try:
            argv = json.loads(entry.args)
        except json.JSONDecodeError:
            argv = None
        if not isinstance(argv, list) or not argv:
            errors.append(f"line {entry.line}: ENTRYPOINT must be in exec (JSON) form so signals reach faas")
        else:
            while argv and (argv[0] in _INITS[0] or argv[0] in _INITS[1]):
                argv = argv[1:]
            if argv[:1] != ["faas"]:
                errors.append(f"line {entry.line}: ENTRYPOINT runs {argv[:1]}, not faas")
    for i in ins:
        if i.keyword == "RUN" and re.search(r"apt-get\s+install", i.args) and \
                "--no-install-recommends" not in i.args:
            errors.append(f"line {i.line}: apt-get install without --no-install-recommends")
    return errors
