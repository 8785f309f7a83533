"""CFS metadata: file versions under labels, labels, and snapshots (bytes live in S3, never here)."""

from __future__ import annotations

from typing import Any

from ..errors import RPCError
from ..procs import new_id
from ..registry import rpc
from ..roles import require_member
from ..runtime import Runtime
from ..timeutil import fmt_time
from .fields import get_bool, get_int, get_obj, get_str

__all__: list[str] = []


def _label(label: str) -> str:
    """"a/b/" → "/a/b" (what pycolonies sends), "" → "/"."""
    return "/" + label.strip("/")


def _s3(o: Any) -> dict[str, Any]:
    o = o if isinstance(o, dict) else {}
    return {"server": get_str(o, "server"), "port": get_int(o, "port", 0), "tls": get_bool(o, "tls"),
            "accesskey": get_str(o, "accesskey"), "secretkey": get_str(o, "secretkey"),
            "region": get_str(o, "region"), "encryptionkey": get_str(o, "encryptionkey"),
            "encryptionalg": get_str(o, "encryptionalg"), "object": get_str(o, "object"),
            "bucket": get_str(o, "bucket")}


@rpc("addfilemsg")
async def add_file(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    f = get_obj(msg, "file")
    ref: dict[str, Any] = f["ref"] if isinstance(f.get("ref"), dict) else {}
    file: dict[str, Any] = {"fileid": new_id(), "colonyname": get_str(f, "colonyname"), "label": _label(get_str(f, "label")),
            "name": get_str(f, "name", max_len=4096), "size": get_int(f, "size", 0), "sequencenr": 0,
            "checksum": get_str(f, "checksum"), "checksumalg": get_str(f, "checksumalg"),
            "ref": {"protocol": get_str(ref, "protocol"), "s3object": _s3(ref.get("s3object"))},
            "added": fmt_time(rt.now_ns())}
    if not file["name"]:
        raise RPCError(400, "Failed to add file, empty name")

    def op(tx: Any) -> Any:
        require_member(tx, file["colonyname"], signer)
        file["sequencenr"] = tx.next_seq("file_sequencenr")
        tx.add_file(file)
        return file
    return await rt.store.write(op)


@rpc("getfilemsg")
async def get_file(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, fid = msg.get("colonyname"), get_str(msg, "fileid")
    label, name, latest = get_str(msg, "label"), get_str(msg, "name"), get_bool(msg, "latest")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        if fid:
            f = tx.get_file_by_id(colony, fid)
            if f is None:
                raise RPCError(400, f"Failed to get file, file with id {fid} not found")
            return [f]
        if not (label and name):
            raise RPCError(500, "Failed to get file, malformatted get file msg (need fileid or label and name)")
        files = tx.get_file_versions(colony, _label(label), name)
        if not files:
            raise RPCError(404, f"Failed to get file, no file {name} in label {_label(label)}")
        return files[:1] if latest else files
    return await rt.store.read(q)


@rpc("getfilesmsg")
async def get_files(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, label = msg.get("colonyname"), _label(get_str(msg, "label"))

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return [{"name": f["name"], "checksum": f["checksum"], "size": f["size"],
                 "s3filename": f["ref"]["s3object"]["object"]} for f in tx.latest_files_under(colony, label, False)]
    return await rt.store.read(q)


@rpc("getfilelabelsmsg")
async def get_file_labels(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, name, exact = msg.get("colonyname"), get_str(msg, "name"), get_bool(msg, "exact")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        labels = tx.file_labels(colony)
        if name:
            base = _label(name)
            if exact:
                if not any(lb == base for lb, _ in labels):
                    return None
                labels = [(lb, n) for lb, n in labels if lb == base or lb.startswith(base.rstrip("/") + "/")]
            else:
                labels = [(lb, n) for lb, n in labels if lb.startswith(base)]
        return [{"name": lb, "files": n} for lb, n in labels] or None
    return await rt.store.read(q)


@rpc("removefilemsg")
async def remove_file(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, fid = msg.get("colonyname"), get_str(msg, "fileid")
    label, name = get_str(msg, "label"), get_str(msg, "name")
    if not fid and not (label and name):
        raise RPCError(400, "Failed to remove file, need fileid or label and name")

    def op(tx: Any) -> Any:
        require_member(tx, colony, signer)
        tx.remove_file(colony, fileid=fid, label=_label(label) if label else "", name=name)
        return {}
    return await rt.store.write(op)


@rpc("createsnapshotmsg")
async def create_snapshot(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, label, name = msg.get("colonyname"), _label(get_str(msg, "label")), get_str(msg, "name")
    now = rt.now_ns()

    def op(tx: Any) -> Any:
        require_member(tx, colony, signer)
        if tx.get_snapshot(colony, name=name) is not None:
            raise RPCError(500, f"Failed to create snapshot, a snapshot with name {name} already exists")
        files = tx.latest_files_under(colony, label, True)
        snap = {"snapshotid": new_id(), "colonyname": colony, "label": label, "name": name,
                "fileids": [f["fileid"] for f in files] or None, "added": fmt_time(now)}
        tx.add_snapshot(snap)
        return snap
    return await rt.store.write(op)


@rpc("getsnapshotmsg")
async def get_snapshot(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, sid, name = msg.get("colonyname"), get_str(msg, "snapshotid"), get_str(msg, "name")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        s = tx.get_snapshot(colony, snapshotid=sid, name=name) if (sid or name) else None
        if s is None:
            raise RPCError(500, "Failed to get snapshot, snapshot not found")
        return s
    return await rt.store.read(q)


@rpc("getsnapshotsmsg")
async def get_snapshots(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony = msg.get("colonyname")

    def q(tx: Any) -> Any:
        require_member(tx, colony, signer)
        return tx.list_snapshots(colony) or None
    return await rt.store.read(q)


@rpc("removesnapshotmsg")
async def remove_snapshot(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony, sid, name = msg.get("colonyname"), get_str(msg, "snapshotid"), get_str(msg, "name")
    if not sid and not name:
        raise RPCError(400, "Failed to remove snapshot, need snapshotid or name")

    def op(tx: Any) -> Any:
        require_member(tx, colony, signer)
        if not tx.remove_snapshots(colony, snapshotid=sid, name=name):
            raise RPCError(500, "Failed to remove snapshot, snapshot not found")
        return {}
    return await rt.store.write(op)


@rpc("removeallsnapshotmsg")
async def remove_all_snapshots(rt: Runtime, signer: str, msg: dict[str, Any]) -> Any:
    colony = msg.get("colonyname")

    def op(tx: Any) -> Any:
        require_member(tx, colony, signer)
        tx.remove_snapshots(colony, everything=True)
        return {}
    return await rt.store.write(op)
