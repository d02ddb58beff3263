"""Partial decentering of location-scale latent variables."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import constraints

from ember.distributions.delta import Delta
from ember.distributions.util import is_identically_one, is_validation_enabled
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.primitives import param, sample

__all__ = ["LocScaleReparam"]


class LocScaleReparam(Reparam):
    """Decenter a latent site whose distribution has ``loc`` and ``scale`` parameters.

    With centering ``c``, the site ``x ~ D(loc, scale, *shape_params)`` is drawn as
    ``x_decentered ~ D(c * loc, scale ** c, *shape_params)`` and recovered as
    ``x = loc + scale ** (1 - c) * (x_decentered - c * loc)``; the original site becomes a
    deterministic (zero-density) function of ``x_decentered``. ``c = 0`` is the fully
    non-centered form, ``c = 1`` leaves the site alone. Meant for latent sites, not for
    likelihoods (Gorinova, Moore and Hoffman, 2019, "Automatic Reparameterisation of
    Probabilistic Programs").

    :param centered: the centering in ``[0, 1]`` (a float or a tensor broadcasting with the
        event shape), or ``None`` to learn it as the param ``"<site>_centered"``, one value
        per event element, initialised to 0.5.
    :param shape_params: names of further parameters copied unchanged into the decentered
        distribution; by default every parameter in its ``arg_constraints`` except ``loc``
        and ``scale``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model():
    ...     return ember.sample("x", dist.StudentT(3.0, 1.0, 2.0))
    >>> reparameterized = poutine.reparam(model, {"x": LocScaleReparam(centered=0.0)})
    >>> tr = poutine.trace(reparameterized).get_trace()
    >>> x, x_decentered = tr.nodes["x"]["value"], tr.nodes["x_decentered"]["value"]
    >>> bool(torch.isclose(x, 1.0 + 2.0 * x_decentered))
    True
    """

    def __init__(self, centered: float | torch.Tensor | None = None, shape_params: Sequence[str] | None = None) -> None:
        assert centered is None or isinstance(centered, (float, torch.Tensor))
        if shape_params is not None:
            assert isinstance(shape_params, (tuple, list))
            assert all(isinstance(name, str) for name in shape_params)
        if is_validation_enabled():
            if isinstance(centered, float):
                assert 0 <= centered <= 1, f"centered must lie in [0, 1], got {centered}"
            elif isinstance(centered, torch.Tensor):
                assert bool((centered >= 0).all()) and bool((centered <= 1).all()), "centered must lie in [0, 1]"
        self.centered = centered
        self.shape_params = None if shape_params is None else tuple(shape_params)

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        name = msg["name"]
        value = msg["value"]
        is_observed = bool(msg["is_observed"])
        centered = self.centered
        if is_identically_one(centered):
            return {"fn": msg["fn"], "value": value, "is_observed": is_observed}

        event_shape = msg["fn"].event_shape
        fn, event_dim = self._unwrap(msg["fn"])
        shape_params = self.shape_params
        if shape_params is None:
            shape_params = tuple(key for key in fn.arg_constraints if key not in ("loc", "scale"))
        loc: torch.Tensor = fn.loc
        scale: torch.Tensor = fn.scale
        if centered is None:
            centered = param(
                f"{name}_centered",
                lambda: loc.new_full(event_shape, 0.5),
                constraint=constraints.unit_interval,
            )
        params = {key: getattr(fn, key) for key in shape_params}
        params["loc"] = loc * centered
        params["scale"] = scale**centered
        decentered_fn = type(fn)(**params)

        # Map a known value (observation or initial value) into the decentered space.
        decentered_value = None
        if value is not None:
            decentered_value = (value - loc) * scale.pow(centered - 1) + centered * loc

        decentered_value = sample(
            f"{name}_decentered",
            self._wrap(decentered_fn, event_dim),
            obs=decentered_value,
            infer={"is_observed": is_observed},
        )

        if value is None:
            value = loc + scale.pow(1 - centered) * (decentered_value - centered * loc)

        # The original site becomes deterministic, as ember.deterministic would record it.
        new_fn = Delta(value, event_dim=event_dim).mask(False)
        return {"fn": new_fn, "value": value, "is_observed": True}
