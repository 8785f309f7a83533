"""API keys: parsing and the Bearer check (pure)."""

from __future__ import annotations

from gateway.auth import ApiKeys
from gateway.settings import parse_api_keys


def test_no_keys_means_open() -> None:
    assert ApiKeys([]).check(None) is None


def test_bearer_key_checked() -> None:
    keys = ApiKeys(["alpha", "beta"])
    assert keys.check("Bearer beta") is None
    assert keys.check("bearer alpha") is None
    assert keys.check(None) == "missing Authorization header (expected: Bearer <api key>)"
    assert keys.check("Bearer gamma") == "invalid API key"
    assert keys.check("Basic YWxwaGE=") == "Authorization header must be: Bearer <api key>"
    assert keys.check("Bearer ") == "Authorization header must be: Bearer <api key>"


def test_parse_keys_from_env_and_file_text() -> None:
    assert parse_api_keys("a, b,,c") == {"a", "b", "c"}
    assert parse_api_keys("# comment\nk1\n\n  k2  \n") == {"k1", "k2"}
