"""A deployed function's bytes from CFS `/faas`, parsed into a frozen `Bundle`.

Two forms are accepted:
- the deployer's JSON bundle (`"format": "colonyfaas-bundle/1"`), serializer `source` or `cloudpickle`;
- anything else is a bare Python source file (what the ColonyOS serverless tutorial uploads with
  pycolonies): it is exec'd and the function is looked up by the file's name.

The checksum (SHA-256 of the exact bytes) identifies a version everywhere in the executor: the disk
cache, the warm-worker key and the logs. Parsing is pure: no I/O, no code is run here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FORMAT", "Bundle", "BundleError", "Limits", "checksum", "parse_bundle"]

FORMAT = "colonyfaas-bundle/1"
Serializer = Literal["source", "cloudpickle", "bare"]
_SERIALIZERS = ("source", "cloudpickle")


class BundleError(ValueError):
    """The bytes stored for a function are not a usable bundle (the message says what is wrong)."""


@dataclass(frozen=True)
class Limits:
    """Per-function limits recorded at deploy time; None = use the executor's default."""

    timeout: float | None = None
    retries: int | None = None
    memory_mb: int | None = None
    network: bool = False


@dataclass(frozen=True)
class Bundle:
    """One version of one deployed function, ready to be shipped to a worker."""

    name: str
    checksum: str
    serializer: Serializer
    code: str
    entrypoint: str
    version: str = ""
    limits: Limits = field(default_factory=Limits)
    python: str | None = None
    cloudpickle: str | None = None
    signature: dict[str, Any] | None = None
    requirements: tuple[str, ...] = ()
    site: str | None = None  # where the executor installed `requirements` (requirements.py)

    @property
    def key(self) -> tuple[str, str]:
        """The warm-worker key: a worker holds exactly one loaded version of one function."""
        return (self.name, self.checksum)

    def to_wire(self) -> dict[str, Any]:
        """What the worker needs to load the function (no limits, no metadata)."""
        wire = {"name": self.name, "checksum": self.checksum, "serializer": self.serializer,
                "code": self.code, "entrypoint": self.entrypoint}
        if self.site:
            wire["site"] = self.site
        return wire


def checksum(data: bytes) -> str:
    """SHA-256 hex digest of bundle bytes."""
    return hashlib.sha256(data).hexdigest()


def parse_bundle(name: str, data: bytes) -> Bundle:
    """Parse the bytes stored under `/faas/<name>`; raise BundleError with the reason if unusable."""
    digest = checksum(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"function {name!r}: stored bytes are not UTF-8 ({e.reason} at byte {e.start})") from e
    doc = _json_object(text)
    if doc is None or doc.get("format") is None:
        # Not our JSON bundle: a bare source file (the ColonyOS tutorial's deploy form).
        return Bundle(name=name, checksum=digest, serializer="bare", code=text, entrypoint=name,
                      version=digest[:16])
    return _from_document(name, digest, doc)


def _json_object(text: str) -> dict[str, Any] | None:
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return None
    try:
        doc = json.loads(stripped)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _from_document(name: str, digest: str, doc: dict[str, Any]) -> Bundle:
    where = f"function {name!r}"
    if doc.get("format") != FORMAT:
        raise BundleError(f"{where}: unsupported bundle format {doc.get('format')!r} (expected {FORMAT!r})")
    serializer = doc.get("serializer")
    if serializer not in _SERIALIZERS:
        raise BundleError(f"{where}: unknown serializer {serializer!r} (expected one of {', '.join(_SERIALIZERS)})")
    code = doc.get("code")
    if not isinstance(code, str) or not code:
        raise BundleError(f"{where}: bundle has no code")
    entrypoint = doc.get("entrypoint") or doc.get("name") or name
    if not isinstance(entrypoint, str):
        raise BundleError(f"{where}: entrypoint must be a string, got {type(entrypoint).__name__}")
    bundled_name = doc.get("name")
    if bundled_name is not None and bundled_name != name:
        raise BundleError(f"{where}: bundle is for function {bundled_name!r}")
    signature = doc.get("signature")
    return Bundle(
        name=name,
        checksum=digest,
        serializer=serializer,
        code=code,
        entrypoint=entrypoint,
        version=str(doc.get("version") or digest[:16]),
        limits=_limits(where, doc.get("limits")),
        python=_opt_str(doc.get("python")),
        cloudpickle=_opt_str(doc.get("cloudpickle")),
        signature=signature if isinstance(signature, dict) else None,
        requirements=_requirements(where, doc.get("requirements")),
    )


def _requirements(where: str, raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise BundleError(f"{where}: requirements must be a list of strings")
    lines = tuple(r.strip() for r in raw if r.strip())
    for line in lines:
        if line.startswith("-") or "\n" in line:
            # An option line could point pip at another index or at a file on the executor.
            raise BundleError(f"{where}: requirement {line!r} is a pip option; only requirement lines are installed")
    return lines


def _limits(where: str, raw: object) -> Limits:
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        raise BundleError(f"{where}: limits must be an object, got {type(raw).__name__}")
    timeout = raw.get("timeout")
    memory = raw.get("memory_mb")
    retries = raw.get("retries")
    for key, value in (("timeout", timeout), ("memory_mb", memory), ("retries", retries)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BundleError(f"{where}: limits.{key} must be a number or null, got {value!r}")
    if timeout is not None and timeout <= 0:
        raise BundleError(f"{where}: limits.timeout must be positive, got {timeout!r}")
    if memory is not None and memory <= 0:
        raise BundleError(f"{where}: limits.memory_mb must be positive, got {memory!r}")
    return Limits(
        timeout=float(timeout) if timeout is not None else None,
        retries=int(retries) if retries is not None else None,
        memory_mb=int(memory) if memory is not None else None,
        network=bool(raw.get("network", False)),
    )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
