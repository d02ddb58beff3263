"""Torch modules whose attributes are Ember params and samples (Pyro's ``pyro.nn``)."""

__all__: list[str] = []
