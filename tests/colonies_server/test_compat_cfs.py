"""Protocol §9 item 11: pycolonies' CFS helpers (bytes in a real S3, metadata in our server)."""

from __future__ import annotations

import hashlib

import pytest

from tests.colonies_server.conftest import World
from tests.harness.s3 import S3Server

try:
    from pycolonies import ColoniesConnectionError
except ImportError:  # pragma: no cover - the conftest's pc fixture skips (strict: fails) without it
    pass


def test_upload_versions_snapshots_delete(world: World, s3_server: S3Server,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)  # pycolonies reads AWS_S3_* at call time
    pc, colony, key = world.pc, world.colony, world.user_key

    first = pc.upload_data(colony, key, filename="data", data=b"testdata", label="/testdata")
    assert len(first["fileid"]) == 64 and first["fileid"] != ""
    assert first["label"] == "/testdata" and first["name"] == "data" and first["size"] == 8
    assert first["checksum"] == hashlib.sha256(b"testdata").hexdigest()
    assert first["ref"]["s3object"]["bucket"] == s3_server.bucket
    assert isinstance(first["sequencenr"], int)
    assert not str(first["added"]).startswith("0001")

    files = pc.get_file(colony, key, label="/testdata", filename="data")
    assert [f["fileid"] for f in files] == [first["fileid"]]
    assert pc.download_data(colony, key, label="/testdata", filename="data") == b"testdata"

    second = pc.upload_data(colony, key, filename="data", data=b"testdata v2", label="/testdata")
    assert second["fileid"] != first["fileid"] and second["sequencenr"] > first["sequencenr"]
    assert [f["fileid"] for f in pc.get_file(colony, key, label="/testdata", filename="data")] \
        == [second["fileid"]]
    both = pc.get_file(colony, key, label="/testdata", filename="data", latest=False)
    assert [f["fileid"] for f in both] == [second["fileid"], first["fileid"]]
    assert pc.download_data(colony, key, label="/testdata", filename="data") == b"testdata v2"
    assert pc.download_data(colony, key, fileid=first["fileid"]) == b"testdata"

    listing = pc.get_files("/testdata", colony, key)
    assert len(listing) == 1
    assert listing[0]["name"] == "data" and listing[0]["size"] == len(b"testdata v2")
    assert listing[0]["checksum"] == hashlib.sha256(b"testdata v2").hexdigest()
    assert listing[0]["s3filename"] == second["ref"]["s3object"]["object"]
    assert pc.get_files("/nothing-here", colony, key) == []
    assert pc.get_file_labels(colony, key) == [{"name": "/testdata", "files": 2}]

    snap = pc.create_snapshot(colony, "/testdata", "snap1", key)
    assert snap["name"] == "snap1" and snap["label"] == "/testdata" and snap["fileids"] == [second["fileid"]]
    assert [s["snapshotid"] for s in pc.get_snapshots(colony, key)] == [snap["snapshotid"]]
    assert pc.get_snapshot_by_name(colony, "snap1", key)["snapshotid"] == snap["snapshotid"]
    assert pc.get_snapshot_by_id(colony, snap["snapshotid"], key)["name"] == "snap1"
    with pytest.raises(ColoniesConnectionError):
        pc.create_snapshot(colony, "/testdata", "snap1", key)  # names are unique per colony

    pc.delete_file(colony, key, label="/testdata", filename="data")
    with pytest.raises(ColoniesConnectionError):
        pc.get_file(colony, key, label="/testdata", filename="data")
    assert pc.get_files("/testdata", colony, key) == []
    assert pc.get_file_labels(colony, key) is None


def test_cfs_refuses_non_members(world: World, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        world.pc.upload_data(world.colony, world.colony_key, filename="x", data=b"x", label="/x")
    with pytest.raises(ColoniesConnectionError, match="Access denied"):
        world.pc.get_file_labels(world.colony, world.colony_key)
