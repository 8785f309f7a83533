"""Interoperability with pycolonies 1.0.25 through the real server and real S3: files and processes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk import Colonies, Conditions, FuncSpec, ProcessState
from sdk.config import Config
from tests.harness.server import DEV_COLONY, DEV_PRVKEY

COLONY = DEV_COLONY


@pytest.fixture
def both(live: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Colonies]]:
    """A pycolonies client (reads AWS_S3_* from os.environ at call time) and ours (from a mapping)."""
    from pycolonies import Colonies as PyColonies

    env = s3_server.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = Config.from_env({**env, "COLONIES_SERVER_HOST": live.host, "COLONIES_SERVER_PORT": str(live.port),
                           "COLONIES_PRVKEY": DEV_PRVKEY, "COLONIES_COLONY_NAME": COLONY})
    with Colonies.from_config(cfg) as ours:
        yield PyColonies(live.host, live.port), ours


def test_files_uploaded_by_pycolonies_download_with_our_sdk(both: tuple[Any, Colonies]) -> None:
    pc, ours = both
    label = f"/interop-{uuid.uuid4().hex[:8]}"
    theirs = pc.upload_data(COLONY, DEV_PRVKEY, filename="data", data=b"testdata", label=label)
    assert ours.download_bytes(COLONY, label, "data") == b"testdata"
    assert ours.download_bytes(COLONY, label, fileid=theirs["fileid"]) == b"testdata"
    ours.delete_file(COLONY, label, "data")
    assert ours.get_files(COLONY, label) == []


def test_files_uploaded_by_our_sdk_download_with_pycolonies(both: tuple[Any, Colonies], tmp_path: Any) -> None:
    pc, ours = both
    label = f"/interop-{uuid.uuid4().hex[:8]}"
    f = ours.upload_bytes(COLONY, label, "ours.bin", b"\x00binary\xff" * 1000)
    assert f.ref.s3object.accesskey == "" and f.ref.protocol == "s3"
    assert pc.download_data(COLONY, DEV_PRVKEY, label=label, filename="ours.bin") == b"\x00binary\xff" * 1000
    path = pc.download_file(COLONY, DEV_PRVKEY, dst=str(tmp_path), label=label, filename="ours.bin")
    assert Path(path).read_bytes() == b"\x00binary\xff" * 1000
    record = pc.get_file(COLONY, DEV_PRVKEY, label=label, filename="ours.bin")[0]
    assert record["checksum"] == f.checksum and record["checksumalg"] == "SHA256"
    pc.delete_file(COLONY, DEV_PRVKEY, label=label, filename="ours.bin")
    assert ours.get_files(COLONY, label) == []


def test_pycolonies_waits_for_a_process_our_sdk_runs(both: tuple[Any, Colonies]) -> None:
    from pycolonies import func_spec

    pc, ours = both
    submitted = pc.submit_func_spec(func_spec("interop", ["x"], COLONY, "cli"), DEV_PRVKEY)
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(p=pc.wait(submitted, 20, DEV_PRVKEY)))
    waiter.start()
    p = ours.assign(COLONY, 10)
    assert p is not None and p.processid == submitted.processid and p.spec.args == ["x"]
    ours.close(p.processid, ["from our sdk"])
    waiter.join(30)
    assert result["p"].output == ["from our sdk"]


def test_our_wait_on_a_process_pycolonies_fails(both: tuple[Any, Colonies]) -> None:
    pc, ours = both
    submitted = ours.submit(FuncSpec(funcname="interop2", conditions=Conditions(colonyname=COLONY,
                                                                                executortype="cli")))
    result: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: result.update(p=ours.wait(submitted, 20)))
    waiter.start()
    p = pc.assign(COLONY, 10, DEV_PRVKEY)
    pc.fail(p.processid, ["pycolonies says no"], DEV_PRVKEY)
    waiter.join(30)
    assert result["p"].state is ProcessState.FAILED and result["p"].errors == ["pycolonies says no"]


def test_file_paths_and_labels_across_clients(both: tuple[Any, Colonies], tmp_path: Path) -> None:
    pc, ours = both
    label = f"/interop-{uuid.uuid4().hex[:8]}/sub"
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n1,2\n")
    pc.upload_file(COLONY, DEV_PRVKEY, filepath=str(src), label=label)
    ours.upload_file(COLONY, label, src, name="copy.csv")
    out = ours.download_file(COLONY, label, tmp_path / "mine.csv", name="report.csv")
    assert out.read_bytes() == src.read_bytes()
    names = sorted(d["name"] for d in pc.get_files(label, COLONY, DEV_PRVKEY))
    assert names == ["copy.csv", "report.csv"] == sorted(d.name for d in ours.get_files(COLONY, label))
    theirs = {lab["name"]: lab["files"] for lab in pc.get_file_labels(COLONY, DEV_PRVKEY, label, True)}
    assert theirs == {lab.name: lab.files for lab in ours.get_file_labels(COLONY, label, exact=True)}
