"""RPC builders for CFS metadata and snapshots (protocol §4.10); labels are normalised to "/a/b"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .call import Call, as_list, as_model, as_none
from .cfs import normalize_label
from .errors import NotFoundError
from .messages import wire
from .models import File, FileData, Label, Snapshot

__all__ = [
    "add_file",
    "create_snapshot",
    "get_file",
    "get_file_by_id",
    "get_file_labels",
    "get_files",
    "get_snapshot",
    "get_snapshots",
    "remove_file",
    "remove_file_by_id",
    "remove_snapshot",
]


def add_file(file: File | Mapping[str, Any], *, prvkey: str | None = None) -> Call[File]:
    """Record a file version; the server assigns `fileid`, `sequencenr` and `added`."""
    return Call({"msgtype": "addfilemsg", "file": wire(file)}, as_model(File), prvkey)


def get_file(colony: str, label: str, name: str, latest: bool = True, *,
             prvkey: str | None = None) -> Call[list[File]]:
    """Versions of label/name, newest first (only the newest when `latest`)."""
    msg = {"msgtype": "getfilemsg", "colonyname": colony, "fileid": "", "label": normalize_label(label),
           "name": name, "latest": latest}
    return Call(msg, as_list(File), prvkey)


def _first_file(payload: Any) -> File:
    files = as_list(File)(payload)
    if not files:
        raise NotFoundError("file not found", 404)
    return files[0]


def get_file_by_id(colony: str, fileid: str, *, prvkey: str | None = None) -> Call[File]:
    msg = {"msgtype": "getfilemsg", "colonyname": colony, "fileid": fileid, "label": "", "name": "",
           "latest": False}
    return Call(msg, _first_file, prvkey)


def get_files(colony: str, label: str, *, prvkey: str | None = None) -> Call[list[FileData]]:
    """One entry (the newest version) per file name under exactly this label."""
    msg = {"msgtype": "getfilesmsg", "colonyname": colony, "label": normalize_label(label)}
    return Call(msg, as_list(FileData), prvkey)


def get_file_labels(colony: str, name: str = "", exact: bool = False, *,
                    prvkey: str | None = None) -> Call[list[Label]]:
    """Labels starting with `name` ("" = all); `exact` = `name` and its sub-labels only."""
    msg = {"msgtype": "getfilelabelsmsg", "colonyname": colony, "name": name, "exact": exact}
    return Call(msg, as_list(Label), prvkey)


def remove_file(colony: str, label: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    """Remove every version's metadata (not the bytes: see the clients' `delete_file`)."""
    msg = {"msgtype": "removefilemsg", "colonyname": colony, "fileid": "", "label": normalize_label(label),
           "name": name}
    return Call(msg, as_none, prvkey)


def remove_file_by_id(colony: str, fileid: str, *, prvkey: str | None = None) -> Call[None]:
    msg = {"msgtype": "removefilemsg", "colonyname": colony, "fileid": fileid, "label": "", "name": ""}
    return Call(msg, as_none, prvkey)


def create_snapshot(colony: str, label: str, name: str, *, prvkey: str | None = None) -> Call[Snapshot]:
    msg = {"msgtype": "createsnapshotmsg", "colonyname": colony, "label": normalize_label(label), "name": name}
    return Call(msg, as_model(Snapshot), prvkey)


def get_snapshot(colony: str, name: str | None = None, snapshotid: str | None = None, *,
                 prvkey: str | None = None) -> Call[Snapshot]:
    """A snapshot by name or by id."""
    if not name and not snapshotid:
        raise ValueError("get_snapshot needs a name or a snapshotid")
    msg = {"msgtype": "getsnapshotmsg", "colonyname": colony, "snapshotid": snapshotid or "",
           "name": name or ""}
    return Call(msg, as_model(Snapshot), prvkey)


def get_snapshots(colony: str, *, prvkey: str | None = None) -> Call[list[Snapshot]]:
    return Call({"msgtype": "getsnapshotsmsg", "colonyname": colony}, as_list(Snapshot), prvkey)


def remove_snapshot(colony: str, name: str, *, prvkey: str | None = None) -> Call[None]:
    msg = {"msgtype": "removesnapshotmsg", "colonyname": colony, "snapshotid": "", "name": name}
    return Call(msg, as_none, prvkey)
