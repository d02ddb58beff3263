"""Every public name of Pyro's ``infer``, ``infer.reparam``, ``infer.util``, ``infer.autoguide``,
``optim``, ``util``, ``poutine``, ``distributions`` (with ``transforms`` and ``constraints``) and
``nn`` has an Ember counterpart, except the names listed below with the reason they are missing,
so the surface cannot silently fall behind Pyro's."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

# Names other branches are adding; the lead empties each entry as its branch merges.
PENDING: dict[str, dict[str, str]] = {
    "optim": {
        "_LRScheduler": "torch's private scheduler base; not API",
    },
}

# Module-level imports pyro.util leaks into its namespace; they are not API.
LEAKED = {
    "util": {
        "Any", "Dict", "FrozenSet", "List", "Optional", "Set", "TYPE_CHECKING", "Union",
        "contextmanager", "defaultdict", "math", "np", "numbers", "overload", "random", "sys",
        "torch", "warnings", "zip_longest",
    },
}


def _public(module: ModuleType) -> set[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    # No __all__ (pyro.util, pyro.infer.util): what the module defines or leaks, by dir().
    return {name for name in dir(module) if not name.startswith("_")}


def _defined_here(module: ModuleType) -> set[str]:
    """The names ``module`` itself defines (for pyro.infer.util, whose imports are not API)."""
    return {
        name
        for name in _public(module)
        if inspect.getmodule(getattr(module, name)) is module
    }


@pytest.mark.parametrize(
    "path",
    [
        "infer",
        "infer.reparam",
        "infer.util",
        "infer.autoguide",
        "optim",
        "util",
        "poutine",
        "distributions",
        "distributions.transforms",
        "distributions.constraints",
        "nn",
    ],
)
def test_every_public_pyro_name_has_an_ember_counterpart(path: str) -> None:
    theirs_module = importlib.import_module(f"pyro.{path}")
    ours_module = importlib.import_module(f"ember.{path}")
    theirs = _defined_here(theirs_module) if path == "infer.util" else _public(theirs_module)
    theirs -= LEAKED.get(path, set())
    missing = {name for name in theirs if not hasattr(ours_module, name)}
    pending = set(PENDING.get(path, {}))
    landed = {name for name in pending if hasattr(ours_module, name)}
    assert not landed, f"remove the PENDING entries that have landed: {sorted(landed)}"
    assert pending <= theirs, f"PENDING lists names pyro.{path} does not have: {sorted(pending - theirs)}"
    assert missing == pending, f"ember.{path} lacks {sorted(missing - pending)}"


@pytest.mark.parametrize("path", ["infer", "infer.reparam", "optim", "util"])
def test_ember_exports_what_it_lists(path: str) -> None:
    module = importlib.import_module(f"ember.{path}")
    names = module.__all__
    assert names == sorted(names)
    assert all(hasattr(module, name) for name in names)


def test_the_top_level_has_pyros_settings_and_log() -> None:
    import pyro

    import ember

    assert {"log", "settings"} <= set(ember.__all__)
    assert {"log", "settings"} <= set(pyro.__all__)
    assert ember.settings.get.__module__ == "ember.settings"
