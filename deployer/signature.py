"""A function's signature as JSON: parameter names, kinds, defaults and annotations as text."""

from __future__ import annotations

import ast
import inspect
import json
import math
from typing import Any

__all__ = ["signature_from_source", "signature_of"]


def _json_value(value: Any) -> tuple[bool, Any]:
    """(True, value) when value survives a JSON round trip unchanged (tuples as lists)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False, None
    back = json.loads(text)
    same = back == (list(value) if isinstance(value, tuple) else value)
    if isinstance(value, float) and not math.isfinite(value):
        same = False
    return same, back if same else None


def _annotation_text(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):  # `from __future__ import annotations`, or a quoted hint
        return annotation
    return inspect.formatannotation(annotation)


def _parameter(p: inspect.Parameter) -> dict[str, Any]:
    has_default = p.default is not inspect.Parameter.empty
    is_json, default = _json_value(p.default) if has_default else (False, None)
    return {
        "name": p.name,
        "kind": p.kind.name,
        "has_default": has_default,
        "default": default,
        # A default JSON cannot carry (a set, an object) is described by its repr instead.
        "default_repr": None if not has_default or is_json else repr(p.default),
        "annotation": _annotation_text(p.annotation),
    }


def signature_of(fn: Any) -> dict[str, Any]:
    """The signature record of a callable (decorated functions show the wrapped signature)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"parameters": [], "return": None}
    return {"parameters": [_parameter(p) for p in sig.parameters.values()],
            "return": _annotation_text(sig.return_annotation)}


def _source_default(node: ast.expr) -> tuple[Any, str | None]:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None, ast.unparse(node)
    ok, back = _json_value(value)
    return (back, None) if ok else (None, repr(value))


def signature_from_source(text: str, name: str) -> dict[str, Any] | None:
    """The signature of top-level `def name` in source text, read without running it."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    node = next((s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and s.name == name), None)
    if node is None:
        return None
    a = node.args
    kinds: list[tuple[ast.arg, str]] = [(x, "POSITIONAL_ONLY") for x in a.posonlyargs]
    kinds += [(x, "POSITIONAL_OR_KEYWORD") for x in a.args]
    if a.vararg:
        kinds.append((a.vararg, "VAR_POSITIONAL"))
    kinds += [(x, "KEYWORD_ONLY") for x in a.kwonlyargs]
    if a.kwarg:
        kinds.append((a.kwarg, "VAR_KEYWORD"))
    positional = [*a.posonlyargs, *a.args]
    defaults: dict[str, ast.expr] = dict(zip([x.arg for x in positional[len(positional) - len(a.defaults):]],
                                             a.defaults, strict=True))
    defaults.update({x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None})
    params = []
    for arg, kind in kinds:
        has_default = arg.arg in defaults
        default, default_repr = _source_default(defaults[arg.arg]) if has_default else (None, None)
        params.append({"name": arg.arg, "kind": kind, "has_default": has_default, "default": default,
                       "default_repr": default_repr,
                       "annotation": ast.unparse(arg.annotation) if arg.annotation else None})
    return {"parameters": params, "return": ast.unparse(node.returns) if node.returns else None}
