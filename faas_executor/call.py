"""What to run for one assigned process: the function, its arguments and its time limit (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TUTORIAL_FUNCNAME", "Call", "CallError", "call_from_spec", "call_timeout"]

# The ColonyOS serverless tutorial's executor registers this one function name and reads the
# real function's name and its single argument from kwargs {"function": NAME, "arg": "21"}.
TUTORIAL_FUNCNAME = "execute"


class CallError(ValueError):
    """The FuncSpec does not describe a call this executor can run."""


@dataclass(frozen=True)
class Call:
    """One call of a deployed function."""

    function: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    tutorial: bool = False


def call_from_spec(funcname: str, args: list[Any] | None, kwargs: dict[str, Any] | None,
                   inputs: list[Any] | None = None) -> Call:
    """Turn a FuncSpec's funcname/args/kwargs into a Call.

    `inputs` is the process's `in`: in a workflow, the outputs of its parents. A spec without
    args of its own gets them as positional arguments, so functions chain in workflows.

    The tutorial form (`funcname: "execute"`, kwargs `function` and `arg`) runs
    `kwargs["function"](float(kwargs["arg"]))`, exactly the tutorial executor's call. It is
    recognised only with no positional args and exactly those two kwargs, so a deployed function
    that is itself named `execute` still gets its own arguments.
    """
    if not funcname:
        raise CallError("FuncSpec has an empty funcname")
    args = list(args or [])
    kwargs = dict(kwargs or {})
    if funcname == TUTORIAL_FUNCNAME and not args and set(kwargs) == {"function", "arg"}:
        name = kwargs["function"]
        if not isinstance(name, str) or not name:
            raise CallError(f"tutorial form: kwargs.function must be a function name, got {name!r}")
        try:
            value = float(kwargs["arg"])
        except (TypeError, ValueError) as e:
            raise CallError(f"tutorial form: kwargs.arg {kwargs['arg']!r} is not a number") from e
        return Call(function=name, args=[value], tutorial=True)
    if not args and inputs:
        args = list(inputs)
    return Call(function=funcname, args=args, kwargs=kwargs)


def call_timeout(function_timeout: float | None, maxexectime: int | float | None, default: float) -> float:
    """Wall-clock limit of one call: the function's own timeout, else the process's maxexectime
    (when positive), else the executor's finite default."""
    if function_timeout is not None and function_timeout > 0 and math.isfinite(function_timeout):
        return float(function_timeout)
    if maxexectime is not None and maxexectime > 0:
        return float(maxexectime)
    return float(default)
