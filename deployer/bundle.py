"""The function bundle (format `colonyfaas-bundle/1`, docs/BUNDLE.md): building, versioning,
encoding, decoding (bare pycolonies source files included) and loading it back into a callable."""

from __future__ import annotations

import ast
import base64
import hashlib
import inspect
import json
import platform
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from .errors import BundleError, SerializationError
from .inspect_functions import CLOUDPICKLE, SOURCE, FoundFunction, SourceFile, global_names, plan_function
from .signature import signature_from_source, signature_of

__all__ = [
    "Bundle",
    "FORMAT",
    "LABEL",
    "Limits",
    "NETWORK_MARKER",
    "build_bundle",
    "compute_version",
    "load_entrypoint",
    "network_requested",
    "parse_bundle",
    "utc_now",
]

FORMAT = "colonyfaas-bundle/1"
LABEL = "/faas"
# A file asks for network access for all its functions with `FAAS_NETWORK = True`, or for
# some of them with `FAAS_NETWORK = ["fetch", ...]` (docs/BUNDLE.md).
NETWORK_MARKER = "FAAS_NETWORK"

_EXTRA_HINT = "cloudpickle is needed to deploy this function: pip install 'colonyfaas[deployer]'"


@dataclass(frozen=True)
class Limits:
    """Per-function limits; None means the executor's default."""

    timeout: float | None = None
    retries: int | None = None
    memory_mb: int | None = None
    network: bool = False

    def to_json(self) -> dict[str, Any]:
        timeout = self.timeout
        if timeout is not None and float(timeout).is_integer():
            timeout = int(timeout)  # `--timeout 30` and `--timeout 30.0` are the same version
        return {"timeout": timeout, "retries": self.retries, "memory_mb": self.memory_mb,
                "network": self.network}

    @classmethod
    def from_json(cls, data: Any) -> Limits:
        data = data if isinstance(data, dict) else {}
        return cls(timeout=data.get("timeout"), retries=data.get("retries"),
                   memory_mb=data.get("memory_mb"), network=bool(data.get("network", False)))


@dataclass(frozen=True)
class Bundle:
    """One deployable revision of a function (the JSON document stored under `/faas`)."""

    name: str
    version: str
    entrypoint: str
    serializer: str
    code: str
    python: str | None
    cloudpickle: str | None
    signature: dict[str, Any] | None
    doc: str | None
    limits: Limits
    requirements: tuple[str, ...] = ()
    deployed_at: str | None = None
    # True for a bare source file (the pycolonies tutorial's upload); never written out.
    legacy: bool = field(default=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "name": self.name, "version": self.version,
            "entrypoint": self.entrypoint, "serializer": self.serializer, "code": self.code,
            "python": self.python, "cloudpickle": self.cloudpickle, "signature": self.signature,
            "doc": self.doc, "limits": self.limits.to_json(),
            "requirements": list(self.requirements), "deployed_at": self.deployed_at,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False).encode("utf-8")


def utc_now() -> str:
    """Now as RFC 3339 in UTC with milliseconds, e.g. 2026-11-22T22:10:00.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def compute_version(serializer: str, code: str, entrypoint: str, python: str | None,
                    limits: Limits, requirements: Sequence[str]) -> str:
    """First 16 hex of sha256 over canonical JSON of everything that changes what runs.

    `python` is reduced to major.minor; `deployed_at` is not part of it.
    """
    major_minor = ".".join(python.split(".")[:2]) if python else None
    canonical = json.dumps(
        {"serializer": serializer, "code": code, "entrypoint": entrypoint, "python": major_minor,
         "limits": limits.to_json(), "requirements": list(requirements)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _cloudpickle() -> types.ModuleType:
    try:
        import cloudpickle
    except ImportError:
        raise SerializationError(_EXTRA_HINT) from None
    return cloudpickle


def _candidates(fn: Any) -> Iterator[tuple[str, Any]]:
    """What a function drags into its pickle: closure cells, globals it uses, defaults."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=True):
        try:
            yield f"closure variable {name!r}", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    module_globals = getattr(fn, "__globals__", {})
    for name in global_names(code):
        if name in module_globals:
            yield f"global {name!r}", module_globals[name]
    for i, value in enumerate(fn.__defaults__ or ()):
        yield f"default #{i + 1}", value
    for key, value in (fn.__kwdefaults__ or {}).items():
        yield f"default of {key!r}", value


def _culprit(cp: types.ModuleType, fn: Any, path: str, depth: int = 0) -> str | None:
    """Describe the first object reachable from fn that cannot be pickled, or None."""
    for label, value in _candidates(fn):
        try:
            cp.dumps(value)
        except Exception as e:
            where = f"{path} → {label}"
            if inspect.isfunction(value) and depth < 4:
                deeper = _culprit(cp, value, where, depth + 1)
                if deeper:
                    return deeper
            return f"{where} ({type(value).__name__} object) cannot be pickled: {e}"
    return None


def _pickle(fn: FoundFunction, by_value: Sequence[types.ModuleType]) -> str:
    cp = _cloudpickle()
    registered: list[types.ModuleType] = []
    try:
        for module in by_value:
            cp.register_pickle_by_value(module)
            registered.append(module)
        try:
            return base64.b64encode(cp.dumps(fn.obj)).decode("ascii")
        except Exception as e:
            why = _culprit(cp, fn.obj, repr(fn.name)) or f"{type(e).__name__}: {e}"
            raise SerializationError(f"cannot serialize function {fn.name!r}: {why}") from None
    finally:
        for module in registered:
            cp.unregister_pickle_by_value(module)


def _pickle_identity(source: SourceFile, fn: FoundFunction, cp_version: str) -> str:
    """What the version of a pickled function is computed over.

    Pickle bytes are not reproducible (cloudpickle tags classes with random ids, set order
    follows the hash seed), so the version covers the source they were built from instead:
    the file, the local modules pickled with it, and the cloudpickle major.minor.
    """
    h = hashlib.sha256(source.text.encode("utf-8"))
    for module in sorted(source.local_modules, key=lambda m: m.__name__):
        h.update(b"\0" + module.__name__.encode() + b"\0")
        try:
            with open(module.__file__ or "", "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"<unreadable>")
    major_minor = ".".join(cp_version.split(".")[:2])
    return f"sha256:{h.hexdigest()};binding={fn.name};cloudpickle={major_minor}"


def network_requested(source: SourceFile, name: str) -> bool:
    """The file's `FAAS_NETWORK` marker: True (every function) or a list of function names."""
    marker = source.module.__dict__.get(NETWORK_MARKER, False)
    if isinstance(marker, bool):
        return marker
    if isinstance(marker, str):
        return marker == name
    if isinstance(marker, (list, tuple, set, frozenset)):
        return name in marker
    return False


def build_bundle(source: SourceFile, fn: FoundFunction, limits: Limits,
                 requirements: Sequence[str] = (), deployed_at: str | None = None) -> Bundle:
    """Serialize one function of a loaded file into a bundle (pure: no network, no disk writes)."""
    if not limits.network and network_requested(source, fn.name):
        limits = replace(limits, network=True)
    plan = plan_function(source, fn)
    python = platform.python_version()
    if plan.serializer == SOURCE:
        assert fn.node is not None
        # The def's lines from the text that was parsed (what inspect.getsource gives for an
        # undecorated top-level def, without re-reading a file that may have changed since).
        lines = source.text.splitlines()[fn.node.lineno - 1:fn.node.end_lineno]
        body = "\n".join(lines).rstrip()
        code = "\n".join(plan.imports) + ("\n\n\n" if plan.imports else "") + body + "\n"
        entrypoint, cp_version, identity = fn.node.name, None, code
    else:
        code = _pickle(fn, plan.by_value)
        cp_version = str(_cloudpickle().__version__)
        entrypoint, identity = fn.name, _pickle_identity(source, fn, cp_version)
    reqs = tuple(requirements)
    version = compute_version(plan.serializer, identity, entrypoint, python, limits, reqs)
    return Bundle(name=fn.name, version=version, entrypoint=entrypoint, serializer=plan.serializer,
                  code=code, python=python, cloudpickle=cp_version, signature=signature_of(fn.obj),
                  doc=inspect.getdoc(fn.obj), limits=limits, requirements=reqs,
                  deployed_at=deployed_at)


def _from_json(name: str, data: dict[str, Any]) -> Bundle:
    if data.get("format") != FORMAT:
        raise BundleError(f"/faas/{name}: unsupported bundle format {data.get('format')!r}")
    try:
        return Bundle(
            name=str(data.get("name") or name), version=str(data["version"]),
            entrypoint=str(data.get("entrypoint") or name), serializer=str(data["serializer"]),
            code=str(data["code"]), python=data.get("python"), cloudpickle=data.get("cloudpickle"),
            signature=data.get("signature"), doc=data.get("doc"),
            limits=Limits.from_json(data.get("limits")),
            requirements=tuple(str(r) for r in data.get("requirements") or ()),
            deployed_at=data.get("deployed_at"))
    except KeyError as e:
        raise BundleError(f"/faas/{name}: bundle lacks the field {e.args[0]!r}") from None


def _from_source(name: str, text: str) -> Bundle:
    """A bare Python source file under `/faas` (the ColonyOS serverless tutorial's upload)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise BundleError(f"/faas/{name} is neither a bundle nor valid Python "
                          f"(line {e.lineno}: {e.msg})") from None
    node = next((s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and s.name == name), None)
    limits = Limits()
    return Bundle(name=name, version=compute_version(SOURCE, text, name, None, limits, ()),
                  entrypoint=name, serializer=SOURCE, code=text, python=None, cloudpickle=None,
                  signature=signature_from_source(text, name),
                  doc=ast.get_docstring(node) if node is not None else None,
                  limits=limits, legacy=True)


def parse_bundle(name: str, data: bytes) -> Bundle:
    """Decode the bytes stored as `/faas/<name>`: a bundle, or a bare Python source file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"/faas/{name} is neither a bundle nor a Python source file") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        # Same rule as the executor: only a JSON object with a `format` field is a bundle.
        if isinstance(doc, dict) and doc.get("format") is not None:
            return _from_json(name, doc)
    return _from_source(name, text)


def load_entrypoint(bundle: Bundle) -> Callable[..., Any]:
    """The callable a bundle carries: exec the source in a fresh module, or unpickle it.

    The reference of what an executor does with a bundle (docs/BUNDLE.md); it runs the
    bundle's code in this process, so only call it where that is intended.
    """
    if bundle.serializer == SOURCE:
        module = types.ModuleType(f"faas_{bundle.name}")
        exec(compile(bundle.code, f"<faas:{bundle.name}>", "exec"), module.__dict__)
        try:
            fn = module.__dict__[bundle.entrypoint]
        except KeyError:
            raise BundleError(f"/faas/{bundle.name} defines no {bundle.entrypoint!r}") from None
        return fn  # type: ignore[no-any-return]
    if bundle.serializer == CLOUDPICKLE:
        return _cloudpickle().loads(base64.b64decode(bundle.code))  # type: ignore[no-any-return]
    raise BundleError(f"/faas/{bundle.name}: unknown serializer {bundle.serializer!r}")
