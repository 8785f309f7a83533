"""Pure CFS helpers: labels, checksums, object keys and File records laid out as pycolonies does."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable

from .errors import ChecksumError
from .models import File, Reference

__all__ = ["CHECKSUM_ALG", "REVISION_ENV", "checksum", "checksum_file", "file_record", "new_object_key", "normalize_label",
           "verify"]

CHECKSUM_ALG = "SHA256"
_CHUNK = 1 << 20

REVISION_ENV = "FAAS_REVISION"
"""FuncSpec `env` key of a FaaS call's revision hint: the checksum of the /faas file the caller
bound the call against (docs/BUNDLE.md, "Revision hint")."""


def normalize_label(label: str) -> str:
    """One leading '/', no trailing '/' ("faas/" -> "/faas", "" -> "/"), as pycolonies' File model."""
    return "/" + label.strip("/")


def new_object_key() -> str:
    """A fresh S3 object key: 64 hex chars in the bucket root (SHA-256 of a random UUID, like pycolonies)."""
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 hex and size of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def file_record(colony: str, label: str, name: str, size: int, digest: str, ref: Reference) -> File:
    """The `addfilemsg` file: the server replaces fileid/sequencenr/added; credentials never sent."""
    ref = ref.model_copy(update={"s3object": ref.s3object.model_copy(update={"accesskey": "", "secretkey": ""})})
    return File(fileid="", colonyname=colony, label=normalize_label(label), name=name, size=size, sequencenr=1,
                checksum=digest, checksumalg=CHECKSUM_ALG, ref=ref)


def verify(file: File, data: bytes | Iterable[bytes]) -> None:
    """Raise ChecksumError unless `data` has the size and SHA-256 recorded in `file`."""
    h = hashlib.sha256()
    size = 0
    for chunk in [data] if isinstance(data, bytes) else data:
        h.update(chunk)
        size += len(chunk)
    where = f"{file.label}/{file.name} (fileid {file.fileid})"
    if file.checksumalg and file.checksumalg.upper() != CHECKSUM_ALG:
        raise ChecksumError(f"{where}: unsupported checksum algorithm {file.checksumalg!r}")
    if file.size and size != file.size:
        raise ChecksumError(f"{where}: got {size} bytes, CFS records {file.size}")
    if file.checksum and h.hexdigest() != file.checksum.lower():
        raise ChecksumError(f"{where}: SHA-256 {h.hexdigest()} does not match the recorded {file.checksum}")
