"""A function calling another deployed function through its executor (no keys in user code).

    faas deploy examples/chain.py
    curl 'http://127.0.0.1:8000/function/quadruple?x=5'     # {"result": 20, ...}
"""

from faas_executor.api import call


def double(x: float) -> float:
    """Twice x."""
    return 2 * x


def quadruple(x: float) -> float:
    """Four times x, by calling the deployed `double` twice."""
    return call("double", call("double", x))
