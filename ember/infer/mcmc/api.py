"""The MCMC drivers: :class:`MCMC` keeps every sample, :class:`StreamingMCMC` only statistics.

Chains run one after another in this process, in worker processes (``num_chains > 1``, as in
Pyro), or, beyond Pyro, as one vectorized batch (``chain_method="vectorized"``). Chain ``c``
is seeded with ``base + c``, ``base`` drawn from torch's global RNG when :meth:`MCMC.run`
starts, so ``set_rng_seed`` fixes the run and each chain gives the same samples whichever
method runs it.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.multiprocessing as mp

from ember import poutine
from ember.infer.mcmc._chains import MAX_SEED, ChainKernel
from ember.infer.mcmc._runners import ChainResult, Hook, run_one, run_processes
from ember.infer.mcmc.logger import ProgressBar
from ember.infer.mcmc.mcmc_kernel import MCMCKernel
from ember.infer.mcmc.util import diagnostics, diagnostics_from_stats, model_transforms, print_summary, select_samples
from ember.ops.streaming import CountMeanVarianceStats, StatsOfDict, StreamingStats
from ember.primitives import validation_enabled
from ember._util import warn_at_caller

__all__ = ["MCMC", "StreamingMCMC"]

_CHAIN_METHODS = (None, "sequential", "parallel", "vectorized")


@contextlib.contextmanager
def _validation(disable_validation: bool | None) -> Iterator[None]:
    if disable_validation is None:
        yield
    else:
        with validation_enabled(not disable_validation):
            yield


class _Driver:
    def __init__(
        self,
        kernel: MCMCKernel,
        num_samples: int,
        warmup_steps: int | None,
        initial_params: Mapping[str, torch.Tensor] | None,
        num_chains: int,
        hook_fn: Hook | None,
        mp_context: str | None,
        disable_progbar: bool,
        disable_validation: bool | None,
        transforms: Mapping[str, Any] | None,
        save_params: list[str] | None,
        chain_method: str | None,
    ) -> None:
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
        warmup_steps = num_samples if warmup_steps is None else warmup_steps
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if num_chains < 1:
            raise ValueError(f"num_chains must be >= 1, got {num_chains}")
        if chain_method not in _CHAIN_METHODS:
            raise ValueError(f"chain_method must be one of {_CHAIN_METHODS[1:]}, got {chain_method!r}")
        if chain_method == "vectorized" and not isinstance(kernel, ChainKernel):
            raise ValueError(f"chain_method='vectorized' needs an HMC, NUTS or RandomWalkKernel, got {type(kernel).__name__}")
        if getattr(kernel, "potential_fn", None) is not None and getattr(kernel, "model", None) is None and initial_params is None:
            raise ValueError("Must provide valid initial parameters to begin sampling when using `potential_fn` in HMC/NUTS kernel.")
        if initial_params and num_chains > 1:
            for name, value in initial_params.items():
                if value.shape[:1] != (num_chains,):
                    raise ValueError(
                        f"The leading dimension of tensors in `initial_params` must match the number of chains "
                        f"({num_chains}); initial_params[{name!r}] has shape {tuple(value.shape)}."
                    )
        self.kernel = kernel
        self.num_samples = num_samples
        self.warmup_steps = warmup_steps
        self.num_chains = num_chains
        self.initial_params = None if initial_params is None else dict(initial_params)
        self.hook_fn = hook_fn
        self.mp_context = mp_context
        self.disable_progbar = disable_progbar
        self.disable_validation = disable_validation
        self.transforms = None if transforms is None else dict(transforms)
        self.save_params = save_params
        if save_params is not None:
            setattr(kernel, "save_params", save_params)
        if chain_method is None:
            chain_method = "sequential"
            if num_chains > 1:
                available = max(mp.cpu_count() - 1, 1)
                if num_chains <= available:
                    chain_method = "parallel"
                else:
                    warn_at_caller(
                        f"num_chains={num_chains} is more than available_cpu={available}. Chains will be drawn sequentially."
                    )
        self.chain_method = chain_method
        self._diagnostics: list[dict[str, Any]] = []
        self._stats: list[dict[str, torch.Tensor]] = []
        self._args: tuple[Any, ...] = ()
        self._kwargs: dict[str, Any] = {}
        self._sink: Callable[[int, torch.Tensor], None] | None = None

    def _chain_sink(self, offset: int) -> Callable[[torch.Tensor], None] | None:
        sink = self._sink
        if sink is None:
            return None
        return lambda z: sink(offset, z)

    def _chain_params(self, c: int) -> dict[str, torch.Tensor] | None:
        if not self.initial_params:
            return None
        if self.num_chains == 1:
            return dict(self.initial_params)
        return {k: v[c] for k, v in self.initial_params.items()}

    def _run_chains(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[ChainResult]:
        kernel = self.kernel
        base = int(torch.randint(0, MAX_SEED, ()))
        seeds = [(base + c) % MAX_SEED for c in range(self.num_chains)]
        C = self.num_chains
        if self.chain_method == "parallel" and C > 1:
            progress = ProgressBar(self.warmup_steps, self.num_samples, disable=self.disable_progbar, num_bars=C)
            try:
                return run_processes(
                    kernel, C, seeds, [self._chain_params(c) for c in range(C)], self.warmup_steps,
                    self.num_samples, args, kwargs, self.hook_fn, self.mp_context, progress,
                )
            finally:
                progress.close()
        if self.chain_method == "vectorized":
            assert isinstance(kernel, ChainKernel)
            kernel._num_chains, kernel._seeds = C, seeds
            kernel.initial_params = self.initial_params
            progress = ProgressBar(self.warmup_steps, self.num_samples, disable=self.disable_progbar, num_bars=C)
            try:
                return [
                    run_one(kernel, self.warmup_steps, self.num_samples, args, kwargs, self.hook_fn, progress, None,
                            sink=self._chain_sink(0))
                ]
            finally:
                progress.close()
                kernel._num_chains, kernel._seeds = 1, None
        results = []
        for c in range(C):
            if isinstance(kernel, ChainKernel):
                kernel._num_chains, kernel._seeds = 1, [seeds[c]]
            if self.initial_params:
                kernel.initial_params = self._chain_params(c)
            progress = ProgressBar(self.warmup_steps, self.num_samples, disable=self.disable_progbar)
            try:
                label = c + 1 if C > 1 else None
                results.append(
                    run_one(kernel, self.warmup_steps, self.num_samples, args, kwargs, self.hook_fn, progress, label,
                            sink=self._chain_sink(c))
                )
            finally:
                progress.close()
                if isinstance(kernel, ChainKernel):
                    kernel._seeds = None
        return results

    def _execute(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[ChainResult]]:
        self._args, self._kwargs = args, kwargs
        args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        if isinstance(self.kernel, ChainKernel):
            self.kernel._flat_cache = {}  # sequential chains of this run share one recorded graph
        try:
            with poutine.block(), _validation(self.disable_validation):
                results = self._run_chains(args, kwargs)
        finally:
            if isinstance(self.kernel, ChainKernel):
                self.kernel._flat_cache = None
        if self.transforms is None:
            self.transforms = dict(getattr(self.kernel, "transforms", None) or results[0].transforms)
            model = getattr(self.kernel, "model", None)
            if not self.transforms and model is not None:
                self.transforms = model_transforms(model, args, kwargs, getattr(self.kernel, "transforms", None))
        layout = results[0].layout
        draws = torch.cat([r.draws for r in results])  # (C, S, D)
        self._diagnostics = [d for r in results for d in r.diagnostics]
        self._stats = [s for r in results for s in r.stats]
        names = self.save_params if self.save_params is not None else layout.names
        unknown = sorted(set(names) - set(layout.names))
        if unknown:
            raise ValueError(f"save_params names unknown sites {unknown}; the latent sites are {layout.names}")
        unpacked = layout.unpack(draws)
        samples = {}
        for name in names:
            value = unpacked[name]
            transform = self.transforms.get(name)
            samples[name] = transform.inv(value) if transform is not None else value
        return samples, results

    def _chain_diagnostics(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not self._diagnostics:
            return out
        for key in self._diagnostics[0]:
            out[key] = {f"chain {i}": d[key] for i, d in enumerate(self._diagnostics)}
        return out


class MCMC(_Driver):
    """Markov chain Monte Carlo with any :class:`~ember.infer.mcmc.mcmc_kernel.MCMCKernel`.

    :param kernel: the transition kernel (e.g. :class:`~ember.infer.mcmc.nuts.NUTS`).
    :param num_samples: samples kept per chain.
    :param warmup_steps: warmup steps per chain (default: ``num_samples``).
    :param initial_params: unconstrained starting values by site, with a leading
        ``num_chains`` dim when ``num_chains > 1``.
    :param num_chains: the number of chains.
    :param hook_fn: called as ``hook_fn(kernel, params, stage, i)`` after each step.
    :param mp_context: the multiprocessing start method for parallel chains.
    :param disable_progbar: no progress bars.
    :param disable_validation: switch distribution validation off during the run (default);
        ``None`` keeps the global setting.
    :param transforms: per site, the transform to unconstrained space (default: the kernel's).
    :param save_params: keep only these sites.
    :param chain_method: ``"sequential"``, ``"parallel"`` (processes, Pyro's default for
        ``num_chains > 1`` when enough CPUs) or ``"vectorized"`` (one batched process).

    >>> import ember, ember.distributions as dist
    >>> from ember.infer.mcmc import NUTS
    >>> def model():
    ...     ember.sample("x", dist.Normal(0.0, 1.0))
    >>> mcmc = MCMC(NUTS(model), num_samples=20, warmup_steps=10, disable_progbar=True)
    >>> mcmc.run()
    >>> mcmc.get_samples()["x"].shape
    torch.Size([20])
    """

    def __init__(
        self,
        kernel: MCMCKernel,
        num_samples: int,
        warmup_steps: int | None = None,
        initial_params: Mapping[str, torch.Tensor] | None = None,
        num_chains: int = 1,
        hook_fn: Hook | None = None,
        mp_context: str | None = None,
        disable_progbar: bool = False,
        disable_validation: bool | None = True,
        transforms: Mapping[str, Any] | None = None,
        save_params: list[str] | None = None,
        chain_method: str | None = None,
    ) -> None:
        super().__init__(
            kernel, num_samples, warmup_steps, initial_params, num_chains, hook_fn, mp_context,
            disable_progbar, disable_validation, transforms, save_params, chain_method,
        )
        self._samples: dict[str, torch.Tensor] | None = None

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Run the chains on the model's ``args``/``kwargs`` and keep the samples."""
        self._samples, _ = self._execute(args, kwargs)

    def _require_samples(self) -> dict[str, torch.Tensor]:
        if self._samples is None:
            raise RuntimeError("MCMC.run() has not been called")
        return self._samples

    def get_samples(self, num_samples: int | None = None, group_by_chain: bool = False) -> dict[str, torch.Tensor]:
        """The constrained samples by site: ``(num_chains, num_samples, ...)`` with
        ``group_by_chain``, else chains concatenated; ``num_samples`` draws with replacement."""
        return select_samples(self._require_samples(), num_samples, group_by_chain)

    def diagnostics(self) -> dict[str, dict[str, Any]]:
        """Per site ``n_eff`` and ``r_hat``; per chain divergences and acceptance rate."""
        diag: dict[str, dict[str, Any]] = dict(diagnostics(self._require_samples()))
        diag.update(self._chain_diagnostics())
        return diag

    def summary(self, prob: float = 0.9) -> None:
        """Print Pyro's table (mean, std, median, HPD interval, n_eff, r_hat) and the number
        of divergences."""
        print_summary(self._require_samples(), prob=prob)
        if self._diagnostics and "divergences" in self._diagnostics[0]:
            total = sum(len(d["divergences"]) for d in self._diagnostics)
            print(f"Number of divergences: {total}")

    def to_arviz(self) -> Any:
        """An :class:`arviz.InferenceData` with the posterior, sample stats, pointwise log
        likelihood and observed data.

        :raises ImportError: when arviz is not installed (``pip install ember[arviz]``).
        """
        from ember.infer.mcmc._arviz import to_inference_data

        return to_inference_data(self)


class StreamingMCMC(_Driver):
    """MCMC that keeps streaming statistics of the samples instead of the samples.

    Takes :class:`MCMC`'s arguments (not ``mp_context``: chains run in this process, one after
    another or vectorized) plus ``statistics``, a
    :class:`~ember.ops.streaming.StreamingStats` over ``{(chain, site): value}`` (default:
    count, mean and variance of every site).
    """

    def __init__(
        self,
        kernel: MCMCKernel,
        num_samples: int,
        warmup_steps: int | None = None,
        initial_params: Mapping[str, torch.Tensor] | None = None,
        statistics: StreamingStats | None = None,
        num_chains: int = 1,
        hook_fn: Hook | None = None,
        disable_progbar: bool = False,
        disable_validation: bool | None = True,
        transforms: Mapping[str, Any] | None = None,
        save_params: list[str] | None = None,
        chain_method: str | None = None,
    ) -> None:
        if chain_method == "parallel":
            raise ValueError("StreamingMCMC runs chains in this process: chain_method 'sequential' or 'vectorized'")
        super().__init__(
            kernel, num_samples, warmup_steps, initial_params, num_chains, hook_fn, None,
            disable_progbar, disable_validation, transforms, save_params, chain_method or "sequential",
        )
        self._statistics: StreamingStats = StatsOfDict(default=CountMeanVarianceStats) if statistics is None else statistics
        self._default_statistics = copy.deepcopy(self._statistics)

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Run the chains and fold every sample into the statistics (no sample is kept)."""
        self._statistics = statistics = copy.deepcopy(self._default_statistics)
        kernel = self.kernel

        def sink(offset: int, z: torch.Tensor) -> None:
            layout = getattr(kernel, "_layout")
            transforms = self.transforms if self.transforms is not None else (getattr(kernel, "transforms", None) or {})
            names = self.save_params if self.save_params is not None else layout.names
            values = layout.unpack(z)
            update = {}
            for name in names:
                transform = transforms.get(name)
                value = transform.inv(values[name]) if transform is not None else values[name]
                for row in range(z.shape[0]):
                    update[(offset + row, name)] = value[row]
            statistics.update(update)

        self._sink = sink
        try:
            self._execute(args, kwargs)
        finally:
            self._sink = None

    def get_statistics(self, group_by_chain: bool = True) -> dict[Any, Any]:
        """The statistics per ``(chain, site)``, or merged over chains per site."""
        if group_by_chain:
            return dict(self._statistics.get())
        merged: dict[str, StreamingStats] = {}
        stats_of = getattr(self._statistics, "_stats", None) or getattr(self._statistics, "stats", {})
        for (_, name), stat in stats_of.items():
            merged[name] = merged[name].merge(stat) if name in merged else stat
        return {k: v.get() for k, v in merged.items()}

    def diagnostics(self) -> dict[str, dict[str, Any]]:
        """``r_hat`` per site from the streamed means and variances, and per chain diagnostics."""
        diag: dict[str, dict[str, Any]] = dict(diagnostics_from_stats(self._statistics.get(), self.num_samples, self.num_chains))
        diag.update(self._chain_diagnostics())
        return diag


