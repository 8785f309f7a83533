"""The package's public names."""

from __future__ import annotations

import faas_executor


def test_all_is_sorted_and_resolvable() -> None:
    assert faas_executor.__all__ == sorted(faas_executor.__all__)
    for name in faas_executor.__all__:
        assert getattr(faas_executor, name) is not None
