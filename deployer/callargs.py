"""Turning `faas invoke NAME 21 unit=C` words into call arguments, and checking them against
a deployed function's recorded signature (pure; no I/O).

A word for a parameter with a recorded annotation is converted by that annotation (`str` keeps
the text, `float` makes a number of it, ...), by the same rules the gateway applies to query
values; any other word is JSON when it is valid JSON, else the text."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdk.argtext import ConversionError, convert_text

from .errors import DeployerError

__all__ = ["CallWords", "check_arguments", "convert_call_words", "convert_value", "parse_call_args",
           "parse_value", "split_call_words"]

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


@dataclass(frozen=True)
class CallWords:
    """Command-line words split into positional and keyword texts, not converted yet (that needs
    the function's signature, which is only known once its bundle has been read)."""

    args: tuple[str, ...] = ()
    kwargs: Mapping[str, str] = field(default_factory=dict)


def split_call_words(words: Sequence[str]) -> CallWords:
    """Split words into positional words and `KEY=VALUE` keyword words.

    A word is a keyword argument when it starts with an identifier followed by `=`; anything
    else (`21`, `{"a":1}`, `a b`, `=x`) is positional. A positional after a keyword argument is
    an error, as in Python; so is a keyword given twice.
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for word in words:
        m = _KEYWORD.match(word)
        if m:
            key, value = m.groups()
            if key in kwargs:
                raise DeployerError(f"keyword argument {key!r} given twice")
            kwargs[key] = value
        elif kwargs:
            raise DeployerError(f"positional argument {word!r} follows keyword arguments")
        else:
            args.append(word)
    return CallWords(tuple(args), kwargs)


def convert_value(name: str, text: str, annotation: str | None) -> Any:
    """One word for parameter `name`: by its annotation when it is one of the simple types
    (`str`, `int`, `float`, `bool`, lists, dicts, each optionally `| None`), else `parse_value`.

    The gateway converts query values by the same rules (sdk.argtext), so `faas invoke f x=007`
    and `GET /function/f?x=007` make the same call.
    """
    try:
        return convert_text(name, text, annotation, json.loads)
    except ConversionError as e:
        raise DeployerError(str(e)) from None


@dataclass(frozen=True)
class _Slots:
    """Which parameter (name, annotation) each positional and keyword word fills."""

    positional: tuple[tuple[str, str | None], ...] = ()
    var_positional: tuple[str, str | None] | None = None
    keyword: Mapping[str, str | None] = field(default_factory=dict)
    var_keyword: tuple[str, str | None] | None = None

    @classmethod
    def of(cls, signature: Mapping[str, Any] | None) -> _Slots:
        positional: list[tuple[str, str | None]] = []
        keyword: dict[str, str | None] = {}
        var_positional = var_keyword = None
        # A bundle's signature is whatever JSON was stored: anything unexpected converts nothing.
        params = signature.get("parameters") if isinstance(signature, Mapping) else None
        for p in params if isinstance(params, list) else ():
            if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
                continue
            ann = p.get("annotation")
            slot = (p["name"], ann if isinstance(ann, str) and ann else None)
            kind = p.get("kind")
            if kind == "VAR_POSITIONAL":
                var_positional = slot
            elif kind == "VAR_KEYWORD":
                var_keyword = slot
            else:
                if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", None):
                    positional.append(slot)
                if kind != "POSITIONAL_ONLY":
                    keyword[slot[0]] = slot[1]
        return cls(tuple(positional), var_positional, keyword, var_keyword)

    def for_position(self, index: int) -> tuple[str, str | None]:
        if index < len(self.positional):
            return self.positional[index]
        return self.var_positional or (f"#{index + 1}", None)  # too many: check_arguments says so

    def for_key(self, key: str) -> str | None:
        if key in self.keyword:
            return self.keyword[key]
        return self.var_keyword[1] if self.var_keyword else None


def convert_call_words(words: CallWords, signature: Mapping[str, Any] | None) -> tuple[list[Any], dict[str, Any]]:
    """The call's arguments: each word converted by the annotation of the parameter it fills
    (`*args: float` and `**kw: int` annotate every value they take). Every word that cannot be
    converted is named in one DeployerError."""
    slots = _Slots.of(signature)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for i, text in enumerate(words.args):
        name, ann = slots.for_position(i)
        try:
            args.append(convert_value(name, text, ann))
        except DeployerError as e:
            problems.append(str(e))
    for key, text in words.kwargs.items():
        try:
            kwargs[key] = convert_value(key, text, slots.for_key(key))
        except DeployerError as e:
            problems.append(str(e))
    if problems:
        raise DeployerError("; ".join(problems))
    return args, kwargs


def parse_call_args(words: Sequence[str], signature: Mapping[str, Any] | None = None) -> tuple[list[Any], dict[str, Any]]:
    """Words → positional and keyword arguments (`split_call_words`, then `convert_call_words`).

    Without a signature (or for parameters without an annotation) each value is parsed with
    `parse_value`.
    """
    return convert_call_words(split_call_words(words), signature)


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
