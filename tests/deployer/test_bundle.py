"""Bundles: contents, versions, encoding, bare source files, and running them in a fresh interpreter."""

from __future__ import annotations

import base64
import json
import platform
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import pytest

from deployer.bundle import (
    FORMAT,
    Bundle,
    Limits,
    build_bundle,
    compute_version,
    load_entrypoint,
    parse_bundle,
)
from deployer.errors import BundleError, SerializationError
from deployer.inspect_functions import SourceFile, find_functions, load_source_file, unload
from tests.deployer.conftest import run_fresh

Load = Callable[..., SourceFile]
ROOT = Path(__file__).resolve().parents[2]

CONVERT = '''
import math


def convert(celsius: float) -> float:
    """Celsius to Fahrenheit."""
    return (celsius * 9 / 5) + 32


def hyp(a, b=4):
    return math.sqrt(a * a + b * b)
'''


def bundles(source: SourceFile, limits: Limits = Limits(), reqs: tuple[str, ...] = ()) -> dict[str, Bundle]:
    return {f.name: build_bundle(source, f, limits, reqs, "2026-11-22T22:00:00.000Z")
            for f in find_functions(source)}


def test_source_bundle_records_everything(load: Load) -> None:
    b = bundles(load(CONVERT), Limits(timeout=30, retries=2, memory_mb=256), ("requests==2.32.3",))["convert"]
    doc = json.loads(b.to_bytes())
    assert doc["format"] == FORMAT
    assert doc["name"] == doc["entrypoint"] == "convert"
    assert doc["serializer"] == "source"
    assert doc["code"].startswith("def convert(celsius: float) -> float:")
    assert doc["python"] == platform.python_version()
    assert doc["cloudpickle"] is None
    assert doc["signature"] == {"parameters": [{
        "name": "celsius", "kind": "POSITIONAL_OR_KEYWORD", "has_default": False, "default": None,
        "default_repr": None, "annotation": "float"}], "return": "float"}
    assert doc["doc"] == "Celsius to Fahrenheit."
    assert doc["limits"] == {"timeout": 30, "retries": 2, "memory_mb": 256, "network": False}
    assert doc["requirements"] == ["requests==2.32.3"]
    assert doc["deployed_at"] == "2026-11-22T22:00:00.000Z"
    assert len(doc["version"]) == 16 and int(doc["version"], 16) >= 0


def test_source_bundle_carries_the_imports_it_needs(load: Load) -> None:
    b = bundles(load(CONVERT))["hyp"]
    assert b.code.startswith("import math\n\n\ndef hyp(a, b=4):")
    assert b.signature is not None and b.signature["parameters"][1]["default"] == 4


def test_cloudpickle_bundle_records_its_versions(load: Load) -> None:
    b = bundles(load("RATE = 1.8\n\ndef f(c):\n    return c * RATE + 32\n"))["f"]
    assert b.serializer == "cloudpickle"
    assert b.cloudpickle == cloudpickle.__version__
    assert callable(cloudpickle.loads(base64.b64decode(b.code)))


def test_same_content_same_version_across_loads(load: Load, write_file: Callable[..., Path]) -> None:
    text = "class P:\n    x = 2\n\ndef f(a):\n    return {a, P.x}\n\ndef g(a):\n    return a\n"
    first = bundles(load(text))
    second = bundles(load(text, "funcs.py"))
    assert {n: b.version for n, b in first.items()} == {n: b.version for n, b in second.items()}
    assert first["f"].serializer == "cloudpickle" and first["g"].serializer == "source"


def test_deployed_at_is_not_part_of_the_version(load: Load) -> None:
    source = load(CONVERT)
    fn = find_functions(source)[0]
    a = build_bundle(source, fn, Limits(), (), "2026-01-01T00:00:00.000Z")
    b = build_bundle(source, fn, Limits(), (), "2027-01-01T00:00:00.000Z")
    assert a.version == b.version and a.to_bytes() != b.to_bytes()


@pytest.mark.parametrize("limits", [Limits(timeout=5), Limits(retries=1), Limits(memory_mb=64), Limits(network=True)])
def test_any_limit_change_is_a_new_version(load: Load, limits: Limits) -> None:
    source = load(CONVERT)
    assert bundles(source)["convert"].version != bundles(source, limits)["convert"].version


def test_integral_timeouts_are_one_version() -> None:
    assert Limits(timeout=30.0).to_json() == Limits(timeout=30).to_json()


def test_requirement_change_is_a_new_version(load: Load) -> None:
    source = load(CONVERT)
    assert bundles(source)["convert"].version != bundles(source, reqs=("numpy",))["convert"].version


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("+ 32", "+ 33"),
    lambda t: t.replace('"""Celsius to Fahrenheit."""', '"""C to F."""'),
])
def test_code_change_is_a_new_version(load: Load, edit: Callable[[str], str]) -> None:
    before = bundles(load(CONVERT))["convert"].version
    after = bundles(load(edit(CONVERT)))["convert"].version
    assert before != after


def test_pickled_function_version_follows_its_file(load: Load) -> None:
    text = "RATE = 1.8\n\ndef f(c):\n    return c * RATE\n"
    assert bundles(load(text))["f"].version != bundles(load(text.replace("1.8", "1.9")))["f"].version


def test_version_is_the_documented_hash() -> None:
    import hashlib

    canonical = json.dumps({"serializer": "source", "code": "x", "entrypoint": "f", "python": "3.11",
                            "limits": {"timeout": None, "retries": None, "memory_mb": None, "network": False},
                            "requirements": []}, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert compute_version("source", "x", "f", "3.11.7", Limits(), ()) == expected
    assert compute_version("source", "x", "f", "3.11.9", Limits(), ()) == expected
    assert compute_version("source", "x", "f", "3.12.1", Limits(), ()) != expected


def test_network_marker_for_the_file_or_named_functions(load: Load) -> None:
    everyone = bundles(load("FAAS_NETWORK = True\n\ndef a(): pass\n\ndef b(): pass\n"))
    assert everyone["a"].limits.network and everyone["b"].limits.network
    some = bundles(load("FAAS_NETWORK = ['b']\n\ndef a(): pass\n\ndef b(): pass\n"))
    assert not some["a"].limits.network and some["b"].limits.network
    assert some["a"].serializer == "source"


def test_unserializable_global_names_the_object_and_why(load: Load) -> None:
    source = load("""
        import threading

        LOCK = threading.Lock()

        def _locked(x):
            with LOCK:
                return x

        def f(x):
            return _locked(x)
        """)
    with pytest.raises(SerializationError) as info:
        bundles(source)
    msg = str(info.value)
    assert "cannot serialize function 'f'" in msg
    assert "global '_locked' → global 'LOCK' (lock object) cannot be pickled" in msg
    assert "cannot pickle '_thread.lock' object" in msg


def test_unserializable_closure_variable_is_named(load: Load) -> None:
    source = load("""
        def make():
            gen = (i for i in range(3))
            def f():
                return next(gen)
            return f

        f = make()
        """)
    with pytest.raises(SerializationError, match=r"'f' → closure variable 'gen' \(generator object\)"):
        bundles(source)


def test_bundle_round_trips_through_bytes(load: Load) -> None:
    for b in bundles(load(CONVERT)).values():
        assert parse_bundle(b.name, b.to_bytes()) == b


def test_json_without_a_format_is_treated_as_source_like_the_executor_does() -> None:
    b = parse_bundle("data", b'{"a": 1}')
    assert b.legacy and b.signature is None


def test_bare_tutorial_source_is_a_function() -> None:
    text = "def convert(celsius):\n    return (celsius * 9/5) + 32\n"
    b = parse_bundle("convert", text.encode())
    assert b.legacy and b.serializer == "source" and b.entrypoint == "convert" and b.code == text
    assert b.signature is not None and [p["name"] for p in b.signature["parameters"]] == ["celsius"]
    assert b.version == parse_bundle("convert", text.encode()).version
    assert load_entrypoint(b)(21.0) == pytest.approx(69.8)


@pytest.mark.parametrize(("data", "why"), [
    (b"\xff\xfe", "neither a bundle nor a Python source file"),
    (b"this is not python(", "neither a bundle nor valid Python"),
    (b'{"format": "other/9"}', "unsupported bundle format 'other/9'"),
    (json.dumps({"format": FORMAT, "name": "x"}).encode(), "lacks the field 'version'"),
])
def test_garbage_under_faas_is_a_clear_error(data: bytes, why: str) -> None:
    with pytest.raises(BundleError, match=why):
        parse_bundle("x", data)


@pytest.mark.parametrize(("text", "name", "args", "expected"), [
    (CONVERT, "convert", (21,), 69.8),
    (CONVERT, "hyp", (3,), 5.0),
    ("import xml\nimport xml.etree.ElementTree\n\ndef tag(t):\n    return xml.etree.ElementTree.fromstring(t).tag\n",
     "tag", ("<a/>",), "a"),
    ("RATE = 9 / 5\n\ndef _add(a, b):\n    return a + b\n\ndef f(c):\n    return _add(c * RATE, 32)\n", "f", (100,), 212.0),
    ("class P:\n    def __init__(self, x):\n        self.x = x\n\n    def double(self):\n        return self.x * 2\n\n"
     "def f(x):\n    return P(x).double()\n", "f", (4,), 8),
    ("import math\n\ndef make(n):\n    def g(x):\n        return math.floor(x * n)\n    return g\n\nf = make(3)\n", "f", (2.5,), 7),
])
def test_serialized_function_runs_alone_in_a_fresh_interpreter(
        load: Load, tmp_path: Path, text: str, name: str, args: tuple, expected: object) -> None:
    source = load(text)
    b = bundles(source)[name]
    unload(source)
    source.path.unlink()  # the fresh interpreter must not need the file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_fresh(b.to_bytes(), *args, cwd=elsewhere) == pytest.approx(expected)


def test_local_module_travels_with_the_function(write_file: Callable[..., Path], tmp_path: Path) -> None:
    write_file("FACTOR = 7\n\ndef times(x):\n    return x * FACTOR\n", "my_local_helpers.py")
    path = write_file("import my_local_helpers\n\ndef f(x):\n    return my_local_helpers.times(x)\n", "uses_local.py")
    source = load_source_file(path)
    try:
        b = bundles(source)["f"]
    finally:
        unload(source)
    (tmp_path / "my_local_helpers.py").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run_fresh(b.to_bytes(), 6, cwd=elsewhere) == 42


def test_examples_deploy_the_documented_way(tmp_path: Path) -> None:
    source = load_source_file(ROOT / "examples" / "convert.py")
    try:
        convert = bundles(source)["convert"]
    finally:
        unload(source)
    assert convert.serializer == "source"
    assert run_fresh(convert.to_bytes(), 21, cwd=tmp_path) == pytest.approx(69.8)
    source = load_source_file(ROOT / "examples" / "closure_example.py")
    try:
        found = bundles(source)
    finally:
        unload(source)
    assert found["describe"].serializer == found["triple"].serializer == "cloudpickle"
    assert run_fresh(found["describe"].to_bytes(), 21, cwd=tmp_path) == {
        "celsius": 21, "fahrenheit": 69.8, "kelvin": 294.15}
    assert run_fresh(found["triple"].to_bytes(), 7, cwd=tmp_path) == 21


ASYNC = '''
import asyncio

RATE = 9 / 5


async def echo(code: str, delay: float = 0.0, *, tags: list[str] | None = None) -> list:
    """Echo after a pause."""
    await asyncio.sleep(delay)
    return [code, delay, tags]


async def fahrenheit(celsius: float) -> float:
    await asyncio.sleep(0)
    return celsius * RATE + 32


async def countdown(n: int):
    for i in range(n, 0, -1):
        yield i
'''


def test_async_functions_are_bundled_with_their_signatures(load: Load) -> None:
    import asyncio
    import inspect

    built = bundles(load(ASYNC))
    echo, fahrenheit, countdown = built["echo"], built["fahrenheit"], built["countdown"]
    assert (echo.serializer, fahrenheit.serializer, countdown.serializer) == ("source", "cloudpickle", "source")
    assert echo.code.startswith("import asyncio\n\n\nasync def echo(code: str, delay: float = 0.0, *,")
    assert echo.doc == "Echo after a pause."
    assert echo.signature == {"parameters": [
        {"name": "code", "kind": "POSITIONAL_OR_KEYWORD", "has_default": False, "default": None,
         "default_repr": None, "annotation": "str"},
        {"name": "delay", "kind": "POSITIONAL_OR_KEYWORD", "has_default": True, "default": 0.0,
         "default_repr": None, "annotation": "float"},
        {"name": "tags", "kind": "KEYWORD_ONLY", "has_default": True, "default": None,
         "default_repr": None, "annotation": "list[str] | None"}], "return": "list"}
    assert [p["annotation"] for p in fahrenheit.signature["parameters"]] == ["float"]  # type: ignore[index]
    # What the reference loader returns is the coroutine (or async generator) function itself.
    fn = load_entrypoint(parse_bundle("echo", echo.to_bytes()))
    assert inspect.iscoroutinefunction(fn)
    assert asyncio.run(fn("007", 0)) == ["007", 0, None]
    assert asyncio.run(load_entrypoint(fahrenheit)(21)) == pytest.approx(69.8)
    assert inspect.isasyncgenfunction(load_entrypoint(countdown))


def test_the_gateway_converts_query_values_by_an_async_functions_recorded_signature(load: Load) -> None:
    gateway = pytest.importorskip("gateway.signature")
    info = gateway.parse_function("echo", bundles(load(ASYNC))["echo"].to_bytes())
    assert info.signature_text == "echo(code: str, delay: float = 0.0, *, tags: list[str] | None = None) -> list"
    assert gateway.convert_query(info, [("code", "007"), ("delay", "2"), ("tags", "a"), ("tags", "b")]) == {
        "code": "007", "delay": 2.0, "tags": ["a", "b"]}

