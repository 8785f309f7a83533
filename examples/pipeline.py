"""Functions for the workflow example: each takes its parents' outputs as positional arguments."""


def fetch(city: str) -> dict:
    """A (made-up) reading for a city, in Celsius."""
    readings = {"stockholm": 4.5, "lulea": -12.0, "lund": 9.25}
    return {"city": city, "celsius": readings.get(city.lower(), 15.0)}


def to_fahrenheit(reading: dict) -> dict:
    """The reading with Fahrenheit added."""
    return {**reading, "fahrenheit": reading["celsius"] * 9 / 5 + 32}


def report(a: dict, b: dict) -> str:
    """One line comparing two readings."""
    warmer = a if a["fahrenheit"] >= b["fahrenheit"] else b
    return f"{warmer['city']} is warmer: {warmer['fahrenheit']:.1f} °F"
