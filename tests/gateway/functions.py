"""Functions the gateway's end-to-end tests deploy (each self-contained: the source is the bundle)."""

from __future__ import annotations


def convert(celsius: float) -> float:
    """Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32


def greet(name: str, punctuation: str = "!") -> str:
    """Say hello."""
    return f"hello {name}{punctuation}"


def boom(reason: str = "kaboom") -> None:
    """Always raises."""
    raise ValueError(reason)


def echo(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Return what it got."""
    return {"args": list(args), "kwargs": kwargs}


def logme(n: int) -> int:
    """Print n lines (the executor turns them into process logs)."""
    for i in range(n):
        print(f"line {i}", flush=True)
    return n


def add(a: int, b: int) -> int:
    """Add two integers (deployed by the tests that need it, not by the `deployed` fixture)."""
    return a + b
