"""Inference algorithms built on the handlers (ELBOs, SVI, guides, predictive)."""

__all__: list[str] = []
