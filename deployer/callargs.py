"""Turning `faas invoke NAME 21 unit=C` words into call arguments, and checking them against
a deployed function's recorded signature (pure; no I/O)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence
from typing import Any

from .errors import DeployerError

__all__ = ["check_arguments", "parse_call_args", "parse_value"]

_P = inspect.Parameter
_KINDS = {k.name: k for k in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD, _P.VAR_POSITIONAL,
                              _P.KEYWORD_ONLY, _P.VAR_KEYWORD)}
_KEYWORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it is valid JSON (`21`, `true`, `[1,2]`, `"x"`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_call_args(words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Split words into positional arguments and `KEY=VALUE` keyword arguments.

    A word is a keyword argument when it starts with an identifier followed by `=`; anything
    else (`21`, `{"a":1}`, `a b`, `=x`) is positional. A positional after a keyword argument is
    an error, as in Python. Each value is parsed with `parse_value`.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for word in words:
        m = _KEYWORD.match(word)
        if m:
            key, value = m.groups()
            if key in kwargs:
                raise DeployerError(f"keyword argument {key!r} given twice")
            kwargs[key] = parse_value(value)
        elif kwargs:
            raise DeployerError(f"positional argument {word!r} follows keyword arguments")
        else:
            args.append(parse_value(word))
    return args, kwargs


def _signature(record: dict[str, Any]) -> inspect.Signature:
    params = []
    for p in record.get("parameters") or []:
        kind = _KINDS.get(p.get("kind", ""), inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default = p.get("default") if p.get("has_default") else inspect.Parameter.empty
        params.append(inspect.Parameter(p["name"], kind, default=default))
    return inspect.Signature(params)


def check_arguments(name: str, signature: dict[str, Any] | None, args: Sequence[Any],
                    kwargs: dict[str, Any]) -> None:
    """Raise a clear error when the arguments cannot bind to the recorded signature."""
    if not signature:
        return  # a bare source file without a readable signature: let the executor decide
    try:
        sig = _signature(signature)
    except (ValueError, KeyError, TypeError):
        return
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        raise DeployerError(f"{name}{sig}: {e}") from None
