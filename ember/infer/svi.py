"""Stochastic variational inference: gradient steps on a loss of a model and a guide.

One :meth:`SVI.step` runs the loss's ``loss_and_grads`` inside a param-only ``trace``, which
records every param site the model and guide touched; their unconstrained leaves are then
stepped by the :class:`~ember.optim.PyroOptim` (which creates optimizers for new params)
and their gradients zeroed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ember.infer.abstract_infer import TracePosterior, WeightedTrace
from ember.infer.compiled_elbo import _CompiledELBO
from ember.infer.elbo import ELBO
from ember.infer.util import is_validation_enabled, zero_grads
from ember.optim.optim import PyroOptim
from ember.poutine.handlers import block, replay, trace
from ember.poutine.runtime import restores_handler_state
from ember.primitives import get_param_store
from ember._util import warn_at_caller

__all__ = ["SVI"]

Loss = Callable[..., Any]


def _item(loss: Any) -> Any:
    """The loss as Python numbers: ``.item()`` of a tensor, element-wise for a tuple."""
    if isinstance(loss, tuple):
        # Losses such as reweighted wake-sleep return a tuple; keep its type (named tuples too).
        items = map(_item, loss)
        return type(loss)(*items) if hasattr(loss, "_fields") else type(loss)(items)
    return loss.item() if isinstance(loss, torch.Tensor) else loss


def _default_loss_and_grads(loss: Loss) -> Loss:
    def loss_and_grads(*args: Any, **kwargs: Any) -> Any:
        loss_value = loss(*args, **kwargs)
        if getattr(loss_value, "requires_grad", False):
            loss_value.backward(retain_graph=True)
        return loss_value

    return loss_and_grads


def _has_nan(loss: Any) -> bool:
    if isinstance(loss, tuple):
        return any(_has_nan(part) for part in loss)
    return isinstance(loss, float) and math.isnan(loss)


def _values(grad: torch.Tensor) -> torch.Tensor:
    return (grad.coalesce().values() if grad.is_sparse else grad).reshape(-1)


def _nonfinite_grads(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The params whose gradient holds a NaN or an infinity."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            by_device.setdefault(p.grad.device, []).append(_values(p.grad))
    # One reduction per device: 0 * x is 0 for finite x and NaN for NaN or inf.
    if all(math.isfinite(torch.cat(grads).mul(0.0).sum().item()) for grads in by_device.values()):
        return []
    return [p for p in params if p.grad is not None and not bool(_values(p.grad).isfinite().all())]


class SVI(TracePosterior):
    """Stochastic variational inference of ``model`` with the variational family ``guide``.

    :param model: the model.
    :param guide: the guide; its params (and the model's) are optimized.
    :param optim: a :class:`~ember.optim.PyroOptim`, e.g. ``ember.optim.Adam({"lr": 0.01})``.
    :param loss: an :class:`~ember.infer.elbo.ELBO` (``Trace_ELBO()``, ...), or any callable
        ``loss(model, guide, *args, **kwargs)`` returning a tensor.
    :param loss_and_grads: for a callable ``loss``: computes the loss and its gradients;
        by default ``loss(...)`` followed by ``backward``.
    :param num_samples: deprecated (posterior samples for :meth:`run`); use
        :class:`~ember.infer.Predictive`.
    :param num_steps: deprecated (steps taken by :meth:`run`); call :meth:`step`.
    :param skip_nonfinite_steps: (beyond Pyro) with validation on, do not apply a step
        whose loss is NaN or whose gradients are not finite; a warning names the params, and
        the param store keeps its last good values. ``False`` restores Pyro's behaviour of
        stepping anyway.
    :param kwargs: passed to :class:`~ember.infer.abstract_infer.TracePosterior`.
    :raises ValueError: if ``optim`` is not a :class:`~ember.optim.PyroOptim`.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember.infer import Trace_ELBO
    >>> from ember.optim import Adam
    >>> ember.clear_param_store()
    >>> def model():
    ...     ember.sample("z", dist.Normal(0.0, 1.0))
    >>> def guide():
    ...     loc = ember.param("loc", torch.tensor(10.0))
    ...     ember.sample("z", dist.Normal(loc, 1.0))
    >>> svi = SVI(model, guide, Adam({"lr": 0.1}), Trace_ELBO())
    >>> isinstance(svi.step(), float), ember.param("loc").item() < 10.0
    (True, True)
    """

    def __init__(
        self,
        model: Callable[..., Any],
        guide: Callable[..., Any],
        optim: PyroOptim,
        loss: ELBO | Loss,
        loss_and_grads: Loss | None = None,
        num_samples: int = 0,
        num_steps: int = 0,
        *,
        skip_nonfinite_steps: bool = True,
        **kwargs: Any,
    ) -> None:
        self.skip_nonfinite_steps = skip_nonfinite_steps
        if num_steps:
            warn_at_caller(
                "The `num_steps` argument to SVI is deprecated and will be removed in a future release. "
                "Use `SVI.step` directly to control the number of iterations.",
                FutureWarning,
            )
        if num_samples:
            warn_at_caller(
                "The `num_samples` argument to SVI is deprecated and will be removed in a future release. "
                "Use `pyro.infer.Predictive` class to draw samples from the posterior.",
                FutureWarning,
            )
        self.model = model
        self.guide = guide
        self.optim = optim
        self.num_steps = num_steps
        self.num_samples = num_samples
        super().__init__(**kwargs)
        if not isinstance(optim, PyroOptim):
            raise ValueError("Optimizer should be an instance of pyro.optim.PyroOptim class.")
        self.loss: Loss
        self.loss_and_grads: Loss
        # A compiled ELBO's whole step (graph, optimizer, zeroed grads) where its graph applies.
        self._compiled_elbo: _CompiledELBO | None = None
        if isinstance(loss, ELBO):
            self.loss = loss.loss
            self.loss_and_grads = loss.loss_and_grads
            if isinstance(loss, _CompiledELBO):
                self._compiled_elbo = loss
        else:
            self.loss = loss
            self.loss_and_grads = _default_loss_and_grads(loss) if loss_and_grads is None else loss_and_grads

    def run(self, *args: Any, **kwargs: Any) -> SVI:
        """Deprecated: take ``num_steps`` steps, then collect ``num_samples`` traces."""
        warn_at_caller(
            "The `SVI.run` method is deprecated and will be removed in a future release. "
            "For inference, use `SVI.step` directly, and for predictions, use the `pyro.infer.Predictive` class.",
            FutureWarning,
        )
        if self.num_steps > 0:
            with block():
                for _ in range(self.num_steps):
                    self.step(*args, **kwargs)
        return super().run(*args, **kwargs)

    def _traces(self, *args: Any, **kwargs: Any) -> Iterator[WeightedTrace]:
        for _ in range(self.num_samples):
            guide_trace = trace(self.guide).get_trace(*args, **kwargs)
            model_trace = trace(replay(self.model, trace=guide_trace)).get_trace(*args, **kwargs)
            yield model_trace, 1.0

    @restores_handler_state
    def evaluate_loss(self, *args: Any, **kwargs: Any) -> float:
        """The loss, without gradients, as a float.

        A loss that returns a tuple (e.g. reweighted wake-sleep) gives a tuple of floats,
        which the static type does not express: ``typing.cast`` it in that case.
        """
        with torch.no_grad():
            value: float = _item(self.loss(self.model, self.guide, *args, **kwargs))
            return value

    @restores_handler_state
    def step(self, *args: Any, **kwargs: Any) -> float:
        """Take one gradient step; returns the loss as a float.

        Arguments are passed to the model and the guide. A tuple loss gives a tuple of
        floats, as for :meth:`evaluate_loss`.
        """
        compiled = self._compiled_elbo
        if compiled is not None and self.loss_and_grads == compiled.loss_and_grads:
            checked = self.skip_nonfinite_steps and is_validation_enabled()
            fast = compiled._svi_step(self.model, self.guide, args, kwargs, self._step_params, self._reject if checked else None)
            if fast is not None:
                return fast
        with trace(param_only=True) as param_capture:
            loss = self.loss_and_grads(self.model, self.guide, *args, **kwargs)
        # A dict, not a set, so params are stepped in the order they were first used.
        params = list({site["value"].unconstrained(): None for site in param_capture.trace.nodes.values()})
        value: float = _item(loss)
        if self.skip_nonfinite_steps and is_validation_enabled() and self._reject(value, params):
            zero_grads(params)
            return value
        self.optim(params)
        zero_grads(params)
        return value

    def _step_params(self, params: list[torch.Tensor]) -> None:
        """Step ``params`` as ``self.optim(params)`` does, with fused kernels where it is a plain PyroOptim."""
        optim = self.optim
        if type(optim).__call__ is PyroOptim.__call__:
            optim._clip_and_step(params, fused=True)
        else:
            optim(params)

    @staticmethod
    def _reject(loss: Any, params: list[torch.Tensor]) -> bool:
        """Whether the step is not finite; warns naming what is not."""
        if _has_nan(loss):
            what = "NaN: loss"
        else:
            bad = _nonfinite_grads(params)
            if not bad:
                return False
            names = sorted(str(get_param_store().param_name(p)) for p in bad)
            what = f"NaN or inf: gradients of params {names}"
        warn_at_caller(
            f"Encountered {what}; SVI.step skipped the optimizer step, so the params keep their last values "
            "(SVI(..., skip_nonfinite_steps=False) steps anyway, as Pyro does)",
            UserWarning,
        )
        return True
