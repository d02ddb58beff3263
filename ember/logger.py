"""The ``"ember"`` logger (Pyro's ``pyro.logger``): Ember's modules log under it.

At import it is set to ``INFO``; if the application has configured no root handler it
gets its own stderr handler (format ``LEVEL <tab> message``) and stops propagating, as
Pyro's does. Reconfigure it with :mod:`logging` as usual (``ember.log.setLevel(...)``).
"""

from __future__ import annotations

import logging

__all__ = ["default_format", "log"]

default_format = "%(levelname)s \t %(message)s"
log = logging.getLogger("ember")
log.setLevel(logging.INFO)

if not logging.root.handlers:
    _default_handler = logging.StreamHandler()
    _default_handler.setLevel(logging.INFO)
    _default_handler.setFormatter(logging.Formatter(default_format))
    log.addHandler(_default_handler)
    log.propagate = False
