"""Optimizers for SVI: torch optimizers wrapped per parameter (Pyro's ``pyro.optim``)."""

__all__: list[str] = []
