"""The deployer's public names: sorted, unique, and all defined, in the package and every module."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import deployer

MODULES = sorted(m.name for m in pkgutil.iter_modules(deployer.__path__))


@pytest.mark.parametrize("name", ["deployer", *(f"deployer.{m}" for m in MODULES)])
def test_all_is_sorted_unique_and_defined(name: str) -> None:
    module = importlib.import_module(name)
    names = module.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    for n in names:
        assert hasattr(module, n), f"{name}.{n}"
