"""``GuideMessenger``: a guide written as an effect handler around the model.

Changes step 1 of latent, non-auxiliary ``sample`` messages: the model's distribution is kept in
``msg["infer"]["prior"]`` and replaced by the posterior that :meth:`get_posterior` returns,
so the site's value is drawn from the guide while the model runs on. In step 3 the prior
is expanded to the site's final (plate-broadcast) batch shape, and the site is recorded
like ``trace`` records it. One run of the model thus yields both the model and the guide
trace (:meth:`GuideMessenger.get_traces`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import torch

from ember.distributions.delta import Delta
from ember.poutine.message import Message
from ember.poutine.trace_messenger import TraceMessenger
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites, site_is_subsample

__all__ = ["GuideMessenger"]


class GuideMessenger(TraceMessenger, ABC):
    """Base class of effect-based guides; subclasses implement :meth:`get_posterior`.

    Call the guide with the model's arguments: it runs the model under itself and returns
    the value of every sample site (latent, observed and deterministic) by name.

    :param model: the model this guide approximates the posterior of.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     ember.sample("z", dist.Normal(0.0, 1.0))
    >>> class PointGuide(GuideMessenger):
    ...     def get_posterior(self, name, prior):
    ...         return torch.tensor(0.5)
    >>> PointGuide(model)()
    {'z': tensor(0.5000)}
    """

    def __init__(self, model: Callable[..., Any]) -> None:
        super().__init__()
        # A tuple, so an nn.Module subclass does not register the model as a submodule.
        self._model = (model,)

    @property
    def model(self) -> Callable[..., Any]:
        """The model this guide was built for."""
        return self._model[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("trace", None)  # a run's trace is not part of the guide
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.trace = Trace(graph_type=self.graph_type)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]  # Pyro's contract: a guide is called like its model, not on a function
        """Draw from the guide while running the model, and return every sample value.

        ``self.args_kwargs`` holds ``(args, kwargs)`` during the run.
        """
        self.args_kwargs = (args, kwargs)
        try:
            with self:
                self.model(*args, **kwargs)
        finally:
            del self.args_kwargs
        model_trace, _ = self.get_traces()
        return {name: site["value"] for name, site in model_trace.nodes.items() if site["type"] == "sample"}

    def _pyro_sample(self, msg: Message) -> None:
        # Auxiliary sites are the guide's own draws (Pyro asks get_posterior about them too,
        # and so recurses forever).
        if msg["is_observed"] or site_is_subsample(msg) or msg["infer"].get("is_auxiliary"):
            return
        prior: Any = msg["fn"]
        msg["infer"]["prior"] = prior
        posterior = self.get_posterior(msg["name"] or "", prior)
        if isinstance(posterior, torch.Tensor):
            posterior = Delta(posterior, event_dim=prior.event_dim)
        if posterior.batch_shape != prior.batch_shape:
            posterior = posterior.expand(prior.batch_shape)
        msg["fn"] = posterior

    def _pyro_post_sample(self, msg: Message) -> None:
        # Plates outside the guide broadcast the posterior after step 1; match the prior.
        prior = msg["infer"].get("prior")
        posterior: Any = msg["fn"]
        if prior is not None and prior.batch_shape != posterior.batch_shape:
            msg["infer"]["prior"] = prior.expand(posterior.batch_shape)
        super()._pyro_post_sample(msg)

    @abstractmethod
    def get_posterior(self, name: str, prior: Any) -> Any:
        """The posterior of site ``name``, given its prior conditioned on upstream values.

        Implementations may call ``ember.param``, and ``ember.sample`` with
        ``infer={"is_auxiliary": True}``. Useful context: :meth:`upstream_value`,
        ``self.trace`` (the sites so far, with their ``fn`` and ``cond_indep_stack``) and
        ``self.args_kwargs`` (the model's inputs).

        :param name: the site's name.
        :param prior: the model's distribution at the site.
        :returns: a distribution, or a tensor (a point mass at that value).
        """
        raise NotImplementedError

    def upstream_value(self, name: str) -> Any:
        """The value of the earlier sample or deterministic site ``name``; for :meth:`get_posterior`.

        :param name: the site's name.
        """
        return self.trace.nodes[name]["value"]

    def get_traces(self) -> tuple[Trace, Trace]:
        """``(model_trace, guide_trace)`` of the last run, both without subsample sites.

        The guide trace keeps the latent sample sites with their posteriors; the model trace
        keeps every site, latent ones with their priors as ``fn``, except the guide's
        auxiliary sites.
        """
        guide_trace = prune_subsample_sites(self.trace)
        model_trace = guide_trace.copy()
        for name, guide_site in list(guide_trace.nodes.items()):
            if guide_site["type"] != "sample" or guide_site["is_observed"]:
                guide_trace.remove_node(name)
                continue
            if guide_site["infer"].get("is_auxiliary"):
                model_trace.remove_node(name)
                continue
            model_site = guide_site.copy()
            model_site["fn"] = guide_site["infer"]["prior"]
            model_trace.nodes[name] = model_site
        return model_trace, guide_trace
