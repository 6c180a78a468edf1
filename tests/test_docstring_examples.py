"""Every example in the library's and the task scripts' docstrings runs and prints what it says (doctest)."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import logging
import pkgutil
import sys
from pathlib import Path

import pytest

import speechseq

MODULES = sorted(m.name for m in pkgutil.walk_packages(speechseq.__path__, "speechseq.") if not m.name.endswith("__main__"))


@pytest.fixture(autouse=True)
def no_console_log_handler(monkeypatch) -> None:
    """A training run earlier in the session (tests/test_las.py) leaves speechseq's console handler, which
    writes log lines to stdout, where doctest would read a warning as the example's output."""
    logger = logging.getLogger("speechseq")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed (see above)"


TASK_SCRIPTS = sorted(p for p in (Path(__file__).resolve().parents[1] / "tasks").glob("*/*.py"))


@pytest.mark.parametrize("path", TASK_SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_task_script_docstring_examples(path: Path) -> None:
    # tasks/ is not a package: import each script by path, as its sibling scripts do (sys.path holds its folder)
    name = f"task_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{path}: {result.failed} of {result.attempted} docstring examples failed (see above)"
