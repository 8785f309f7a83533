"""How deep a caller's JSON (a request body, a query value) may nest, checked before it is parsed.

No argument list nests a hundred levels deep, and the layers a call goes through do not all take
it: orjson refuses more than 1,024 levels, the json module that sdk.jsonx reads big integers with
recurses (RecursionError past ~1,000), and pydantic refuses to serialize the submission past a few
hundred. Each of these was a 500 for what is bad input. Checking the text first makes it a 400,
with nothing parsed or submitted.
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["MAX_DEPTH", "nests_deeper"]

MAX_DEPTH = 128  # levels of arrays and objects; a call through the whole pipeline was checked at 250

# A JSON string (its brackets are text, not nesting), written unrolled so it does not backtrack.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_STEP = {ord("["): 1, ord("]"): -1}


def nests_deeper(text: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON `text` nests arrays and objects deeper than `limit` levels (`[]` is one)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # nearly every request: too few brackets to nest that deep, nothing to scan
    # Only the brackets outside strings, one kind: the running sum of +1/-1 is the depth. One pass
    # in C-speed steps (no per-byte Python loop, no recursion), bounded by the body size limit.
    brackets = _STRING.sub(b"", raw).translate(_ONE_KIND, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit
