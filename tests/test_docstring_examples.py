"""Every example in the library's docstrings runs and prints what it says (doctest), module by module."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import speechseq

MODULES = sorted(m.name for m in pkgutil.walk_packages(speechseq.__path__, "speechseq.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed (see above)"
