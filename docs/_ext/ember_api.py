"""Document every public object once, at one home, and link to it from everywhere else.

Ember re-exports most names: ``ember.poutine.trace`` is ``ember.poutine.handlers.trace``,
``ember.distributions.Normal`` is ``ember.distributions.torch.Normal``. Documenting each
re-export in full would print every docstring two or three times and register the same
canonical object twice (Sphinx's "duplicate object description" warning). So each class,
function and handler gets one *home* among the modules that the API pages document:

1. the module that defines it, if that module is public and exports it;
2. else the nearest public package above a private defining module (``ember.nn`` for
   ``ember.nn._pyro_module.PyroModule``), if it exports it;
3. else the first exporting module in alphabetical order.

Objects from other libraries (torch's transforms and constraints re-exported by
``ember.distributions``) have no home here: their docstrings are not Ember's to fix, so
the modules exporting them list them by their origin instead.

Every other module that exports the object skips its entry and lists it, with a link to
the home and the docstring's first line, under "Also exported here". The rule looks only
at ``__all__`` and ``__module__``, so modules added later need no configuration here.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

_AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)\s*$", re.MULTILINE)


def documented_modules_in(text: str) -> list[str]:
    """The modules named by ``.. automodule::`` directives in one page's reST source."""
    return _AUTOMODULE.findall(text)


def documented_modules(api_dir: Path) -> list[str]:
    """The modules named by ``.. automodule::`` directives in the API pages, in page order."""
    names: list[str] = []
    for page in sorted(api_dir.glob("*.rst")):
        names.extend(documented_modules_in(page.read_text(encoding="utf-8")))
    return names


def _exports(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return [n for n in names if hasattr(module, n)]
    return [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    ]


def _homeable(obj: Any) -> bool:
    # Classes, functions and handler objects carry both names; plain instances (constraint
    # singletons, constants) have no __qualname__ and are documented wherever they appear.
    return (
        not inspect.ismodule(obj)
        and isinstance(getattr(obj, "__module__", None), str)
        and isinstance(getattr(obj, "__qualname__", None), str)
    )


def _public_ancestor(modname: str) -> str:
    parts = modname.split(".")
    while any(p.startswith("_") for p in parts):
        parts.pop()
    return ".".join(parts)


class Homes:
    """Which documented module is each exported object's home."""

    def __init__(self, modules: list[str]) -> None:
        self.exporters: dict[int, list[str]] = {}
        self.objects: dict[int, Any] = {}
        self.exported: dict[str, list[tuple[str, Any]]] = {}
        for modname in modules:
            try:
                module = importlib.import_module(modname)
            except ImportError:
                # autodoc reports the failed import itself, naming the module (a build error).
                continue
            pairs = [(n, getattr(module, n)) for n in _exports(module)]
            self.exported[modname] = pairs
            for _, obj in pairs:
                if _homeable(obj) and _is_ember(obj):
                    self.objects[id(obj)] = obj
                    self.exporters.setdefault(id(obj), []).append(modname)
        self.home: dict[int, str] = {key: self._choose(self.objects[key], mods) for key, mods in self.exporters.items()}

    @staticmethod
    def _choose(obj: Any, exporters: list[str]) -> str:
        defined_in = str(obj.__module__)
        if defined_in in exporters:
            return defined_in
        ancestor = _public_ancestor(defined_in)
        if ancestor in exporters:
            return ancestor
        return sorted(exporters)[0]

    def target(self, obj: Any) -> str:
        """The full name the object is documented under."""
        home = self.home[id(obj)]
        name = next(n for n, o in self.exported[home] if o is obj)
        return f"{home}.{name}"


def _is_ember(obj: Any) -> bool:
    return str(obj.__module__).split(".")[0] == "ember"


def _summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.strip().split("\n\n", 1)[0].split())
    # A paragraph introducing a literal block ends in "::"; alone in a list it would not.
    return first[:-1] if first.endswith("::") else first


class _State:
    homes: Homes | None = None
    current: str | None = None


def _on_builder_inited(app: Any) -> None:
    _State.homes = Homes(documented_modules(Path(app.srcdir) / "api"))


def _signature(obj: Any) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(*args, **kwargs)"

    def show(annotation: Any) -> str:
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    params = []
    for param in sig.parameters.values():
        text = str(param.replace(annotation=inspect.Parameter.empty, default=inspect.Parameter.empty))
        if param.annotation is not inspect.Parameter.empty:
            text += f": {show(param.annotation)}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = "" if sig.return_annotation is inspect.Signature.empty else f" -> {show(sig.return_annotation)}"
    return f"({', '.join(params)}){returns}"


def _callable_objects(lines: list[str], pairs: list[tuple[str, Any]]) -> None:
    # A handler (``ember.poutine.handlers.block``) is a callable object, not a function:
    # autodoc finds no way to document it, so it is written out as the function it acts as.
    for n, o in pairs:
        lines.extend(["", f".. py:function:: {n}{_signature(o)}", ""])
        lines.extend(f"   {line}" if line else "" for line in (inspect.getdoc(o) or "").splitlines())
    lines.append("")


def _on_process_docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what != "module" or _State.homes is None or name not in _State.homes.exported:
        return
    # autodoc processes a module's own docstring before it filters the module's members.
    _State.current = name
    homes = _State.homes
    objects = [
        (n, o)
        for n, o in homes.exported[name]
        if homes.home.get(id(o)) == name and callable(o) and not (inspect.isclass(o) or inspect.isroutine(o))
    ]
    _callable_objects(lines, objects)
    elsewhere = [(n, o) for n, o in homes.exported[name] if _homeable(o) and homes.home.get(id(o), "") != name]
    if not elsewhere:
        return
    lines.extend(["", ".. rubric:: Also exported here", ""])
    for n, o in elsewhere:
        if id(o) in homes.home:
            summary = _summary(o)
            lines.append(f"* :py:obj:`{n} <{homes.target(o)}>`" + (f": {summary}" if summary else ""))
        else:
            lines.append(f"* ``{n}``: ``{o.__module__}.{o.__qualname__}``, re-exported unchanged")
    lines.append("")


def _on_skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    homes = _State.homes
    if what != "module" or homes is None or _State.current is None or not _homeable(obj):
        return None
    # At home, keep it even where autodoc would not: a handler is an object, not a function,
    # and autodoc skips module-level objects that have no ``#:`` comment.
    return homes.home.get(id(obj), "") != _State.current


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-process-docstring", _on_process_docstring)
    app.connect("autodoc-skip-member", _on_skip_member)
    # The skip rule depends on a module-at-a-time walk: keep reading serial.
    return {"parallel_read_safe": False, "parallel_write_safe": True}
