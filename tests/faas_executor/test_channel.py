"""Worker protocol framing."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faas_executor.channel import FrameBuffer, FrameError, encode, read_frame, write_frame


def test_frames_split_anywhere_are_reassembled() -> None:
    data = encode({"a": 1}) + encode({"b": [1, 2]})
    buf = FrameBuffer()
    got = []
    for i in range(len(data)):
        got += buf.feed(data[i:i + 1])
    assert got == [{"a": 1}, {"b": [1, 2]}]
    assert buf.pending == 0


def test_pipe_round_trip_and_eof() -> None:
    r, w = os.pipe()
    try:
        write_frame(w, {"op": "call", "id": 1})
        os.close(w)
        assert read_frame(r) == {"op": "call", "id": 1}
        assert read_frame(r) is None
    finally:
        os.close(r)


def test_non_object_and_nan_are_refused() -> None:
    with pytest.raises(FrameError, match="not an object"):
        FrameBuffer().feed(b"\x00\x00\x00\x02[]")
    with pytest.raises(ValueError):
        encode({"x": float("nan")})


def test_the_parent_reads_what_json_reads_also_past_orjson() -> None:
    # FrameBuffer decodes with orjson; a nested call's arguments may hold integers past 64 bits,
    # which only json.loads reads: they still arrive, exactly, and garbage is still refused.
    big = {"ev": "call", "args": [2**70, -(2**64)], "kwargs": {"s": "h\u00e9llo ☃"}}
    assert FrameBuffer().feed(encode(big)) == [big]
    with pytest.raises(FrameError, match="not JSON"):
        FrameBuffer().feed(b"\x00\x00\x00\x03{x}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(messages=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=5),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
def test_any_messages_cut_anywhere_come_back_whole_and_in_order(messages: list[dict[str, object]],
                                                                 cuts: list[int]) -> None:
    data = b"".join(encode(m) for m in messages)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    buf = FrameBuffer()
    got = []
    for a, b in itertools.pairwise(points):
        got += buf.feed(data[a:b])
    assert got == messages and buf.pending == 0
