"""Wire models of the colony file system (protocol §5.10-§5.11): files, their S3 refs, snapshots."""

from __future__ import annotations

from pydantic import Field

from .wire import ZERO_TIME, NullList, Time, WireModel

__all__ = ["File", "FileData", "Label", "Reference", "S3Object", "Snapshot"]


class S3Object(WireModel):
    server: str = ""
    port: int = 0
    tls: bool = False
    accesskey: str = ""
    secretkey: str = ""
    region: str = ""
    encryptionkey: str = ""
    encryptionalg: str = ""
    object: str = ""
    bucket: str = ""


class Reference(WireModel):
    protocol: str = "s3"
    s3object: S3Object = Field(default_factory=S3Object)


class File(WireModel):
    fileid: str = ""
    colonyname: str = ""
    label: str = ""
    name: str = ""
    size: int = 0
    sequencenr: int = 0
    checksum: str = ""
    checksumalg: str = ""
    ref: Reference = Field(default_factory=Reference)
    added: Time = ZERO_TIME


class FileData(WireModel):
    name: str = ""
    checksum: str = ""
    size: int = 0
    s3filename: str = ""


class Label(WireModel):
    name: str = ""
    files: int = 0


class Snapshot(WireModel):
    snapshotid: str = ""
    colonyname: str = ""
    label: str = ""
    name: str = ""
    fileids: NullList[str] = Field(default_factory=list)
    added: Time = ZERO_TIME
