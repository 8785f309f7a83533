"""Where tests put the figures docs/RELIABILITY.md quotes.

Each test calls `report(name, **figures)`: the figures are printed (visible with `pytest -s`)
and, when COLONYFAAS_RELIABILITY_REPORT names a file, appended to it as one JSON line.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def report(name: str, **figures: Any) -> None:
    line = json.dumps({"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures},
                      default=str, sort_keys=True)
    print(f"\nFIGURES {line}")
    path = os.environ.get("COLONYFAAS_RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
