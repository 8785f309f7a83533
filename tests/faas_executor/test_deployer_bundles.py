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
