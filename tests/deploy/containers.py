"""The containers Compose and Kubernetes run from our image: their commands and environment,
checked against the `faas` CLI and against the env names the code reads."""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import itertools
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .validators import IMAGE, ROOT, SETUP_SCRIPT, WORKLOAD_KINDS, Doc, ident

# ---------------------------------------------------------------------------------------------
# Containers that run our image: their argv and environment


@dataclass(frozen=True)
class Container:
    where: str  # "k8s Deployment/faas-gateway" or "compose gateway"
    argv: tuple[str, ...]  # what runs, with our ENTRYPOINT (faas) applied
    env: frozenset[str]  # names the container gets

    @property
    def component(self) -> str:
        """Which code reads this container's environment."""
        if any(a.endswith("setup_colony.py") for a in self.argv[:2]):
            return "setup"
        if self.argv[:1] == ("faas",) and len(self.argv) > 1 and not self.argv[1].startswith("-"):
            return self.argv[1]
        return "cli"


def k8s_containers(docs: Iterable[Doc]) -> Iterator[Container]:
    docs = list(docs)
    data: dict[tuple[str, str], set[str]] = {}
    for d in docs:
        if d.get("kind") in ("ConfigMap", "Secret"):
            keys = set(d.get("data") or {}) | set(d.get("stringData") or {})
            data[(d["kind"], d["metadata"]["name"])] = keys
    for d in docs:
        if d.get("kind") not in WORKLOAD_KINDS:
            continue
        pod = d["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            if not str(c.get("image", "")).split(":")[0].endswith(IMAGE):
                continue
            names = {e["name"] for e in c.get("env", [])}
            for src in c.get("envFrom", []):
                ref = src.get("configMapRef") or src.get("secretRef") or {}
                kind = "ConfigMap" if "configMapRef" in src else "Secret"
                names |= {src.get("prefix", "") + k for k in data.get((kind, ref.get("name")), set())}
            argv = tuple(c["command"]) if "command" in c else ("faas",)
            yield Container(f"k8s {ident(d)}", argv + tuple(c.get("args", [])), frozenset(names))


def compose_containers(model: Mapping[str, Any]) -> Iterator[Container]:
    for name, svc in (model.get("services") or {}).items():
        if not str(svc.get("image", "")).split(":")[0].endswith(IMAGE):
            continue
        entry = svc.get("entrypoint")
        argv = tuple(entry) if entry else ("faas",)
        command = svc.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        yield Container(f"compose {name}", argv + tuple(command), frozenset(svc.get("environment") or {}))


# ---------------------------------------------------------------------------------------------
# Which env names the code reads


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings}


def _module_dir(module: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# Code whose string literals count as "reads this env name", per component. The PostgreSQL
# driver reads PGPASSWORD (libpq convention), so the server's password stays out of argv.
READERS: dict[str, tuple[str, ...]] = {
    "server": ("colonies_server", "asyncpg"),
    "gateway": ("gateway", "sdk"),
    "executor": ("faas_executor", "sdk"),
    "cli": ("deployer", "sdk"),
    "setup": ("deploy/setup_colony.py", "sdk"),
}


@functools.cache
def env_names_read(component: str) -> frozenset[str]:
    """Every string literal (not docstrings) in the code that runs as `component`."""
    names: set[str] = set()
    for source in READERS.get(component, ()):
        if source.endswith(".py"):
            files = [ROOT / source]
        else:
            local = ROOT / source
            base = local if local.is_dir() else _module_dir(source)
            files = sorted(base.rglob("*.py")) if base else []
        for f in files:
            names |= _string_constants(f)
    return frozenset(names)


def unread_env_errors(containers: Iterable[Container]) -> list[str]:
    """Env names a container sets that no code of its component reads (a typo, a stale name)."""
    errors: list[str] = []
    for c in containers:
        for name in sorted(c.env - env_names_read(c.component)):
            errors.append(f"{c.where}: sets {name}, which the {c.component} code never reads")
    return errors


# ---------------------------------------------------------------------------------------------
# The image's commands exist in the CLI


def entry_point_commands() -> dict[str, str]:
    """`faas` subcommands other packages declare in pyproject.toml (name → module:function)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project.get("entry-points", {}).get("colonyfaas.commands", {}))


@dataclass(frozen=True)
class HelpResult:
    returncode: int
    stdout: str
    stderr: str


_help_cache: dict[tuple[str, ...], HelpResult] = {}


def faas_help(words: tuple[str, ...]) -> HelpResult:
    """`faas WORDS --help` through the console script's main(), in-process (argparse prints the
    help and exits before any component reads its environment or starts)."""
    if words not in _help_cache:
        from deployer.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*words, "--help"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        _help_cache[words] = HelpResult(int(code or 0), out.getvalue(), err.getvalue())
    return _help_cache[words]


def _flags(argv: Iterable[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def _flag_documented(flag: str, help_text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


def cli_errors(containers: Iterable[Container]) -> list[str]:
    """Each `faas …` a container runs names a real subcommand, and its flags exist.

    A subcommand whose package is not importable yet is checked against its pyproject.toml entry
    point only; once the package exists, `faas SUB ACTION --help` must succeed and list every flag.
    """
    declared = entry_point_commands()
    checks: list[tuple[Container, tuple[str, ...]]] = []
    for c in containers:
        if c.argv[:1] != ("faas",):
            continue
        words = tuple(itertools.takewhile(lambda a: not a.startswith("-"), c.argv[1:]))
        if not words:
            continue
        module = declared.get(words[0], "deployer.cli:main").split(":")[0]
        if words[0] in declared and not _importable(module):
            continue
        checks.append((c, words))
    errors: list[str] = []
    for c, words in checks:
        rest = c.argv[1:]
        proc = faas_help(words)
        if proc.returncode != 0:
            errors.append(f"{c.where}: `faas {' '.join(words)} --help` failed: {proc.stderr.strip()[-300:]}")
            continue
        for flag in _flags(rest):
            if not _flag_documented(flag, proc.stdout):
                errors.append(f"{c.where}: `faas {' '.join(words)}` has no option {flag}")
    return errors


def setup_script_errors(containers: Iterable[Container]) -> list[str]:
    """The setup containers run the script the image ships, with options it accepts."""
    proc = subprocess.run([sys.executable, str(SETUP_SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=60)
    errors: list[str] = []
    for c in containers:
        if c.component != "setup":
            continue
        if c.argv[:2] != ("python", "/opt/colonyfaas/setup_colony.py"):
            errors.append(f"{c.where}: runs {c.argv[:2]}, not the image's /opt/colonyfaas/setup_colony.py")
        for flag in _flags(c.argv[2:]):
            if not _flag_documented(flag, proc.stdout):
                errors.append(f"{c.where}: setup_colony.py has no option {flag}")
    return errors


def _importable(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
