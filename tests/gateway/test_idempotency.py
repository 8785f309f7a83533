"""The idempotency store: per function, fingerprinted, expiring after 24 h (pure, with a fake clock)."""

from __future__ import annotations

import pytest

from gateway.idempotency import IdempotencyConflict, IdempotencyStore, fingerprint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_reserve_claims_then_returns_the_process() -> None:
    store = IdempotencyStore(clock=Clock())
    fp = fingerprint([], {"celsius": 21})
    assert store.reserve("convert", "k1", fp) is None
    again = store.reserve("convert", "k1", fp)
    assert again is not None and again.processid is None
    store.complete("convert", "k1", "p" * 64)
    got = store.reserve("convert", "k1", fp)
    assert got is not None and got.processid == "p" * 64


def test_keys_are_per_function() -> None:
    store = IdempotencyStore(clock=Clock())
    fp = fingerprint([], {})
    assert store.reserve("a", "k", fp) is None
    assert store.reserve("b", "k", fp) is None


def test_same_key_with_other_arguments_conflicts() -> None:
    store = IdempotencyStore(clock=Clock())
    store.reserve("convert", "k", fingerprint([], {"celsius": 21}))
    with pytest.raises(IdempotencyConflict, match="different arguments"):
        store.reserve("convert", "k", fingerprint([], {"celsius": 22}))


def test_entries_expire_after_24_hours() -> None:
    clock = Clock()
    store = IdempotencyStore(clock=clock)
    fp = fingerprint([], {})
    store.reserve("f", "k", fp)
    store.complete("f", "k", "x")
    clock.now += 24 * 3600 - 1
    assert store.get("f", "k") is not None
    clock.now += 2
    assert store.get("f", "k") is None
    assert store.reserve("f", "k", fp) is None


def test_release_forgets_an_unsubmitted_reservation_only() -> None:
    store = IdempotencyStore(clock=Clock())
    fp = fingerprint([], {})
    store.reserve("f", "a", fp)
    store.release("f", "a")
    assert store.get("f", "a") is None
    store.reserve("f", "b", fp)
    store.complete("f", "b", "pid")
    store.release("f", "b")
    assert store.get("f", "b") is not None


def test_store_is_bounded() -> None:
    store = IdempotencyStore(max_keys=3, clock=Clock())
    for i in range(5):
        store.reserve("f", str(i), "fp")
    assert len(store) == 3 and store.get("f", "0") is None and store.get("f", "4") is not None


def test_fingerprint_ignores_key_order() -> None:
    assert fingerprint([1], {"a": 1, "b": 2}) == fingerprint([1], {"b": 2, "a": 1})
    assert fingerprint([1], {}) != fingerprint([2], {})
