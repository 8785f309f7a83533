"""sdk.longrun: settings the long-running CLIs (gateway, executor) share."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sdk.longrun import configure_logging

# A fresh interpreter: basicConfig only configures a root logger without handlers.
SCRIPT = """
import logging, sys
from sdk.longrun import configure_logging
configure_logging(sys.argv[1])
logging.getLogger("httpx").info("HTTP Request: POST /api")
logging.getLogger("httpcore.connection").debug("connect_tcp.started")
logging.getLogger("faas_executor.executor").info("process 0123 convert success")
logging.getLogger("faas_executor.executor").debug("slot details")
logging.getLogger("httpx").warning("HTTP trouble")
"""


def _stderr(level: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, level], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_at_info_the_http_clients_request_lines_are_dropped() -> None:
    err = _stderr("info")
    assert "INFO faas_executor.executor: process 0123 convert success" in err
    assert "WARNING httpx: HTTP trouble" in err
    assert "HTTP Request" not in err
    assert "connect_tcp" not in err and "slot details" not in err


def test_at_debug_they_are_kept() -> None:
    err = _stderr("DEBUG")
    assert "INFO httpx: HTTP Request: POST /api" in err
    assert "DEBUG httpcore.connection: connect_tcp.started" in err
    assert "slot details" in err


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud")
