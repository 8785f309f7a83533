"""Byte stores: LocalStore on tmp_path and S3Store against a real S3 server (weed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sdk.config import Config, S3Config
from sdk.errors import ColoniesConnectionError, ForbiddenError, NotFoundError, StoreError
from sdk.models import Reference, S3Object
from sdk.stores import LocalStore, S3Store, store_from_config
from tests.harness.ports import free_port


def s3_config(s3: Any, **changes: Any) -> S3Config:
    cfg = S3Config(endpoint=s3.endpoint, accesskey=s3.access_key, secretkey=s3.secret_key, bucket=s3.bucket,
                   region=s3.region)
    return S3Config(**{**cfg.__dict__, **changes})


def test_local_store_put_get_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cfs")
    ref = store.put(b"hello")
    assert ref.protocol == "local" and len(ref.s3object.object) == 64
    assert ref.s3object.bucket == str((tmp_path / "cfs").resolve())
    assert store.get(ref) == b"hello"
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 3_000_000)
    ref2 = store.put_path(src)
    store.get_to_path(ref2, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    store.delete(ref)
    store.delete(ref)  # deleting twice is fine
    with pytest.raises(NotFoundError):
        store.get(ref)
    assert not [p for p in (tmp_path / "cfs").iterdir() if p.name.startswith(".upload-")]


def test_local_store_refuses_foreign_and_unsafe_refs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StoreError, match="'s3' store"):
        store.get(Reference(protocol="s3", s3object=S3Object(object="a" * 64)))
    for key in ("../etc/passwd", "", ".."):
        with pytest.raises(StoreError, match="invalid"):
            store.get(Reference(protocol="local", s3object=S3Object(object=key)))


def test_store_from_config() -> None:
    assert store_from_config(Config()) is None
    store = store_from_config(Config(s3=S3Config("127.0.0.1:9", bucket="b")))
    assert isinstance(store, S3Store)
    with pytest.raises(ValueError, match="bucket"):
        S3Store(S3Config("127.0.0.1:9"))


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail
    with pytest.raises(ImportError, match=r"colonyfaas\[s3\]"):
        S3Store(S3Config("127.0.0.1:9", bucket="b"))


def test_s3_put_get_delete_with_pycolonies_layout(s3_server: Any) -> None:
    store = S3Store(s3_config(s3_server))
    ref = store.put(b"testdata")
    o = ref.s3object
    assert ref.protocol == "s3" and len(o.object) == 64 and int(o.object, 16) >= 0
    assert (o.server, o.port, o.tls, o.bucket, o.region) == ("127.0.0.1", s3_server.port, False,
                                                             s3_server.bucket, s3_server.region)
    assert o.accesskey == "" and o.secretkey == ""
    assert store.get(ref) == b"testdata"
    store.delete(ref)
    with pytest.raises(NotFoundError):
        store.get(ref)


def test_s3_files_and_a_new_bucket(s3_server: Any, tmp_path: Path) -> None:
    store = S3Store(s3_config(s3_server, bucket="fresh-bucket-sdk"))
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 40_000)
    ref = store.put_path(src)
    assert ref.s3object.bucket == "fresh-bucket-sdk"
    store.get_to_path(ref, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_s3_reads_follow_the_ref_endpoint(s3_server: Any) -> None:
    # Written through "localhost", read through a store configured with a dead endpoint: the ref wins.
    writer = S3Store(s3_config(s3_server, endpoint=f"localhost:{s3_server.port}"))
    ref = writer.put(b"via ref")
    reader = S3Store(s3_config(s3_server, endpoint=f"127.0.0.1:{free_port()}"))
    assert reader.get(ref) == b"via ref"


def test_s3_errors_are_translated(s3_server: Any) -> None:
    bad = S3Store(s3_config(s3_server, secretkey="wrong"))
    with pytest.raises(ForbiddenError):
        bad.put(b"x")
    dead = S3Store(s3_config(s3_server, endpoint=f"127.0.0.1:{free_port()}"))
    with pytest.raises(ColoniesConnectionError):
        dead.put(b"x")
