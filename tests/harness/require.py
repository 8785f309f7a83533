"""Skips for missing real components that CI turns into failures.

A test that needs a real component (an S3 server, PostgreSQL, pycolonies, a sandbox layer the
machine must have) calls `require(ok, "what", "how to get it")`. Locally that is a visible skip;
with COLONYFAAS_STRICT=1 (set by .ci/run) the root conftest turns it into a failure, so CI can
never pass without the real component.
"""

from __future__ import annotations

import pytest

PREFIX = "requires "


def require(ok: object, component: str, how: str) -> None:
    """Skip (strict mode: fail) the calling test unless `ok` is truthy."""
    if not ok:
        pytest.skip(f"{PREFIX}{component}: {how}")
