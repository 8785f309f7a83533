"""Pure CFS helpers: labels, keys, checksums and File records in pycolonies' layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sdk.cfs import checksum, checksum_file, file_record, new_object_key, normalize_label, verify
from sdk.errors import ChecksumError
from sdk.models import Reference, S3Object


@pytest.mark.parametrize("label", ["/faas", "faas", "faas/", "//faas//", "/a/b/", "", "/"])
def test_labels_normalise_like_pycolonies_file_model(label: str) -> None:
    import model as pyc

    ref = pyc.Reference(protocol="s3", s3object=pyc.S3Object(
        server="", port=0, tls=False, accesskey="", secretkey="", region="", encryptionkey="",
        encryptionalg="", object="", bucket=""))
    theirs = pyc.File(fileid="", colonyname="", label=label, name="", size=0, sequencenr=0, checksum="",
                      checksumalg="", ref=ref)
    assert normalize_label(label) == theirs.label


def test_object_keys_are_64_hex_and_unique() -> None:
    keys = {new_object_key() for _ in range(100)}
    assert len(keys) == 100 and all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_checksums(tmp_path: Path) -> None:
    data = b"testdata" * 100_000
    path = tmp_path / "f"
    path.write_bytes(data)
    assert checksum(data) == hashlib.sha256(data).hexdigest()
    assert checksum_file(path) == (checksum(data), len(data))


def test_file_record_blanks_credentials_and_normalises() -> None:
    ref = Reference(s3object=S3Object(server="h", port=1, accesskey="AK", secretkey="SK", object="o",
                                      bucket="b"))
    f = file_record("dev", "faas/", "x.py", 3, "c" * 64, ref)
    wire = f.to_wire()
    assert wire["label"] == "/faas" and wire["sequencenr"] == 1 and wire["checksumalg"] == "SHA256"
    assert wire["ref"]["s3object"]["accesskey"] == "" and wire["ref"]["s3object"]["secretkey"] == ""
    assert wire["ref"]["protocol"] == "s3" and wire["fileid"] == ""


def test_verify() -> None:
    ref = Reference()
    f = file_record("dev", "/l", "n", 3, checksum(b"abc"), ref)
    verify(f, b"abc")
    verify(f, iter([b"a", b"bc"]))
    with pytest.raises(ChecksumError, match="SHA-256"):
        verify(f, b"abd")
    with pytest.raises(ChecksumError, match="bytes"):
        verify(f, b"abcd")
    with pytest.raises(ChecksumError, match="algorithm"):
        verify(f.model_copy(update={"checksumalg": "MD5"}), b"abc")
