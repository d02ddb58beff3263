"""The API reference (docs/api/*.rst) documents every public module of Ember, once.

A public module is one whose dotted path has no ``_``-prefixed part. A module added on
another branch fails the first test with the line to add and the page to add it to.
"""

from __future__ import annotations

import importlib.util
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

import ember

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load_extension() -> ModuleType:
    # docs/_ext is not a package on sys.path; load the one file by location.
    spec = importlib.util.spec_from_file_location("ember_api", DOCS / "_ext" / "ember_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ember_api", module)
    spec.loader.exec_module(module)
    return module


ember_api = _load_extension()


def _public_modules() -> list[str]:
    names = ["ember"]
    for info in pkgutil.walk_packages(ember.__path__, "ember."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _page_for(module: str, documented: dict[str, str]) -> str:
    parent = module
    while parent not in documented and "." in parent:
        parent = parent.rsplit(".", 1)[0]
    return documented.get(parent, "api/ember.rst")


def _documented_by_page() -> dict[str, str]:
    pages: dict[str, str] = {}
    for page in sorted((DOCS / "api").glob("*.rst")):
        for name in ember_api.documented_modules_in(page.read_text(encoding="utf-8")):
            pages.setdefault(name, f"api/{page.name}")
    return pages


def test_every_public_module_is_in_the_api_reference() -> None:
    documented = _documented_by_page()
    missing = [name for name in _public_modules() if name not in documented]
    hints = [f"docs/{_page_for(name, documented)}: .. automodule:: {name}" for name in missing]
    assert not missing, "public modules missing from the API reference; add:\n" + "\n".join(hints)


def test_the_api_reference_names_only_modules_that_exist_and_each_once() -> None:
    listed = ember_api.documented_modules(DOCS / "api")
    assert sorted(set(listed) - set(_public_modules())) == []
    assert len(listed) == len(set(listed)), sorted(n for n in set(listed) if listed.count(n) > 1)


def test_each_exported_object_has_one_home_that_exports_it() -> None:
    homes = ember_api.Homes(ember_api.documented_modules(DOCS / "api"))
    for key, home in homes.home.items():
        obj = homes.objects[key]
        assert home in homes.exporters[key]
        assert any(o is obj for _, o in homes.exported[home]), (obj, home)


def test_homes_follow_the_defining_module_then_the_public_package() -> None:
    homes = ember_api.Homes(ember_api.documented_modules(DOCS / "api"))
    from ember import nn, poutine
    from ember.distributions import Normal
    from ember.infer import Trace_ELBO

    # Defined in a public module: documented there (Pyro's path), linked from the package.
    assert homes.target(poutine.trace) == "ember.poutine.handlers.trace"
    assert homes.target(poutine.Trace) == "ember.poutine.trace_struct.Trace"
    assert homes.target(Trace_ELBO) == "ember.infer.trace_elbo.Trace_ELBO"
    assert homes.target(ember.sample) == "ember.primitives.sample"
    assert homes.target(Normal) == f"{Normal.__module__}.Normal"
    # Defined in a private module: documented at the public package above it.
    assert nn.PyroModule.__module__.startswith("ember.nn._")
    assert homes.target(nn.PyroModule) == "ember.nn.PyroModule"
    assert homes.target(ember.set_rng_seed) == "ember.set_rng_seed"
    # torch's own objects re-exported by Ember have no home: their docs are torch's.
    import torch.distributions.transforms as torch_transforms

    assert id(torch_transforms.AffineTransform) not in homes.home


def test_handlers_are_written_out_as_functions_with_their_signature() -> None:
    from ember import poutine

    lines: list[str] = []
    ember_api._callable_objects(lines, [("condition", poutine.condition)])
    header = next(line for line in lines if line.startswith(".. py:function::"))
    assert header.startswith(".. py:function:: condition(fn")
    assert "data" in header
    assert inspect.cleandoc(poutine.condition.__doc__ or "").splitlines()[0] in "\n".join(lines)
