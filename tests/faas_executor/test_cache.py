"""The bundle cache: fetched once per version, verified on disk, corrupt entries dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from faas_executor.bundle import BundleError, checksum
from faas_executor.cache import BundleCache, ChecksumMismatch
from tests.faas_executor.conftest import bundle_bytes

DATA = bundle_bytes("convert", "def convert(c):\n    return c\n")


def test_a_version_is_fetched_once_and_then_served_from_memory_and_disk(tmp_path: Path) -> None:
    fetched: list[int] = []

    def fetch() -> bytes:
        fetched.append(1)
        return DATA

    cache = BundleCache(tmp_path)
    a = cache.get_or_fetch("convert", checksum(DATA), fetch)
    b = cache.get_or_fetch("convert", checksum(DATA), fetch)
    assert a is b and len(fetched) == 1 and cache.fetches == 1
    fresh = BundleCache(tmp_path)  # a restarted executor reads the disk copy
    assert fresh.get_or_fetch("convert", checksum(DATA), fetch) == a
    assert len(fetched) == 1


def test_bytes_that_do_not_match_the_cfs_checksum_are_refused(tmp_path: Path) -> None:
    cache = BundleCache(tmp_path)
    with pytest.raises(ChecksumMismatch, match="CFS says"):
        cache.get_or_fetch("convert", "0" * 64, lambda: DATA)
    assert not list(tmp_path.iterdir())


def test_a_corrupted_disk_copy_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    BundleCache(tmp_path).put("convert", DATA)
    (tmp_path / checksum(DATA)).write_bytes(b"tampered")
    cache = BundleCache(tmp_path)
    assert cache.get("convert", checksum(DATA)) is None
    assert cache.get_or_fetch("convert", checksum(DATA), lambda: DATA).checksum == checksum(DATA)


def test_an_unusable_bundle_is_not_cached(tmp_path: Path) -> None:
    bad = b'{"format": "colonyfaas-bundle/1", "serializer": "marshal", "code": "x"}'
    with pytest.raises(BundleError):
        BundleCache(tmp_path).put("f", bad)
    assert not (tmp_path / checksum(bad)).exists()


def test_checksums_must_be_sha256_hex(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha256"):
        BundleCache(tmp_path).get("f", "../../etc/passwd")
