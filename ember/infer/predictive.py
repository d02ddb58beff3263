"""Prior and posterior predictive samples: the model re-run on posterior draws.

:class:`Predictive` conditions the model on each posterior draw (given as tensors with a
leading sample dim, or drawn from a guide) and collects the values of the other sites (see
:mod:`ember.infer._predictive_core`). :class:`WeighedPredictive` also weighs each draw by
``p / q``, and :class:`MHResampler` turns such weighed draws into equally weighted ones
(it and :class:`WeighedPredictiveResults` live in :mod:`ember.infer._weighed_samples` and are
importable from here, Pyro's path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ember.infer._predictive_core import (
    _VECTORIZE_PLATE,
    Model,
    ReturnSites,
    _check_leading_dims,
    _check_num_samples,
    _predictive,
    _PredictiveResults,
)
from ember.infer._predictive_capture import CapturedPredictive
from ember.infer._weighed_samples import MHResampler, WeighedPredictiveResults
from ember.infer.util import plate_log_prob_sum
from ember.poutine.trace_struct import Trace
from ember.poutine.util import prune_subsample_sites
from ember._util import warn_at_caller

__all__ = ["MHResampler", "Predictive", "WeighedPredictive", "WeighedPredictiveResults"]


class Predictive(torch.nn.Module):
    """Samples from the predictive distribution of ``model``.

    With ``posterior_samples`` (tensors with a leading sample dim, by site name) the model is
    run conditioned on each draw; with a ``guide``, draws of every guide site come from the
    guide first; with neither, the model runs from the prior ``num_samples`` times.

    :param model: the model.
    :param posterior_samples: posterior draws by site name.
    :param guide: a guide to draw the posterior from (not together with ``posterior_samples``).
    :param num_samples: how many draws; when ``posterior_samples`` is given, their leading
        size wins (with a warning if the two differ).
    :param return_sites: the sites to return (``"_RETURN"`` for the model's return value);
        ``()`` returns the sample sites not in ``posterior_samples`` (with a guide: every
        site), ``None`` every sample site.
    :param parallel: run all draws at once inside an outermost
        ``plate("_num_predictive_samples", num_samples)``; every batch dim of the model must
        be declared by a plate.
    :param compile: (beyond Pyro; keyword only, needs ``parallel=True``) replay repeated calls
        of the same structure from one captured graph, with no handlers or per-site Python:
        the first call of each structure runs eagerly and captures the graph, later ones
        replay it (see :mod:`ember.infer._predictive_capture` for what is guarded). A seed
        gives the samples of the eager call; a call inside handlers, a model whose structure
        depends on values, or a non-tensor ``_RETURN`` runs eagerly, with one warning.
    :param backend: with ``compile``: the :func:`torch.compile` backend (``"inductor"``), or
        ``None`` to replay the captured graph without compiling it (no compile time).
    :raises ValueError: with neither ``posterior_samples`` nor ``num_samples``, with both
        ``posterior_samples`` and ``guide``, or with ``compile`` but not ``parallel``.

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> def model():
    ...     mu = ember.sample("mu", dist.Normal(0.0, 1.0))
    ...     with ember.plate("N", 3):
    ...         ember.sample("y", dist.Normal(mu, 1.0))
    >>> {k: tuple(v.shape) for k, v in Predictive(model, num_samples=5)().items()}
    {'mu': (5, 1), 'y': (5, 3)}
    >>> {k: tuple(v.shape) for k, v in Predictive(model, {"mu": torch.zeros(4)})().items()}
    {'y': (4, 3)}
    """

    def __init__(
        self,
        model: Model,
        posterior_samples: Mapping[str, torch.Tensor] | None = None,
        guide: Model | None = None,
        num_samples: int | None = None,
        return_sites: ReturnSites = (),
        parallel: bool = False,
        *,
        compile: bool = False,
        backend: str | Callable[..., Any] | None = "inductor",
    ) -> None:
        super().__init__()
        if compile and not parallel:
            raise ValueError(
                "Predictive(compile=True) replays one vectorized call and needs parallel=True "
                "(every batch dim of the model declared by a plate)"
            )
        if posterior_samples is None:
            if num_samples is None:
                raise ValueError("Either posterior_samples or num_samples must be specified.")
            posterior_samples = {}
        if num_samples is not None:
            _check_num_samples(num_samples)
        _check_leading_dims(posterior_samples)
        for sample in posterior_samples.values():
            batch_size = sample.shape[0]
            if num_samples is None:
                num_samples = batch_size
            elif num_samples != batch_size:
                warn_at_caller(
                    f"Sample's leading dimension size {batch_size} is different from the provided "
                    f"{num_samples} num_samples argument. Defaulting to {batch_size}.",
                    UserWarning,
                )
                num_samples = batch_size
        if num_samples is None:
            raise ValueError("No sample sites in posterior samples to infer `num_samples`.")
        if guide is not None and posterior_samples:
            raise ValueError("`posterior_samples` cannot be provided with the `guide` argument.")
        if return_sites is not None and not isinstance(return_sites, (list, tuple, set)):
            # AssertionError is the type Pyro raises here.
            raise AssertionError(f"return_sites must be a list, tuple or set, got {type(return_sites).__name__}")
        self.model = model
        self.posterior_samples: Mapping[str, torch.Tensor] = posterior_samples
        self.num_samples: int = num_samples
        self.guide = guide
        self.return_sites = return_sites
        self.parallel = parallel
        self._compiled = compile
        self._backend = backend
        self._captured: CapturedPredictive | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Graphs are not picklable; they are captured again on the first call after loading.
        state = dict(self.__dict__)
        state["_captured"] = None
        return state

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Draw predictive samples (see :meth:`forward`).

        Typed as tensors by site name; a requested ``"_RETURN"`` site holds whatever the
        model returns (e.g. a dict of tensors).
        """
        result: dict[str, torch.Tensor] = super().__call__(*args, **kwargs)
        return result

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """:meth:`forward`'s values as a tuple sorted by site name (traceable by the JIT)."""
        result = self.forward(*args, **kwargs)
        return tuple(value for _, value in sorted(result.items()))

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Draw predictive samples; arguments are passed to the model (and guide).

        :returns: the values of the returned sites by name, each with a leading sample dim.
        """
        if not self._compiled:
            return self._forward(args, kwargs, self.posterior_samples)
        if self._captured is None:
            self._captured = CapturedPredictive(self._forward, self._backend)
        return_sites = None if self.return_sites is None else tuple(sorted(self.return_sites))
        settings = (id(self.model), id(self.guide), self.num_samples, return_sites)
        return self._captured(settings, args, kwargs, self.posterior_samples)

    def _forward(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], posterior_samples: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        return_sites = self.return_sites
        if self.guide is not None:
            # With a guide, every site comes back unless the sites are named.
            return_sites = return_sites or None
        draws = self._posterior_samples(args, kwargs, posterior_samples)
        return self._run(self.model, draws, args, kwargs, return_sites).samples

    def _run(
        self,
        fn: Model,
        draws: Mapping[str, torch.Tensor],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        return_sites: ReturnSites = (),
        *,
        parallel: bool | None = None,
        mask: bool = True,
    ) -> _PredictiveResults:
        """``fn`` run on ``draws`` by :func:`_predictive`, with this object's sample count and mode."""
        return _predictive(
            fn,
            draws,
            self.num_samples,
            return_sites=return_sites,
            parallel=self.parallel if parallel is None else parallel,
            model_args=args,
            model_kwargs=kwargs,
            mask=mask,
        )

    def _posterior_samples(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], posterior_samples: Mapping[str, torch.Tensor] | None = None
    ) -> Mapping[str, torch.Tensor]:
        """The values to condition the model on: with a guide, its draws of all its sites."""
        if posterior_samples is None:
            posterior_samples = self.posterior_samples
        if self.guide is None:
            return posterior_samples
        # With a guide there are no posterior samples, so return_sites=None returns the same
        # sites as the default (the sites not in them).
        return self._run(self.guide, posterior_samples, args, kwargs, None).samples

    def get_samples(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Deprecated: call the :class:`Predictive` (its :meth:`forward`)."""
        warn_at_caller("The method `.get_samples` has been deprecated in favor of `.forward`.", DeprecationWarning)
        return self.forward(*args, **kwargs)

    def get_vectorized_trace(self, *args: Any, **kwargs: Any) -> Trace:
        """One trace of the model with every draw at once in the ``_num_predictive_samples``
        plate (the model's batch dims must all be declared by plates)."""
        result = self._run(self.model, self._posterior_samples(args, kwargs), args, kwargs, parallel=True).trace
        assert isinstance(result, Trace)
        return result


def _per_draw_log_prob(result: _PredictiveResults, plate_symbol_of: dict[str, str] | None = None) -> tuple[torch.Tensor, dict[str, str]]:
    """The log density of each draw: summed over all but the draw plate (or per sequential trace)."""
    if isinstance(result.trace, list):
        return torch.stack([torch.as_tensor(tr.log_prob_sum()) for tr in result.trace]), {}
    tr = prune_subsample_sites(result.trace)
    if plate_symbol_of is None:
        tr.compute_score_parts()
    else:
        tr.compute_log_prob()
    tr.pack_tensors(plate_symbol_of)
    return plate_log_prob_sum(tr, tr.plate_to_symbol[_VECTORIZE_PLATE]), tr.plate_to_symbol


class WeighedPredictive(Predictive):
    """:class:`Predictive` samples drawn from a guide, each with the weight ``p / q``.

    Call it as a :class:`Predictive`, with one more keyword, ``model_guide``: the model the
    guide was fitted to (say the model conditioned on data; default ``model``). Each draw
    ``z`` of the guide gets the log weight ``log p_model_guide(z, ...) - log q(z)``, so the
    weighed samples of ``model`` follow the posterior predictive of ``model_guide`` (use
    them with weighed quantiles, or :class:`MHResampler`).

    The arguments are those of :class:`Predictive`; a ``guide`` is required.

    :raises TypeError: without a guide (there is nothing to weigh by).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> model = lambda: ember.sample("x", dist.Normal(0.0, 1.0))
    >>> guide = lambda: ember.sample("x", dist.Normal(0.0, 2.0))
    >>> result = WeighedPredictive(model, guide=guide, num_samples=5, parallel=True)()
    >>> result.samples["x"].shape, result.log_weights.shape
    (torch.Size([5]), torch.Size([5]))
    """

    def __init__(
        self,
        model: Model,
        posterior_samples: Mapping[str, torch.Tensor] | None = None,
        guide: Model | None = None,
        num_samples: int | None = None,
        return_sites: ReturnSites = (),
        parallel: bool = False,
    ) -> None:
        if guide is None:
            raise TypeError("WeighedPredictive needs a guide: its samples are weighed by p / q, got guide=None")
        super().__init__(model, posterior_samples, guide, num_samples, return_sites, parallel)

    def __call__(self, *args: Any, **kwargs: Any) -> WeighedPredictiveResults:  # type: ignore[override]  # Pyro returns the results object here
        """Draw weighed predictive samples (see :meth:`forward`)."""
        result: WeighedPredictiveResults = torch.nn.Module.__call__(self, *args, **kwargs)
        return result

    def call(self, *args: Any, **kwargs: Any) -> WeighedPredictiveResults:  # type: ignore[override]  # Pyro returns the results object here
        """:meth:`forward`, with the samples as a tuple sorted by site name."""
        result = self.forward(*args, **kwargs)
        assert isinstance(result.samples, dict)
        return WeighedPredictiveResults(
            samples=tuple(value for _, value in sorted(result.samples.items())),
            log_weights=result.log_weights,
            guide_log_prob=result.guide_log_prob,
            model_log_prob=result.model_log_prob,
        )

    def forward(self, *args: Any, **kwargs: Any) -> WeighedPredictiveResults:  # type: ignore[override]  # as above
        """Weighed predictive samples; arguments go to the model and guide.

        :param model_guide: (keyword) the model the weights are computed against.
        """
        model_guide: Model = kwargs.pop("model_guide", self.model)
        return_sites = self.return_sites or None
        assert self.guide is not None
        guide_run = self._run(self.guide, self.posterior_samples, args, kwargs, None, mask=False)
        draws = guide_run.samples
        model_run = self._run(model_guide, draws, args, kwargs, return_sites, mask=False)
        guide_log_prob, symbols = _per_draw_log_prob(guide_run)
        model_log_prob, _ = _per_draw_log_prob(model_run, symbols)
        if model_guide is self.model:
            samples = model_run.samples
        else:
            samples = self._run(self.model, draws, args, kwargs, return_sites).samples
        return WeighedPredictiveResults(
            samples=samples,
            log_weights=model_log_prob - guide_log_prob,
            guide_log_prob=guide_log_prob,
            model_log_prob=model_log_prob,
        )
