"""Functions that need more than their own source: a module-level constant, helper and class.

`faas deploy examples/closure_example.py` ships `describe` and `scale_all` with cloudpickle
(by value, together with the helper, the class and the constant they use), and `make_scaler`'s
product `triple` as a closure. Try `faas invoke describe 21` or `faas invoke triple 7`.
"""

import math

ABSOLUTE_ZERO_C = -273.15


class Temperature:
    """A temperature in degrees Celsius."""

    def __init__(self, celsius: float) -> None:
        if celsius < ABSOLUTE_ZERO_C:
            raise ValueError(f"{celsius} °C is below absolute zero")
        self.celsius = celsius

    @property
    def fahrenheit(self) -> float:
        return self.celsius * 9 / 5 + 32

    @property
    def kelvin(self) -> float:
        return self.celsius - ABSOLUTE_ZERO_C


def _rounded(value: float, digits: int = 2) -> float:
    return round(value, digits)


def describe(celsius: float) -> dict:
    """Describe a temperature in Celsius, Fahrenheit and Kelvin."""
    t = Temperature(celsius)
    return {"celsius": _rounded(t.celsius), "fahrenheit": _rounded(t.fahrenheit),
            "kelvin": _rounded(t.kelvin)}


def make_scaler(factor: float):
    """Return a function multiplying its argument by `factor`."""

    def scale(x: float) -> float:
        return math.floor(x * factor * 1000) / 1000

    return scale


triple = make_scaler(3)


def scale_all(values: list, factor: float = 2.0) -> list:
    """Multiply every value by `factor`."""
    scaler = make_scaler(factor)
    return [scaler(v) for v in values]
