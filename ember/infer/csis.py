"""Compiled sequential importance sampling (Le, Baydin and Wood, 2017).

The guide is trained, before any data is seen, to propose the latents of joint draws of the
model given the draws' observations: the loss is :math:`E_{p(x, z)}[-\\log q(z | x)]`. Then
it serves as the proposal of :class:`~ember.infer.importance.Importance` for real data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from ember.infer.importance import Importance
from ember.infer.rws import _matched_guide_trace
from ember.infer.util import torch_item, zero_grads
from ember.optim import PyroOptim
from ember.poutine.handlers import trace, uncondition
from ember.poutine.trace_struct import Trace
from ember._util import warn_if_nan

__all__ = ["CSIS"]

Model = Callable[..., Any]


class CSIS(Importance):
    """Compiled sequential importance sampling: an amortised proposal, then importance sampling.

    The model and guide take an ``observations`` keyword, a dict of observed values by site
    name; during training the guide gets those of joint draws of the model. :meth:`run`
    (inherited) importance-samples with the trained guide.

    :param model: the model (called with ``observations=...`` by :meth:`run`).
    :param guide: the proposal network, reading ``observations``.
    :param optim: an Ember optimizer for the guide's params.
    :param num_inference_samples: the number of importance samples :meth:`run` draws.
    :param training_batch_size: joint draws per :meth:`step`.
    :param validation_batch_size: joint draws in the fixed validation batch.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model(observations={"x": torch.tensor(0.0)}):
    ...     z = ember.sample("z", dist.Normal(0.0, 1.0))
    ...     ember.sample("x", dist.Normal(z, 1.0), obs=observations["x"])
    >>> def guide(observations={"x": torch.tensor(0.0)}):
    ...     w = ember.param("w", torch.tensor(0.0))
    ...     ember.sample("z", dist.Normal(w * observations["x"], 1.0))
    >>> ember.clear_param_store()
    >>> csis = CSIS(model, guide, ember.optim.Adam({"lr": 0.1}), training_batch_size=4)
    >>> isinstance(csis.step(), float)
    True
    """

    def __init__(
        self,
        model: Model,
        guide: Model,
        optim: PyroOptim,
        num_inference_samples: int = 10,
        training_batch_size: int = 10,
        validation_batch_size: int = 20,
    ) -> None:
        super().__init__(model, guide, num_inference_samples)
        self.model = model
        self.guide = guide
        self.optim = optim
        self.training_batch_size = training_batch_size
        self.validation_batch_size = validation_batch_size
        self.validation_batch: list[Trace] | None = None

    def set_validation_batch(self, *args: Any, **kwargs: Any) -> None:
        """Draw and keep ``validation_batch_size`` joint traces of the model (arguments go to it)."""
        self.validation_batch = [self._sample_from_joint(*args, **kwargs) for _ in range(self.validation_batch_size)]

    def step(self, *args: Any, **kwargs: Any) -> float:
        """One gradient step on a fresh batch of joint draws; returns the loss estimate."""
        with trace(param_only=True) as param_capture:
            loss = self.loss_and_grads(True, None, *args, **kwargs)
        params = {
            getattr(site["value"], "unconstrained")()
            for site in param_capture.trace.nodes.values()
            if getattr(site["value"], "unconstrained")().grad is not None
        }
        self.optim(params)
        zero_grads(params)
        return torch_item(loss)

    def loss_and_grads(self, grads: bool, batch: Sequence[Trace] | None, *args: Any, **kwargs: Any) -> float:
        """The mean of ``-log q(z | x)`` over ``batch`` (default: fresh joint draws).

        :param grads: also accumulate the loss's gradient into the guide's params.
        :param batch: model traces to score the guide on.
        """
        traces: Iterable[Trace]
        if batch is None:
            traces = (self._sample_from_joint(*args, **kwargs) for _ in range(self.training_batch_size))
            batch_size = self.training_batch_size
        else:
            traces = batch
            batch_size = len(batch)
        loss = 0.0
        for model_trace in traces:
            with trace(param_only=True) as particle_capture:
                guide_trace = self._get_matched_trace(model_trace, *args, **kwargs)
            particle_loss = torch.as_tensor(self._differentiable_loss_particle(guide_trace)) / batch_size
            if grads:
                leaves = list({getattr(s["value"], "unconstrained")(): None for s in particle_capture.trace.nodes.values()})
                if leaves and particle_loss.requires_grad:
                    for leaf, grad in zip(leaves, torch.autograd.grad(particle_loss, leaves, allow_unused=True)):
                        if grad is not None:
                            leaf.grad = grad if leaf.grad is None else leaf.grad + grad
            loss += torch_item(particle_loss)
        warn_if_nan(loss, "loss")
        return loss

    def _differentiable_loss_particle(self, guide_trace: Trace) -> torch.Tensor | float:
        return -guide_trace.log_prob_sum()

    def validation_loss(self, *args: Any, **kwargs: Any) -> float:
        """The loss on the fixed validation batch (drawn on first use): a less noisy training curve."""
        if self.validation_batch is None:
            self.set_validation_batch(*args, **kwargs)
        return self.loss_and_grads(False, self.validation_batch, *args, **kwargs)

    def _get_matched_trace(self, model_trace: Trace, *args: Any, **kwargs: Any) -> Trace:
        """The guide's trace with the values of ``model_trace``, given its observations."""
        return _matched_guide_trace(model_trace, self.guide, args, kwargs)

    def _sample_from_joint(self, *args: Any, **kwargs: Any) -> Trace:
        """A trace of the model with every observed site drawn instead (a joint sample)."""
        return trace(uncondition(self.model)).get_trace(*args, **kwargs)
