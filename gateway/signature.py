"""A deployed function's signature: parsing the bundle, converting query values, binding arguments."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdk import jsonx
from sdk.argtext import SEQUENCES, ConversionError, annotation_base, convert_text, strip_optional

from .jsondepth import MAX_DEPTH, nests_deeper

__all__ = [
    "BUNDLE_FORMAT",
    "FunctionInfo",
    "Param",
    "ParameterError",
    "bind",
    "convert_query",
    "parse_function",
]

BUNDLE_FORMAT = "colonyfaas-bundle/1"

POSITIONAL_ONLY = "POSITIONAL_ONLY"
POSITIONAL_OR_KEYWORD = "POSITIONAL_OR_KEYWORD"
VAR_POSITIONAL = "VAR_POSITIONAL"
KEYWORD_ONLY = "KEYWORD_ONLY"
VAR_KEYWORD = "VAR_KEYWORD"
_KINDS = {POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD}


class ParameterError(ValueError):
    """Arguments that do not fit the function (missing, unknown, unconvertible); the message names them."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str = POSITIONAL_OR_KEYWORD
    has_default: bool = False
    default: Any = None
    annotation: str | None = None

    @property
    def required(self) -> bool:
        return not self.has_default and self.kind not in (VAR_POSITIONAL, VAR_KEYWORD)

    def render(self) -> str:
        prefix = {VAR_POSITIONAL: "*", VAR_KEYWORD: "**"}.get(self.kind, "")
        text = prefix + self.name
        if self.annotation:
            text += f": {self.annotation}"
        if self.has_default:
            text += f" = {self.default!r}"
        return text


@dataclass(frozen=True)
class FunctionInfo:
    """What the gateway knows about one deployed function (one revision of its /faas file)."""

    name: str
    # None: a bare source file or a bundle without a signature; values pass through unchecked.
    params: tuple[Param, ...] | None
    returns: str | None = None
    doc: str | None = None
    version: str | None = None
    timeout: int | None = None
    retries: int | None = None
    deployed_at: str | None = None
    bundle_format: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def signature_text(self) -> str | None:
        if self.params is None:
            return None
        parts: list[str] = []
        kinds = [p.kind for p in self.params]
        for i, p in enumerate(self.params):
            if p.kind == KEYWORD_ONLY and VAR_POSITIONAL not in kinds and KEYWORD_ONLY not in kinds[:i]:
                parts.append("*")
            parts.append(p.render())
            if p.kind == POSITIONAL_ONLY and (i + 1 == len(kinds) or kinds[i + 1] != POSITIONAL_ONLY):
                parts.append("/")
        text = f"{self.name}({', '.join(parts)})"
        if self.returns:
            text += f" -> {self.returns}"
        return text

    def describe(self) -> dict[str, Any]:
        """The JSON shape /functions/{name} shows."""
        return {
            "name": self.name,
            "signature": self.signature_text,
            "parameters": None if self.params is None else [
                {"name": p.name, "kind": p.kind, "required": p.required, "annotation": p.annotation,
                 **({"default": p.default} if p.has_default else {})}
                for p in self.params
            ],
            "returns": self.returns,
            "doc": self.doc,
            "version": self.version,
            "limits": {"timeout": self.timeout, "retries": self.retries},
            "deployed_at": self.deployed_at,
        }


def parse_function(name: str, data: bytes) -> FunctionInfo:
    """FunctionInfo from the bytes of a /faas file: a colonyfaas bundle, or bare Python source."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or not str(doc.get("format", "")).startswith("colonyfaas-bundle/"):
        # pycolonies' tutorial stores plain source under /faas: a function with an unknown signature.
        return FunctionInfo(name=name, params=None)
    sig = doc.get("signature")
    params: tuple[Param, ...] | None = None
    returns: str | None = None
    if isinstance(sig, dict) and isinstance(sig.get("parameters"), list):
        parsed: list[Param] = []
        for raw in sig["parameters"]:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                continue
            kind = str(raw.get("kind") or POSITIONAL_OR_KEYWORD)
            ann = raw.get("annotation")
            parsed.append(Param(
                name=raw["name"],
                kind=kind if kind in _KINDS else POSITIONAL_OR_KEYWORD,
                has_default=bool(raw.get("has_default")),
                default=raw.get("default"),
                annotation=ann if isinstance(ann, str) and ann else None,
            ))
        params = tuple(parsed)
        ret = sig.get("return")
        returns = ret if isinstance(ret, str) and ret else None
    raw_limits = doc.get("limits")
    limits: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else {}
    return FunctionInfo(
        name=name,
        params=params,
        returns=returns,
        doc=doc.get("doc") if isinstance(doc.get("doc"), str) else None,
        version=str(doc["version"]) if doc.get("version") is not None else None,
        timeout=_positive_int(limits.get("timeout")),
        retries=_int_or_none(limits.get("retries")),
        deployed_at=str(doc["deployed_at"]) if doc.get("deployed_at") is not None else None,
        bundle_format=str(doc.get("format")),
    )


def _positive_int(v: object) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    n = int(-(-v // 1))  # round up: a 0.5 s limit must not become 0 (which means "already expired")
    return n if n > 0 else None


def _int_or_none(v: object) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


# ---- query value conversion -------------------------------------------------------------------------

def _repeatable(annotation: str | None) -> bool:
    """Whether a query name may repeat: the parameter is annotated as a list."""
    return annotation is not None and annotation_base(strip_optional(annotation)[0]) in SEQUENCES


def _loads(text: str) -> Any:
    # Refused before parsing: too deep for the layers after this one (jsondepth.py). jsonx:
    # integers past 64 bits exact, and no NaN or Infinity, which JSON does not have (the call's
    # wire form would carry null, and the function would get None).
    if nests_deeper(text):
        raise ConversionError(f"value nests deeper than {MAX_DEPTH} levels of arrays and objects")
    return jsonx.loads(text)


def convert_value(name: str, raw: str, annotation: str | None) -> Any:
    """One query value: by annotation when there is one we understand, else JSON when valid, else
    text (sdk.argtext, the rules `faas invoke` follows too)."""
    try:
        return convert_text(name, raw, annotation, _loads)
    except ConversionError as e:
        message = str(e)
        raise ParameterError(message if message.startswith("parameter ") else f"parameter {name!r}: {message}") from None


def convert_query(info: FunctionInfo | None, query: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Keyword arguments from query pairs. A name given twice becomes a list of its values when the
    parameter is annotated as a list (or the function's signature is unknown), else is an error."""
    checked = info is not None and info.params is not None
    annotations = {p.name: p.annotation for p in (info.params or ())} if info else {}
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    out: dict[str, Any] = {}
    errors: list[str] = []
    for key, values in grouped.items():
        ann = annotations.get(key)
        if len(values) > 1 and checked and not _repeatable(ann):
            # Passing the list on would hand an `int` parameter a list (a TypeError in the function,
            # a 500), and picking one value would drop the others without a word.
            errors.append(_repeated(key, len(values), ann))
            continue
        try:
            if len(values) == 1:
                out[key] = convert_value(key, values[0], ann)
            else:
                elem = _list_element(ann)
                out[key] = [convert_value(key, v, elem) for v in values]
        except ParameterError as e:
            errors.append(str(e))
    if errors:
        raise ParameterError("; ".join(errors))
    return out


def _repeated(name: str, times: int, annotation: str | None) -> str:
    text = (f"parameter {name!r} is given {times} times in the query string; only a parameter annotated "
            "as a list may be repeated")
    if annotation is None:
        text += f" (pass a list to it once, as JSON: {name}=[1,2])"
    return text


def _list_element(annotation: str | None) -> str | None:
    if annotation is None:
        return None
    ann, _ = strip_optional(annotation)
    m = re.match(r"^(?:typing\.)?(?:list|List|Sequence|tuple|Tuple|set|Set)\[(.*)\]$", ann)
    return m.group(1).split(",")[0].strip() if m else None


# ---- binding ----------------------------------------------------------------------------------------


def bind(info: FunctionInfo, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Check args/kwargs against the signature; raise ParameterError naming every missing/unknown one.

    Positional-only parameters given by name (the only way a query string can give them) are moved
    into the positional arguments so the call still works.
    """
    args = list(args)
    kwargs = dict(kwargs)
    if info.params is None:
        return args, kwargs
    params = info.params
    positional = [p for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind == VAR_POSITIONAL for p in params)
    has_varkw = any(p.kind == VAR_KEYWORD for p in params)
    problems: list[str] = []

    # Positional-only parameters named in kwargs, in order, directly after the given positionals.
    pos_only = [p for p in positional if p.kind == POSITIONAL_ONLY]
    for p in pos_only[len(args):]:
        if p.name in kwargs and not has_varkw:
            args.append(kwargs.pop(p.name))
        else:
            break

    if len(args) > len(positional) and not has_varargs:
        problems.append(f"too many positional arguments: {info.name} takes {len(positional)}, got {len(args)}")
    filled = {p.name for p in positional[: len(args)]}
    duplicated = sorted(n for n in kwargs if n in filled)
    if duplicated:
        problems.append("parameter given twice: " + ", ".join(duplicated))
    by_name = {p.name: p for p in params if p.kind not in (VAR_POSITIONAL, VAR_KEYWORD)}
    unknown = sorted(
        n for n in kwargs
        if (n not in by_name or by_name[n].kind == POSITIONAL_ONLY) and not has_varkw
    )
    if unknown:
        problems.append("unknown parameter" + ("s" if len(unknown) > 1 else "") + ": " + ", ".join(unknown))
    missing = [p.name for p in params if p.required and p.name not in filled and p.name not in kwargs]
    if missing:
        problems.append("missing parameter" + ("s" if len(missing) > 1 else "") + ": " + ", ".join(missing))
    if problems:
        raise ParameterError(f"{info.name}: " + "; ".join(problems) + _hint(info))
    return args, kwargs


def _hint(info: FunctionInfo) -> str:
    text = info.signature_text
    return f" (signature: {text})" if text else ""
