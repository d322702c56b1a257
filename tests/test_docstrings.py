"""Every public docstring example runs (numpy-style `Examples` sections are doctests)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import indexlab
import pytest

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(indexlab.__path__, prefix="indexlab.")
    if not m.name.startswith("indexlab._")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
