"""Celsius to Fahrenheit, the ColonyOS serverless tutorial's function.

Deploy it with `faas deploy examples/convert.py`, then call it:
`faas invoke convert 21` or `curl 'http://localhost:8000/function/convert?celsius=21'`.
"""


def convert(celsius: float) -> float:
    """Convert a temperature in degrees Celsius to degrees Fahrenheit."""
    return (celsius * 9 / 5) + 32
