"""Training tasks ("recipes") by name: ``python -m speechseq.train task=NAME`` looks the name up here.

A recipe is one module with a :class:`speechseq.recipes.base.Recipe` subclass; the registry maps the name to
``"module:Class"`` and imports it only when asked, so the loop never imports tasks it does not run.
Adding a task is one file plus one line below (or :func:`register_recipe` from outside the package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from speechseq.errors import ConfigError

if TYPE_CHECKING:
    from speechseq.recipes.base import Recipe

_RECIPES: dict[str, str] = {
    "ctc": "speechseq.recipes.ctc:CTCRecipe",
    "las": "speechseq.recipes.las:LASRecipe",
    "lm": "speechseq.recipes.lm:LMRecipe",
}


def register_recipe(name: str, target: str | type) -> None:
    """Register a recipe: ``target`` is a class or ``"package.module:ClassName"``."""
    _RECIPES[name] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def available_recipes() -> list[str]:
    """Names of the registered recipes."""
    return sorted(_RECIPES)


def get_recipe(name: str) -> type[Recipe]:
    """The recipe class registered as ``name``, or named directly as ``"package.module:ClassName"``.

    The second form runs a recipe that lives outside speechseq (``task=mylab.recipes:MyRecipe``).

    >>> get_recipe("ctc").__name__
    'CTCRecipe'
    """
    if ":" in name and name not in _RECIPES:
        register_recipe(name, name)
    if name not in _RECIPES:
        import difflib

        close = difflib.get_close_matches(name, _RECIPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown task {name!r}{hint}; available: {', '.join(available_recipes())}")
    module_name, _, class_name = _RECIPES[name].partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"task {name!r}: cannot import {_RECIPES[name]} ({err})") from err
