"""Reparameterization strategies: configs that choose a reparameterizer for each site.

A :class:`Strategy` is a callable config for :func:`ember.poutine.reparam` that decides
once per site (on the model's first run) and remembers the choice in :attr:`Strategy.config`,
which can be saved and reused as a plain dict config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, overload

import torch
from torch.distributions import constraints

from ember.distributions import Distribution
from ember.distributions.projected_normal import ProjectedNormal
from ember.distributions.stable import Stable, StableWithLogProb
from ember.infer.reparam.loc_scale import LocScaleReparam
from ember.infer.reparam.projected_normal import ProjectedNormalReparam
from ember.infer.reparam.reparam import Reparam
from ember.infer.reparam.softmax import GumbelSoftmaxReparam
from ember.infer.reparam.stable import LatentStableReparam, StableReparam, SymmetricStableReparam
from ember.infer.reparam.transform import TransformReparam
from ember.poutine.handlers import reparam
from ember.poutine.message import Message

__all__ = ["AutoReparam", "MinimalReparam", "Strategy"]


class Strategy(ABC):
    """Base class of strategies; subclasses implement :meth:`configure`.

    Call a strategy on a model to reparameterize it (``@MinimalReparam()`` as a
    decorator is ``poutine.reparam(model, config=MinimalReparam())``).

    :ivar config: the reparameterizer (or ``None``) chosen for each site seen so far.
    """

    def __init__(self) -> None:
        self.config: dict[str, Reparam | None] = {}
        super().__init__()

    @abstractmethod
    def configure(self, msg: Message) -> Reparam | None:
        """The reparameterizer for a sample site seen for the first time, or ``None``.

        :param msg: the site's message.
        """
        raise NotImplementedError

    @overload
    def __call__(self, msg_or_fn: Message) -> Reparam | None: ...
    @overload
    def __call__(self, msg_or_fn: Callable[..., Any]) -> Callable[..., Any]: ...
    def __call__(self, msg_or_fn: Message | Callable[..., Any]) -> Reparam | None | Callable[..., Any]:
        """For a message (as a config): the site's reparameterizer; for a model: the model reparameterized."""
        if isinstance(msg_or_fn, dict):
            name = msg_or_fn["name"]
            assert name is not None
            if name not in self.config:
                self.config[name] = self.configure(msg_or_fn)
            return self.config[name]
        return reparam(msg_or_fn, self)


def _minimal_reparam(fn: Any, is_observed: bool) -> Reparam | None:
    """The reparameterizer a site needs to be usable at all, or ``None``.

    ``Stable`` sites (which have no ``log_prob``) and ``ProjectedNormal`` sites (whose
    support no autoguide can cover) need one; latent stable sites take the cheapest,
    observed ones the cheapest that can be observed.
    """
    while isinstance(getattr(fn, "base_dist", None), Distribution):
        if isinstance(fn, torch.distributions.TransformedDistribution):
            # Reparameterize the transform only if its base needs it (the new site does).
            return None if _minimal_reparam(fn.base_dist, is_observed) is None else TransformReparam()
        fn = fn.base_dist
    if isinstance(fn, Stable) and not isinstance(fn, StableWithLogProb):
        if not is_observed:
            return LatentStableReparam()
        # A skew that may become nonzero (it has a gradient) needs the general case.
        if fn.skew.requires_grad or bool(fn.skew.any()):
            return StableReparam()
        return SymmetricStableReparam()
    if isinstance(fn, ProjectedNormal):
        return ProjectedNormalReparam()
    return None


class MinimalReparam(Strategy):
    """Reparameterize only the sites that would otherwise fail (e.g. ``Stable`` sites).

    >>> import ember
    >>> import ember.distributions as dist
    >>> strategy = MinimalReparam()
    >>> model = strategy(lambda: ember.sample("x", dist.Normal(0.0, 1.0)))
    >>> _ = model(); strategy.config
    {'x': None}
    """

    def configure(self, msg: Message) -> Reparam | None:
        return _minimal_reparam(msg["fn"], bool(msg["is_observed"]))


def _is_unconstrained(constraint: Any) -> bool:
    while hasattr(constraint, "base_constraint"):
        constraint = constraint.base_constraint
    return bool(constraint == constraints.real)


def _loc_scale_reparam(name: str, fn: Any, centered: float | None) -> Reparam | None:
    if "_decentered" in name:
        return None  # the site a LocScaleReparam made: do not decenter it again
    params = set(fn.arg_constraints)
    if not {"loc", "scale"} <= params or not _is_unconstrained(fn.support):
        return None
    return LocScaleReparam(centered=centered, shape_params=sorted(params - {"loc", "scale"}))


class AutoReparam(Strategy):
    """A recommended set of reparameterizers (which may change across releases).

    Latent sites: transformed distributions get :class:`TransformReparam`, relaxed one-hot
    categoricals :class:`GumbelSoftmaxReparam`, and real-valued location-scale families a
    :class:`LocScaleReparam` with learned (or fixed) centering; then whatever
    :class:`MinimalReparam` requires. Save :attr:`config` after a run to freeze the choice.

    :param centered: the centering of the :class:`LocScaleReparam` sites: ``None`` to learn
        it, or a float in ``[0, 1]`` (0 decenters fully, as MCMC usually wants).
    :raises AssertionError: if ``centered`` is neither ``None`` nor a float (Pyro's type).

    >>> import ember
    >>> import ember.distributions as dist
    >>> strategy = AutoReparam(centered=0.0)
    >>> _ = strategy(lambda: ember.sample("x", dist.Normal(1.0, 2.0)))()
    >>> type(strategy.config["x"]).__name__, strategy.config["x_decentered"]
    ('LocScaleReparam', None)
    """

    def __init__(self, *, centered: float | None = None) -> None:
        if not (centered is None or isinstance(centered, float)):
            raise AssertionError(f"centered must be None or a float, got {centered!r}")
        super().__init__()
        self.centered = centered

    def configure(self, msg: Message) -> Reparam | None:
        fn: Any = msg["fn"]
        if not msg["is_observed"]:
            # Ember's own distributions only: a RelaxedOneHotCategorical's base is torch's.
            while isinstance(getattr(fn, "base_dist", None), Distribution):
                if isinstance(fn, torch.distributions.TransformedDistribution):
                    return TransformReparam()
                fn = fn.base_dist
            if isinstance(fn, torch.distributions.RelaxedOneHotCategorical):
                return GumbelSoftmaxReparam()
            name = msg["name"]
            assert name is not None
            result = _loc_scale_reparam(name, fn, self.centered)
            if result is not None:
                return result
        return _minimal_reparam(fn, bool(msg["is_observed"]))
