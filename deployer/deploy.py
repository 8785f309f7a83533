"""Functions in the Colony file system: deploy, list, revisions, remove, roll back.

One CFS file per function under the label `/faas`, one revision per deployed version. Every
SDK error is translated here, at one boundary, into a deployer error naming the URL or key.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sdk import (
    ChecksumError,
    Colonies,
    ColoniesConnectionError,
    ColoniesError,
    ColoniesTimeoutError,
    File,
    ForbiddenError,
    NotFoundError,
    StoreError,
    id_from_prvkey,
)

from .bundle import LABEL, Bundle, parse_bundle
from .errors import BundleError, DeployerError, FunctionNotFoundError, NotMemberError, UnreachableError
from .render import human_size

__all__ = [
    "DeployResult",
    "FunctionInfo",
    "LARGE_BUNDLE",
    "Revision",
    "Target",
    "deploy_bundles",
    "describe",
    "latest_bundle",
    "list_functions",
    "remove_function",
    "revisions",
    "rollback",
    "sdk_errors",
]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
T = TypeVar("T")
R = TypeVar("R")
# Bundles this big get a line when their upload is done, and a hint about what they capture.
LARGE_BUNDLE = 1 << 20
# Listing N functions is N metadata reads and N downloads: overlap them.
PARALLEL_READS = 8


def _parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """fn over items, in order, on a few threads (the SDK clients are thread-safe)."""
    todo = list(items)
    if len(todo) <= 1:
        return [fn(x) for x in todo]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(todo)), thread_name_prefix="faas-read") as pool:
        return list(pool.map(fn, todo))


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Target:
    """Where functions live: a client bound to a key, and the colony."""

    client: Colonies
    colony: str
    s3_url: str | None = None

    @property
    def server_url(self) -> str:
        return self.client.url


@dataclass(frozen=True)
class DeployResult:
    name: str
    version: str
    state: str  # "new" (first deploy), "updated" (new version), "unchanged", "rolled back"
    serializer: str
    size: int


@dataclass(frozen=True)
class Revision:
    """One stored revision of a function; `bundle` is None (and `error` says why) when its
    bytes cannot be read as a bundle."""

    file: File
    bundle: Bundle | None
    error: str | None = None

    @property
    def version(self) -> str:
        return self.bundle.version if self.bundle else "-"

    @property
    def serializer(self) -> str:
        if self.bundle is None:
            return "unreadable"
        return "source (bare)" if self.bundle.legacy else self.bundle.serializer

    @property
    def deployed_at(self) -> str:
        if self.bundle is not None and self.bundle.deployed_at:
            return self.bundle.deployed_at
        return self.file.added.isoformat() if hasattr(self.file.added, "isoformat") else str(self.file.added)


@dataclass(frozen=True)
class FunctionInfo:
    """A function in a listing: its newest revision and how many revisions it has."""

    name: str
    latest: Revision
    revisions: int


@contextlib.contextmanager
def sdk_errors(target: Target) -> Iterator[None]:
    """Translate SDK errors into deployer errors that say which URL or key is at fault."""
    try:
        yield
    except DeployerError:
        raise
    except ColoniesError as e:
        raise _translate(target, e) from None
    except OSError as e:  # a local-directory store reports its failures as OS errors
        raise DeployerError(f"the file store failed: {e}") from None


def _translate(target: Target, e: ColoniesError) -> DeployerError:
    text = e.message
    from_s3 = text.startswith("S3:")
    where = f"the S3 store at {target.s3_url}" if from_s3 and target.s3_url else (
        "the S3 store" if from_s3 else f"the Colonies server at {target.server_url}")
    if isinstance(e, (ColoniesConnectionError, ColoniesTimeoutError)):
        return UnreachableError(f"cannot reach {where}: {text}")
    if isinstance(e, StoreError) and "no file store" in text:
        return DeployerError("no S3 store configured: set AWS_S3_ENDPOINT, AWS_S3_ACCESSKEY, "
                             "AWS_S3_SECRETKEY and AWS_S3_BUCKET (or use --env-file)")
    if isinstance(e, ForbiddenError) and not from_s3:
        try:
            who = f"the key {id_from_prvkey(target.client.prvkey)}"
        except ValueError:
            who = "the configured key"
        return NotMemberError(f"{who} is not a member of colony {target.colony!r} on "
                              f"{target.server_url} (server said: {text})")
    if isinstance(e, ForbiddenError):
        return DeployerError(f"{where} refused the credentials: {text}")
    return DeployerError(f"{where}: {e}")


def _revisions(target: Target, name: str) -> list[File]:
    """Every revision of /faas/<name>, newest first ([] when none)."""
    try:
        files = target.client.get_file(target.colony, LABEL, name, False)
    except NotFoundError:
        return []
    return sorted(files, key=lambda f: f.sequencenr, reverse=True)


def _load(target: Target, name: str, file: File) -> Revision:
    data = target.client.download_bytes(target.colony, LABEL, fileid=file.fileid)
    return Revision(file, parse_bundle(name, data))


def _load_for_listing(target: Target, name: str, file: File) -> Revision:
    """Like _load, but an unreadable revision is listed with its error instead of failing the
    whole listing."""
    try:
        return _load(target, name, file)
    except (BundleError, ChecksumError, NotFoundError) as e:
        return Revision(file, None, str(e))


def _latest(target: Target, name: str) -> Revision | None:
    try:
        files = target.client.get_file(target.colony, LABEL, name, True)
    except NotFoundError:
        return None
    return _load(target, name, files[0]) if files else None


def _current_version(target: Target, name: str) -> str | None:
    """The newest revision's version; None when there is none, "" when it cannot be read (a
    deploy then simply stores a new revision over it)."""
    try:
        latest = _latest(target, name)
    except (BundleError, ChecksumError) as e:
        log.warning("the newest revision of %s is unreadable (%s); deploying over it", name, e)
        return ""
    except NotFoundError as e:  # the record exists but its bytes are gone
        log.warning("the newest revision of %s has no bytes (%s); deploying over it", name, e)
        return ""
    return latest.version if latest else None


def _undo(target: Target, done: Sequence[tuple[Bundle, File, bool]]) -> None:
    """Take back the revisions uploaded by a deploy that failed half-way.

    The CFS records go first (they are what makes a revision visible), then the bytes, best
    effort: the store may be what failed.
    """
    client = target.client
    for bundle, file, first in reversed(done):
        try:
            if first:
                client.remove_file(target.colony, LABEL, bundle.name)
            else:
                client.remove_file_by_id(target.colony, file.fileid)
        except ColoniesError as e:  # we are already failing; say what is left behind
            log.warning("could not undo revision %s of %s: %s", file.fileid, bundle.name, e)
            continue
        try:
            if client.store is not None:
                client.store.delete(file.ref)
        except (ColoniesError, OSError) as e:
            log.warning("bytes of the undone revision %s of %s are left in the store: %s",
                        file.fileid, bundle.name, e)


def deploy_bundles(target: Target, bundles: Sequence[Bundle], progress: Progress = _quiet) -> list[DeployResult]:
    """Store every bundle whose version differs from its function's latest revision.

    All or nothing: the current versions are read first (which also proves the server is
    reachable and the key is a member); if an upload then fails, the revisions this call
    added are removed again before the error is raised.
    """
    with sdk_errors(target):
        versions = _parallel(lambda b: _current_version(target, b.name), bundles)
        current = dict(zip((b.name for b in bundles), versions, strict=True))
        done: list[tuple[Bundle, File, bool]] = []
        results: list[DeployResult] = []
        try:
            for bundle in bundles:
                data = bundle.to_bytes()
                before = current[bundle.name]
                if before == bundle.version:
                    results.append(DeployResult(bundle.name, bundle.version, "unchanged", bundle.serializer, len(data)))
                    continue
                progress(f"uploading {bundle.name} {bundle.version} ({human_size(len(data))}, {bundle.serializer})")
                started = time.monotonic()
                file = target.client.upload_bytes(target.colony, LABEL, bundle.name, data)
                if len(data) >= LARGE_BUNDLE:
                    progress(f"uploaded {bundle.name} in {time.monotonic() - started:.1f} s")
                done.append((bundle, file, before is None))
                log.info("deployed %s version %s as file %s", bundle.name, bundle.version, file.fileid)
                results.append(DeployResult(bundle.name, bundle.version, "new" if before is None else "updated",
                                            bundle.serializer, len(data)))
        except BaseException:
            _undo(target, done)
            raise
    return results


def list_functions(target: Target) -> list[FunctionInfo]:
    """Every function under /faas with its latest revision and number of revisions."""
    def one(name: str) -> FunctionInfo | None:
        files = _revisions(target, name)
        # One unreadable file must not hide the others.
        return FunctionInfo(name, _load_for_listing(target, name, files[0]), len(files)) if files else None

    with sdk_errors(target):
        names = sorted(d.name for d in target.client.get_files(target.colony, LABEL))
        return [info for info in _parallel(one, names) if info is not None]


def revisions(target: Target, name: str) -> list[Revision]:
    """Every revision of one function, newest first."""
    with sdk_errors(target):
        files = _revisions(target, name)
        if not files:
            raise FunctionNotFoundError(f"no function {name!r} is deployed (see `faas ls`)")
        return _parallel(lambda f: _load_for_listing(target, name, f), files)


def remove_function(target: Target, name: str) -> int:
    """Delete every revision of a function, bytes included; the number of revisions removed."""
    with sdk_errors(target):
        files = _revisions(target, name)
        if not files:
            raise FunctionNotFoundError(f"no function {name!r} is deployed (see `faas ls`)")
        target.client.delete_file(target.colony, LABEL, name)
        log.info("removed %s (%d revisions)", name, len(files))
        return len(files)


def rollback(target: Target, name: str, version: str) -> DeployResult:
    """Make an earlier revision the newest again by uploading its bytes once more.

    `version` may be a unique prefix of at least 4 hex digits.
    """
    with sdk_errors(target):
        revs = revisions(target, name)
        readable = [r for r in revs if r.bundle is not None]
        matches = {r.version: r for r in reversed(readable) if r.version.startswith(version)}
        if len(version) < 4 or not matches:
            known = ", ".join(dict.fromkeys(r.version for r in readable))
            raise FunctionNotFoundError(f"{name} has no version {version!r} (versions: {known})")
        if len(matches) > 1:
            raise DeployerError(f"version prefix {version!r} of {name} is ambiguous: {', '.join(matches)}")
        (chosen,) = matches.values()
        data = target.client.download_bytes(target.colony, LABEL, fileid=chosen.file.fileid)
        if revs[0].version == chosen.version:
            return DeployResult(name, chosen.version, "unchanged", chosen.serializer, len(data))
        target.client.upload_bytes(target.colony, LABEL, name, data)
        log.info("rolled %s back to version %s", name, chosen.version)
        return DeployResult(name, chosen.version, "rolled back", chosen.serializer, len(data))


def latest_bundle(target: Target, name: str) -> Bundle:
    """The newest revision's bundle of a function."""
    with sdk_errors(target):
        latest = _latest(target, name)
    if latest is None or latest.bundle is None:
        raise FunctionNotFoundError(f"no function {name!r} is deployed (see `faas ls`)")
    return latest.bundle


def describe(info: FunctionInfo) -> dict[str, Any]:
    """A function as a JSON-ready dict for `faas ls --json`."""
    b = info.latest.bundle
    if b is None:
        return {"name": info.name, "version": None, "revisions": info.revisions, "error": info.latest.error}
    return {"name": info.name, "version": b.version, "serializer": b.serializer,
            "deployed_at": info.latest.deployed_at, "revisions": info.revisions,
            "signature": b.signature, "doc": b.doc, "limits": b.limits.to_json(), "legacy": b.legacy}
