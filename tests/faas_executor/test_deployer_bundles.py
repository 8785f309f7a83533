"""Bundles built by the real deployer (examples/) load and run in the executor's workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faas_executor.bundle import parse_bundle
from faas_executor.pool import WorkerPool

deployer_bundle = pytest.importorskip("deployer.bundle")
inspect_functions = pytest.importorskip("deployer.inspect_functions")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def built() -> Iterator[dict[str, bytes]]:
    """name → bundle bytes for every function in the examples, as `faas deploy` builds them."""
    out: dict[str, bytes] = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        source = inspect_functions.load_source_file(path)
        try:
            for fn in inspect_functions.find_functions(source):
                b = deployer_bundle.build_bundle(source, fn, deployer_bundle.Limits())
                out[b.name] = b.to_bytes()
        finally:
            inspect_functions.unload(source)
    yield out


def test_source_and_cloudpickle_bundles_from_the_deployer_run(built: dict[str, bytes], pool: WorkerPool) -> None:
    convert = parse_bundle("convert", built["convert"])
    describe = parse_bundle("describe", built["describe"])
    triple = parse_bundle("triple", built["triple"])
    assert convert.serializer == "source"
    assert {describe.serializer, triple.serializer} == {"cloudpickle"}
    assert pool.run(convert, [21], {}, timeout=30).value == pytest.approx(69.8)
    assert pool.run(describe, [], {"celsius": 21}, timeout=30).value == {
        "celsius": 21, "fahrenheit": 69.8, "kelvin": 294.15}
    assert pool.run(triple, [7], {}, timeout=30).value == 21
    below = pool.run(describe, [-300], {}, timeout=30)
    assert not below.ok and "below absolute zero" in below.error


ASYNC_FILE = '''
import asyncio

RATE = 9 / 5


async def echo(text: str, delay: float = 0.0) -> str:
    """Echo after a pause."""
    await asyncio.sleep(delay)
    return text


async def fahrenheit(celsius: float) -> float:
    await asyncio.sleep(0)
    return celsius * RATE + 32


async def countdown(n: int):
    for i in range(n, 0, -1):
        await asyncio.sleep(0)
        yield i
'''


def test_async_functions_bundled_by_the_deployer_run(tmp_path: Path, pool: WorkerPool) -> None:
    path = tmp_path / "asyncs.py"
    path.write_text(ASYNC_FILE)
    source = inspect_functions.load_source_file(path)
    try:
        built = {fn.name: deployer_bundle.build_bundle(source, fn, deployer_bundle.Limits()).to_bytes()
                 for fn in inspect_functions.find_functions(source)}
    finally:
        inspect_functions.unload(source)
    echo, fahrenheit, countdown = (parse_bundle(n, built[n]) for n in ("echo", "fahrenheit", "countdown"))
    assert (echo.serializer, fahrenheit.serializer, countdown.serializer) == ("source", "cloudpickle", "source")
    assert pool.run(echo, ["007"], {"delay": 0.01}, timeout=30).value == "007"
    assert pool.run(fahrenheit, [21], {}, timeout=30).value == pytest.approx(69.8)
    assert pool.run(countdown, [3], {}, timeout=30).value == [3, 2, 1]
