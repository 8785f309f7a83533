"""Text (a query value, a command-line word) → a call argument, by the parameter's recorded annotation.

The gateway converts query values and `faas invoke` its words by these rules, so
`GET /function/f?x=007` and `faas invoke f x=007` make the same call. Pure; no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["ConversionError", "MAPPINGS", "SEQUENCES", "annotation_base", "convert_text", "strip_optional"]

SEQUENCES = frozenset({"list", "List", "tuple", "Tuple", "set", "Set", "Sequence"})
MAPPINGS = frozenset({"dict", "Dict", "Mapping"})
_OPTIONAL = re.compile(r"^(?:typing\.)?Optional\[(.*)\]$")
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})


class ConversionError(ValueError):
    """The text does not fit the parameter's annotation; the message names the parameter."""


def strip_optional(annotation: str) -> tuple[str, bool]:
    """`Optional[X]`, `X | None` → (X, True); anything else → (itself, False)."""
    ann = annotation.strip().strip("'\"")
    m = _OPTIONAL.match(ann)
    if m:
        return m.group(1).strip(), True
    parts = [p.strip() for p in _split_top(ann, "|")]
    if len(parts) > 1 and ("None" in parts or "NoneType" in parts):
        return " | ".join(p for p in parts if p not in ("None", "NoneType")), True
    return ann, False


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside brackets."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += (ch in "[(") - (ch in "])")
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def annotation_base(annotation: str) -> str:
    """`list` of `typing.List[int]` (after strip_optional): the type without its parameters."""
    return annotation.split("[", 1)[0].strip().removeprefix("builtins.").removeprefix("typing.")


def convert_text(name: str, text: str, annotation: str | None, loads: Callable[[str], Any]) -> Any:
    """The argument for parameter `name`: by its annotation when it is one of the simple types
    (`str`, `int`, `float`, `bool`, lists, dicts, each optionally `| None`), else the JSON `text`
    stands for (`loads`, the caller's reader), else the text itself.

    ConversionError when the text does not fit the annotation; `loads` may raise one of its own
    (e.g. a value nested too deep), which passes through.
    """
    if annotation is None:
        return _json_or_text(text, loads)
    ann, optional = strip_optional(annotation)
    if optional and text in ("", "null", "None"):
        return None
    base = annotation_base(ann)
    try:
        if base == "str":
            return text
        if base == "int":
            return int(text)
        if base == "float":
            number = float(text)
            if not math.isfinite(number):
                raise ConversionError(f"parameter {name!r}: {text!r} is not a finite number (JSON has no NaN or "
                                      "Infinity, so a call cannot carry one)")
            return number
        if base == "bool":
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if base in SEQUENCES or base in MAPPINGS:
            value = loads(text)
            if not isinstance(value, list if base in SEQUENCES else dict):
                raise ValueError(text)
            return value
    except ConversionError:
        raise
    except ValueError:
        raise ConversionError(f"parameter {name!r}: cannot convert {text!r} to {annotation}") from None
    # Any, unions, classes: what the annotation means cannot be known here.
    return _json_or_text(text, loads)


def _json_or_text(text: str, loads: Callable[[str], Any]) -> Any:
    try:
        return loads(text)
    except ConversionError:
        raise
    except ValueError:
        return text
