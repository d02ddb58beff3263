"""Make a :class:`~ember.distributions.LinearHMM` site conditionally Gaussian."""

from __future__ import annotations

from typing import Any

import ember.distributions as dist
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult

__all__ = ["LinearHMMReparam"]


class LinearHMMReparam(Reparam):
    """Turn a ``LinearHMM`` site into a ``GaussianHMM`` given auxiliary variables.

    Component reparameterizers for the initial, transition and observation noise (e.g.
    :class:`StudentTReparam`, :class:`StableReparam`, :class:`SymmetricStableReparam`)
    draw their auxiliary sites as ``"<name>_init_*"``, ``"<name>_trans_*"`` and
    ``"<name>_obs_*"`` and leave each noise normal; the site then becomes a
    :class:`~ember.distributions.GaussianHMM` (inside a ``TransformedDistribution`` if the
    observation noise had transforms), whose ``log_prob`` exists. ``IndependentHMM`` of a
    ``LinearHMM`` is handled per component.

    :param init: the reparameterizer of the initial distribution, or ``None``.
    :param trans: the reparameterizer of the transition noise, or ``None``.
    :param obs: the reparameterizer of the observation noise, or ``None``.
    :raises AssertionError: if a component is neither ``None`` nor a :class:`Reparam`
        (Pyro's type).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> from ember.infer.reparam import StudentTReparam
    >>> hmm = dist.LinearHMM(dist.StudentT(3.0, torch.zeros(2), 1.0).to_event(1), torch.eye(2),
    ...     dist.Normal(torch.zeros(2), 1.0).to_event(1), torch.eye(2),
    ...     dist.Normal(torch.zeros(2), 1.0).to_event(1), duration=4)
    >>> model = lambda: ember.sample("x", hmm, obs=torch.zeros(4, 2))
    >>> rep = LinearHMMReparam(init=StudentTReparam())
    >>> tr = poutine.trace(poutine.reparam(model, {"x": rep})).get_trace()
    >>> list(tr.nodes)[1], type(tr.nodes["x"]["fn"]).__name__
    ('x_init_gamma', 'GaussianHMM')
    """

    def __init__(self, init: Reparam | None = None, trans: Reparam | None = None, obs: Reparam | None = None) -> None:
        for role, reparam in {"init": init, "trans": trans, "obs": obs}.items():
            if reparam is not None and not isinstance(reparam, Reparam):
                raise AssertionError(f"LinearHMMReparam: {role} must be a Reparam or None, got {type(reparam).__name__}")
        self.init = init
        self.trans = trans
        self.obs = obs

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Reparameterize the noise components, then rebuild the site as a ``GaussianHMM``.

        :param msg: the site.
        :raises AssertionError: on a site that is not a ``LinearHMM`` (or ``IndependentHMM``
            of one), naming it (Pyro's type).
        :raises ValueError: if the HMM's ``duration`` is not set, naming the site.
        """
        name = msg["name"]
        value = msg["value"]
        is_observed = bool(msg["is_observed"])
        fn, event_dim = self._unwrap(msg["fn"])
        base = fn.base_dist if isinstance(fn, dist.IndependentHMM) else fn
        if not isinstance(base, dist.LinearHMM):
            raise AssertionError(
                f"LinearHMMReparam at site {name!r} expects a LinearHMM or IndependentHMM of one, "
                f"got {type(fn).__name__}"
                + (f" of {type(base).__name__}" if base is not fn else "")
            )
        if fn.duration is None:
            raise ValueError(
                "LinearHMMReparam requires duration to be specified on targeted LinearHMM "
                f"distributions (site {name!r})"
            )

        if isinstance(fn, dist.IndependentHMM):
            # Each component is a LinearHMM with 1-D observations: move the components into
            # the event, reparameterize, and move them back.
            component_value = None if value is None else value.transpose(-1, -2).unsqueeze(-1)
            result = self.apply(
                {"name": name, "fn": fn.base_dist.to_event(1), "value": component_value, "is_observed": is_observed}
            )
            new_fn: Any = dist.IndependentHMM(result["fn"].to_event(-1))
            new_value = result["value"]
            if new_value is not component_value and new_value is not None:
                value = new_value.squeeze(-1).transpose(-1, -2)
            return {"fn": self._wrap(new_fn, event_dim), "value": value, "is_observed": is_observed}

        init_dist = fn.initial_dist
        if self.init is not None:
            init_msg: ReparamMessage = {
                "name": f"{name}_init",
                "fn": self._wrap(init_dist, event_dim - 1),
                "value": None,
                "is_observed": False,
            }
            init_dist = self.init.apply(init_msg)["fn"]
            init_dist = init_dist.to_event(1 - init_dist.event_dim)

        trans_dist = fn.transition_dist
        if self.trans is not None:
            if trans_dist.batch_shape[-1] != fn.duration:
                trans_dist = trans_dist.expand(trans_dist.batch_shape[:-1] + (fn.duration,))
            trans_msg: ReparamMessage = {
                "name": f"{name}_trans",
                "fn": self._wrap(trans_dist, event_dim),
                "value": None,
                "is_observed": False,
            }
            trans_dist = self.trans.apply(trans_msg)["fn"]
            trans_dist = trans_dist.to_event(1 - trans_dist.event_dim)

        obs_dist = fn.observation_dist
        if self.obs is not None:
            if obs_dist.batch_shape[-1] != fn.duration:
                obs_dist = obs_dist.expand(obs_dist.batch_shape[:-1] + (fn.duration,))
            obs_msg: ReparamMessage = {
                "name": f"{name}_obs",
                "fn": self._wrap(obs_dist, event_dim),
                "value": value,
                "is_observed": is_observed,
            }
            obs_result = self.obs.apply(obs_msg)
            obs_dist = obs_result["fn"].to_event(1 - obs_result["fn"].event_dim)
            value = obs_result["value"]
            is_observed = bool(obs_result["is_observed"])

        hmm: Any = dist.GaussianHMM(
            init_dist, fn.transition_matrix, trans_dist, fn.observation_matrix, obs_dist, duration=fn.duration
        )
        hmm = self._wrap(hmm, event_dim)
        if fn.transforms:
            hmm = dist.TransformedDistribution(hmm, fn.transforms)
        return {"fn": hmm, "value": value, "is_observed": is_observed}
