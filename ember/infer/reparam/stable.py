"""Auxiliary-variable reparameterizers for :class:`~ember.distributions.Stable` sites.

``Stable`` has no ``log_prob``; these write a stable variable as a differentiable function
of parameter-free uniform and exponential noise (Chambers-Mallows-Stuck), optionally keeping
a normal with a random scale at the site so that it can be observed.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import ember.distributions as dist
from ember.distributions.stable import Stable, StableWithLogProb, _cms, _standard_stable
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.infer.util import is_validation_enabled
from ember.primitives import sample

__all__ = ["LatentStableReparam", "StableReparam", "SymmetricStableReparam"]

# Near stability 1 the S -> S0 shift of StableReparam has a removable singularity; it is
# interpolated between the two ends of this window.
_SHIFT_HOLE_RADIUS = 0.005


def _check_stable(reparam: str, name: str, fn: Any) -> Stable:
    if not isinstance(fn, Stable) or isinstance(fn, StableWithLogProb) or fn.coords != "S0":
        raise AssertionError(
            f"{reparam} at site {name!r} expects a Stable distribution in S0 coordinates "
            f"(not StableWithLogProb), got {type(fn).__name__}"
            + (f" with coords={fn.coords!r}" if isinstance(fn, Stable) else "")
        )
    return fn


def _noise(reparam: Reparam, prefix: str, proto: torch.Tensor, event_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``U ~ Uniform(-pi/2, pi/2)`` and ``W ~ Exponential(1)`` at ``<prefix>_uniform/_exponential``."""
    half_pi = proto.new_tensor(math.pi / 2)
    uniform = dist.Uniform(-half_pi, half_pi).expand(proto.shape)
    u = sample(f"{prefix}_uniform", reparam._wrap(uniform, event_dim))
    w = sample(f"{prefix}_exponential", reparam._wrap(dist.Exponential(proto.new_ones(proto.shape)), event_dim))
    return u, w


def _mixing_scale(stability: torch.Tensor, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``cos(pi a / 4)^(1/a) sqrt(Z)`` with ``Z ~ S(a/2, 1)`` totally skewed (so ``Z >= 0``)."""
    z = _cms(stability / 2, torch.ones_like(stability), u, w, "S")
    return (math.pi / 4 * stability).cos().pow(stability.reciprocal()) * z.sqrt()


class LatentStableReparam(Reparam):
    """Draw a latent ``Stable`` site from two parameter-free noise sites.

    The sites ``"<name>_uniform" ~ Uniform(-pi/2, pi/2)`` and ``"<name>_exponential" ~
    Exponential(1)`` are drawn and the site becomes a deterministic function of them (the
    Chambers-Mallows-Stuck method), so SVI and MCMC can work with it. Latent sites only; use
    :class:`SymmetricStableReparam` or :class:`StableReparam` for observations.

    :raises AssertionError: on a site that is not an S0 ``Stable`` (Pyro's type), naming it.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> model = lambda: ember.sample("x", dist.Stable(1.5, 0.5))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": LatentStableReparam()})).get_trace()
    >>> list(tr.nodes)[1:4]
    ['x_uniform', 'x_exponential', 'x']
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Replace the site by the noise sites and a deterministic transform of them.

        :param msg: the site.
        :raises NotImplementedError: for an observed site, naming it.
        """
        name = msg["name"]
        unwrapped, event_dim = self._unwrap(msg["fn"])
        fn = _check_stable("LatentStableReparam", name, unwrapped)
        if msg["is_observed"]:
            raise NotImplementedError(
                f"At pyro.sample({name!r},...), LatentStableReparam does not support observe statements"
            )
        u, w = _noise(self, name, fn.stability, event_dim)
        value = fn.loc + fn.scale * _standard_stable(fn.stability, fn.skew, u, w, "S0")
        new_fn = dist.Delta(value, event_dim=event_dim).mask(False)
        return {"fn": new_fn, "value": value, "is_observed": True}


class SymmetricStableReparam(Reparam):
    """Draw a symmetric (``skew=0``) ``Stable`` site as a normal with a random scale.

    A symmetric stable variable is a scale mixture of normals whose squared scale is a
    totally skewed stable variable of half the stability. The mixing scale is drawn from
    ``"<name>_uniform"`` and ``"<name>_exponential"``; the site becomes a ``Normal``, so it
    may be observed.

    :raises AssertionError: on a site that is not an S0 ``Stable`` (Pyro's type), naming it.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> model = lambda: ember.sample("x", dist.Stable(1.5, 0.0), obs=torch.tensor(0.3))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": SymmetricStableReparam()})).get_trace()
    >>> type(tr.nodes["x"]["fn"]).__name__
    'Normal'
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Draw the mixing scale and make the site conditionally normal.

        :param msg: the site.
        :raises ValueError: with validation on, if some skew is nonzero or some stability is
            2 or more, naming the site.
        """
        name = msg["name"]
        unwrapped, event_dim = self._unwrap(msg["fn"])
        fn = _check_stable("SymmetricStableReparam", name, unwrapped)
        if is_validation_enabled():
            if not bool((fn.skew == 0).all()):
                raise ValueError(f"SymmetricStableReparam found nonzero skew at site {name!r}")
            if not bool((fn.stability < 2).all()):
                raise ValueError(f"SymmetricStableReparam found stability >= 2 at site {name!r}")
        u, w = _noise(self, name, fn.stability, event_dim)
        scale = fn.scale * _mixing_scale(fn.stability, u, w)
        scale = scale.clamp(min=torch.finfo(scale.dtype).tiny)
        # Stable(2, 0, s, m) is Normal(m, s * sqrt(2)).
        new_fn = self._wrap(dist.Normal(fn.loc, scale * 2**0.5), event_dim)
        return {"fn": new_fn, "value": msg["value"], "is_observed": bool(msg["is_observed"])}


def _shift(a: torch.Tensor, skew: torch.Tensor, skew_abs: torch.Tensor) -> torch.Tensor:
    """The S -> S0 location shift ``(sgn(b) |b|^(1/a) - b) tan(pi a / 2)``."""
    return (skew.sign() * skew_abs.pow(a.reciprocal()) - skew) * (math.pi / 2 * a).tan()


def _safe_shift(a: torch.Tensor, skew: torch.Tensor, skew_abs: torch.Tensor) -> torch.Tensor:
    """:func:`_shift`, linearly interpolated across the window around ``a = 1``.

    The window's ends replace ``a`` by value only (their gradient is ``a``'s), as Pyro does.
    """
    with torch.no_grad():
        near = (a - 1).abs() <= _SHIFT_HOLE_RADIUS
    if not bool(near.any()):
        return _shift(a, skew, skew_abs)
    low_end = torch.where(near, 1 - _SHIFT_HOLE_RADIUS, a.detach())
    high_end = torch.where(near, 1 + _SHIFT_HOLE_RADIUS, a.detach())
    low = _shift(a + (low_end - a).detach(), skew, skew_abs)
    high = _shift(a + (high_end - a).detach(), skew, skew_abs)
    with torch.no_grad():
        t = torch.where(near, (a - low_end) / (2 * _SHIFT_HOLE_RADIUS), 0.5)
    return (1 - t) * low + t * high


class StableReparam(Reparam):
    """Draw any ``Stable`` site as a normal whose location and scale are random.

    The standardized variable is split into a symmetric and a totally skewed stable part
    with the same stability (the scales ``(1 - |b|)^(1/a)`` and ``|b|^(1/a)`` recombine to
    scale 1 and skew ``b``). The skewed part is drawn from ``"<name>_t_uniform"`` and
    ``"<name>_t_exponential"``, the symmetric part's mixing scale from ``"<name>_z_uniform"``
    and ``"<name>_z_exponential"``, and the site becomes a ``Normal``, so it may be observed.

    :raises AssertionError: on a site that is not an S0 ``Stable`` (Pyro's type), naming it.

    >>> import ember
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> model = lambda: ember.sample("x", dist.Stable(1.5, 0.5))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": StableReparam()})).get_trace()
    >>> list(tr.nodes)[1:6]
    ['x_z_uniform', 'x_z_exponential', 'x_t_uniform', 'x_t_exponential', 'x']
    """

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Draw both auxiliary pairs and make the site conditionally normal.

        :param msg: the site.
        """
        name = msg["name"]
        unwrapped, event_dim = self._unwrap(msg["fn"])
        fn = _check_stable("StableReparam", name, unwrapped)
        a = fn.stability
        zu, zw = _noise(self, f"{name}_z", a, event_dim)
        tu, tw = _noise(self, f"{name}_t", a, event_dim)
        t = _standard_stable(a, torch.ones_like(a), tu, tw, "S0")
        eps = torch.finfo(a.dtype).eps
        skew_abs = fn.skew.abs().clamp(min=eps, max=1 - eps)
        inv_a = a.reciprocal()
        skewed_scale, symmetric_scale = skew_abs.pow(inv_a), (1 - skew_abs).pow(inv_a)
        loc = fn.loc + fn.scale * (fn.skew.sign() * skewed_scale * t + _safe_shift(a, fn.skew, skew_abs))
        scale = fn.scale * symmetric_scale * _mixing_scale(a, zu, zw)
        scale = scale.clamp(min=torch.finfo(scale.dtype).tiny)
        new_fn = self._wrap(dist.Normal(loc, scale * 2**0.5), event_dim)
        return {"fn": new_fn, "value": msg["value"], "is_observed": bool(msg["is_observed"])}
