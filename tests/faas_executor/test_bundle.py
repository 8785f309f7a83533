"""Bundle parsing: the deployer's JSON format, bare tutorial sources, and clear errors."""

from __future__ import annotations

import json

import pytest

from faas_executor.bundle import Bundle, BundleError, Limits, checksum, parse_bundle
from tests.faas_executor.conftest import bundle_bytes


def test_source_bundle_is_parsed_with_limits_and_checksum() -> None:
    data = bundle_bytes("convert", "def convert(c):\n    return c\n", limits={"timeout": 2, "memory_mb": 128})
    b = parse_bundle("convert", data)
    assert b.serializer == "source"
    assert b.entrypoint == "convert"
    assert b.version == "v-convert"
    assert b.checksum == checksum(data)
    assert b.limits == Limits(timeout=2.0, retries=None, memory_mb=128, network=False)
    assert b.key == ("convert", checksum(data))


def test_bare_source_is_the_tutorial_form() -> None:
    data = b"def convert(celsius):\n    return (celsius * 9/5) + 32\n"
    b = parse_bundle("convert", data)
    assert (b.serializer, b.entrypoint, b.code) == ("bare", "convert", data.decode())
    assert b.limits == Limits()


def test_json_without_format_is_treated_as_source() -> None:
    # A source file may legitimately be a dict literal; only our format marker makes it a bundle.
    assert parse_bundle("f", b'{"a": 1}').serializer == "bare"


@pytest.mark.parametrize(("patch", "message"), [
    ({"format": "colonyfaas-bundle/9"}, "unsupported bundle format"),
    ({"serializer": "marshal"}, "unknown serializer 'marshal'"),
    ({"code": ""}, "has no code"),
    ({"name": "other"}, "bundle is for function 'other'"),
    ({"limits": {"timeout": -1}}, "limits.timeout must be positive"),
    ({"limits": {"memory_mb": "lots"}}, "limits.memory_mb must be a number"),
    ({"limits": []}, "limits must be an object"),
    ({"requirements": "numpy"}, "requirements must be a list of strings"),
    ({"requirements": ["--index-url=http://evil.example/simple"]}, "is a pip option"),
    ({"requirements": ["-r /etc/passwd"]}, "is a pip option"),
])
def test_bad_bundles_name_what_is_wrong(patch: dict[str, object], message: str) -> None:
    doc = json.loads(bundle_bytes("f", "def f(): pass\n"))
    doc.update(patch)
    with pytest.raises(BundleError, match=message):
        parse_bundle("f", json.dumps(doc).encode())


def test_non_utf8_bytes_are_rejected() -> None:
    with pytest.raises(BundleError, match="not UTF-8"):
        parse_bundle("f", b"\xff\xfe")


def test_wire_form_carries_only_what_the_worker_needs() -> None:
    b = parse_bundle("f", bundle_bytes("f", "def f(): pass\n"))
    assert set(b.to_wire()) == {"name", "checksum", "serializer", "code", "entrypoint"}
    assert isinstance(b, Bundle)
