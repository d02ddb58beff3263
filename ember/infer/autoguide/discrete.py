"""``AutoDiscreteParallel``: a mean-field guide for discrete latent sites, enumerated in parallel."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch

from ember.distributions import Bernoulli, Categorical, OneHotCategorical
from ember.infer.autoguide.guide import AutoGuide
from ember.infer.autoguide.utils import deep_getattr, deep_setattr
from ember.nn.module import PyroParam
from ember.poutine.enumerate_config import config_enumerate
from ember.poutine.handlers import block, trace
from ember.poutine.message import CondIndepStackFrame, Message
from ember.primitives import sample

__all__ = ["AutoDiscreteParallel"]

_SUPPORTED = (Bernoulli, Categorical, OneHotCategorical)


class AutoDiscreteParallel(AutoGuide):
    """A guide with a learned, independent ``probs`` for each discrete latent site.

    Every latent site must be a :class:`~ember.distributions.Bernoulli`,
    :class:`~ember.distributions.Categorical` or :class:`~ember.distributions.OneHotCategorical`;
    the guide marks it for parallel enumeration. Site ``x`` gets the param
    ``AutoDiscreteParallel.x_probs``, initialised to the prior's.

    :param model: the model.
    :param create_plates: as for :class:`~ember.infer.autoguide.AutoGuide`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("k", dist.Categorical(torch.tensor([0.2, 0.8])))
    >>> guide = AutoDiscreteParallel(model)
    >>> _ = guide()
    >>> ember.get_param_store()["AutoDiscreteParallel.k_probs"]
    tensor([0.2000, 0.8000], grad_fn=<...>)
    """

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        hidden_model = block(config_enumerate(self.model), self._prototype_hide_fn)
        self.prototype_trace = block(trace(hidden_model).get_trace)(*args, **kwargs)
        if self.master is not None:
            root = self.master()
            assert root is not None
            root._check_prototype(self.prototype_trace)
        self._discrete_sites: list[tuple[Message, type[Any], list[tuple[str, torch.Tensor, Any]]]] = []
        self._cond_indep_stacks: dict[str, tuple[CondIndepStackFrame, ...]] = {}
        self._prototype_frames = {}
        for name, site in self.prototype_trace.iter_stochastic_nodes():
            if site["infer"].get("enumerate") != "parallel":
                raise NotImplementedError(
                    f'Expected sample site "{name}" to be discrete and configured for parallel enumeration'
                )
            fn: Any = site["fn"]
            family = type(fn)
            if family not in _SUPPORTED:
                raise NotImplementedError(f"{family.__name__} is not supported")
            self._discrete_sites.append((site, family, [("probs", fn.probs.detach().clone(), fn.arg_constraints["probs"])]))
            self._cond_indep_stacks[name] = site["cond_indep_stack"]
            for frame in site["cond_indep_stack"]:
                if not frame.vectorized:
                    raise NotImplementedError("AutoDiscreteParallel does not support sequential pyro.plate")
                self._prototype_frames[frame.name] = frame
        for site, _, params in self._discrete_sites:
            for param_name, init, constraint in params:
                deep_setattr(self, f"{site['name']}_{param_name}", PyroParam(init, constraint=constraint))

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample every discrete site from its learned distribution; values by site name."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result: dict[str, torch.Tensor] = {}
        for site, family, params in self._discrete_sites:
            name = site["name"] or ""
            values = {param_name: deep_getattr(self, f"{name}_{param_name}") for param_name, _, _ in params}
            with ExitStack() as stack:
                for frame in self._cond_indep_stacks[name]:
                    stack.enter_context(plates[frame.name])
                result[name] = sample(name, family(**values), infer={"enumerate": "parallel"})
        return result
