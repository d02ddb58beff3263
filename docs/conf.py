"""Sphinx configuration for Ember's documentation site.

Build it with ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors).
Everything here works offline: no intersphinx inventories are fetched.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from sphinx.deprecation import RemovedInSphinx10Warning

_DOCS = Path(__file__).resolve().parent
# Document the checkout this file belongs to, whether or not it is installed; _ext holds
# the one local extension (ember_api: each object documented once, at its home module).
sys.path[:0] = [str(_DOCS.parent), str(_DOCS / "_ext")]

# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates, once per docstring:
# Python warnings, not build warnings, but hundreds of lines that would bury real ones.
warnings.filterwarnings("ignore", category=RemovedInSphinx10Warning, module="sphinx_autodoc_typehints.*")

import ember  # noqa: E402

project = "Ember"
author = "The Ember developers"
copyright = "2026, The Ember developers"
release = ember.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_autodoc_typehints",
    "ember_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "conftest.py", "Thumbs.db", ".DS_Store"]

# MyST: ``{directive}`` fences and ``:::`` colon fences; heading anchors so pages can link
# to each other's sections (``[text](page.md#anchor)``).
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# autodoc: each module page documents the names in the module's ``__all__``, in source
# order, with the signature from the code and the types from the annotations.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
typehints_fully_qualified = False
typehints_document_rtype = True
always_use_bars_union = True

# Unresolved cross-references (torch types, Python's typing names: intersphinx is off so
# the build needs no network) render as plain text instead of failing the build; broken
# reST in a docstring still fails it.
nitpicky = False
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

suppress_warnings = [
    # Some annotations are strings that only a type checker resolves (an alias such as
    # autoguide's ``PlatesFn = Callable[..., "plate | Iterable[plate]"]`` is evaluated in the
    # globals of the module using it). The signature then shows the annotation as written;
    # reST errors in docstrings are still errors.
    "sphinx_autodoc_typehints.forward_reference",
]

html_theme = "furo"
html_title = f"Ember {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"
