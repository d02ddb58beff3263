"""The chain state shared by HMC and NUTS: per-chain seeds and RNG streams, set-up from a model
or a potential, the flat potential, the adapter, and the per-draw statistics.

Chain ``c`` draws every random number from its own :class:`torch.Generator` seeded with
``seeds[c]``, and only when it needs one, so a chain gives the same samples whether it runs
alone, in a worker process, or in a vectorized batch with other chains.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from ember.infer.mcmc.adaptation import WarmupAdapter
from ember.infer.mcmc.mcmc_kernel import MCMCKernel
from ember.infer.mcmc.potential import FlatPotential, Layout
from ember.infer.mcmc.util import flat_potential, initialize_model

MAX_SEED = 2**32 - 1
Params = dict[str, torch.Tensor]


def where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Row-wise choice between ``new`` and ``old`` by the chain mask ``mask`` (``(C,)``)."""
    if new.dim() > 1:
        mask = mask.view((-1,) + (1,) * (new.dim() - 1))
    return torch.where(mask, new, old)


class ChainKernel(MCMCKernel):
    """Base of the gradient-based kernels: everything but the transition itself."""

    model: Callable[..., Any] | None
    potential_fn: Callable[[Params], torch.Tensor] | None
    transforms: dict[str, Any] | None
    _adapter: WarmupAdapter
    _max_plate_nesting: int | None
    _jit_compile: bool
    _init_strategy: Callable[[Any], torch.Tensor]
    _min_stepsize: float = 1e-10
    _max_stepsize: float = 1e10
    _max_sliced_energy: float
    _initial_params: Params | None
    _given_params: Params | None

    @property
    def initial_params(self) -> Params | None:
        """Unconstrained starting values by site: the given ones, or after :meth:`setup` the
        ones found (with a leading chain dim when chains run vectorized)."""
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params: Params | None) -> None:
        self._given_params = None if params is None else dict(params)
        self._initial_params = self._given_params

    def _init_chain_state(self) -> None:
        self._given_params = self._initial_params
        self._num_chains = 1
        self._seeds: list[int] | None = None
        self._use_compiled = True
        self._flat_cache: dict[tuple[int, bool, bool], FlatPotential] | None = None
        self._reset()

    def _reset(self) -> None:
        self._t = 0
        self._warmup_steps = 0
        self._prototype_trace: Any = None
        self._z: torch.Tensor | None = None
        self._pe = torch.zeros(0)
        self._grad = torch.zeros(0)
        self._layout = Layout({})
        self._flat: FlatPotential | None = None
        self._generators: list[torch.Generator] = []
        self._accept_cnt = torch.zeros(1)
        self._mean_accept_prob = torch.zeros(1)
        self._divergences: list[list[int]] = [[]]
        self._draw_stats: list[dict[str, torch.Tensor]] = []
        self._last_params: Params | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _chain_seeds(self) -> list[int]:
        if self._seeds is not None:
            return list(self._seeds)
        base = int(torch.randint(0, MAX_SEED, ()))
        return [(base + c) % MAX_SEED for c in range(self._num_chains)]

    def _chain_initial_params(self, c: int) -> Params | None:
        given = self._given_params
        if not given:
            return None
        if self._num_chains == 1:
            return dict(given)
        return {k: v[c] for k, v in given.items()}

    def _setup_model(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], seeds: list[int]) -> list[Params]:
        assert self.model is not None
        per_chain = []
        for c in range(self._num_chains):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seeds[c])
                params, potential_fn, transforms, trace = initialize_model(
                    self.model,
                    args,
                    kwargs,
                    transforms=self.transforms,
                    max_plate_nesting=self._max_plate_nesting,
                    jit_compile=self._jit_compile,
                    init_strategy=self._init_strategy,
                    initial_params=self._chain_initial_params(c),
                )
            per_chain.append(params)
        self.potential_fn = potential_fn
        self.transforms = transforms
        self._prototype_trace = trace
        self._model_potential = True
        return per_chain

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Initialise the chains (from the model, or from ``initial_params`` with a potential).

        :raises ValueError: with a ``potential_fn`` but no ``initial_params``, or when the
            potential is not finite at the initial point.
        """
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        model_potential = getattr(self, "_model_potential", False)
        if model_potential:
            self.potential_fn = None
        self._reset()
        self._warmup_steps = warmup_steps
        seeds = self._chain_seeds()
        self._generators = [torch.Generator().manual_seed(s) for s in seeds]
        if self.model is not None:
            per_chain = self._setup_model(args, kwargs, seeds)
        else:
            if not self._given_params:
                raise ValueError(
                    "Must provide valid initial parameters to begin sampling when using `potential_fn` in HMC/NUTS kernel."
                )
            per_chain = [p for p in (self._chain_initial_params(c) for c in range(self._num_chains)) if p is not None]
        shapes = {k: torch.Size(v.shape) for k, v in per_chain[0].items()}
        if not shapes:
            raise ValueError(
                f"{type(self).__name__}: the model has no latent sample sites to sample (every sample site is observed)"
            )
        save = getattr(self, "save_params", None)
        unknown = sorted(set(save or ()) - set(shapes))
        if unknown:
            raise ValueError(f"save_params names unknown sites {unknown}; the latent sites are {sorted(shapes)}")
        self._layout = layout = Layout(shapes)
        C = self._num_chains
        z0 = torch.stack([layout.pack(p) for p in per_chain]) if layout.size else torch.zeros(C, 0)
        self._initial_params = {k: v.detach() for k, v in (layout.unpack(z0) if C > 1 else layout.unpack(z0[0])).items()}
        assert self.potential_fn is not None
        if layout.size:
            self._configure_adapter(z0.dtype)
        dense = bool(getattr(self._adapter.mass_matrix_adapter, "dense_flat", False)) if layout.size else False
        key = (C, dense, self._jit_compile)
        cache = self._flat_cache
        if cache is not None and key in cache and self.model is not None:
            self._flat = cache[key]
        else:
            self._flat = flat_potential(
                self.potential_fn, layout, C, z0, compiled=self._use_compiled and self.model is not None, dense=dense,
                extension=self._step_extension(),
            )
            if cache is not None:
                cache[key] = self._flat
        self._z = z0
        if layout.size:
            self._pe, self._grad = self._flat.value_and_grad(z0)
            bad = ~torch.isfinite(self._pe)
            if bool(bad.any()):
                raise ValueError(
                    f"The potential energy is not finite at the initial params of chain(s) {bad.nonzero().flatten().tolist()}: "
                    f"{self._pe.tolist()}"
                )
        else:
            self._pe, self._grad = torch.zeros(C), torch.zeros(C, 0)
        self._accept_cnt = torch.zeros(C)
        self._mean_accept_prob = torch.zeros(C)
        self._divergences = [[] for _ in range(C)]
        if layout.size and self._adapter.adapt_step_size:
            self._adapter.reset_step_size_adaptation(z0)

    def _configure_adapter(self, dtype: torch.dtype) -> None:
        dense = self._adapter.dense_mass
        names = self._layout.names
        if dense is False:
            dense_list: list[tuple[str, ...]] = []
        elif dense is True:
            dense_list = [tuple(names)]
        else:
            if not isinstance(dense, list) or not all(isinstance(b, tuple) and b for b in dense):
                raise ValueError("full_mass should be a list of tuples of site names.")
            for block in dense:
                for name in block:
                    if name not in self._layout.shapes:
                        raise ValueError(f"full_mass names {name!r}, which is not a latent site ({names})")
            dense_list = list(dense)
        in_dense = [n for block in dense_list for n in block]
        if len(in_dense) != len(set(in_dense)):
            raise ValueError("Site names specified in full_mass are duplicated.")
        diag = tuple(n for n in names if n not in set(in_dense))
        size = self._layout.shapes
        shape: dict[tuple[str, ...], tuple[int, ...]] = {}
        for block in dense_list:
            n = sum(size[s].numel() for s in block)
            shape[block] = (n, n)
        if diag:
            shape[diag] = (sum(size[s].numel() for s in diag),)
        self._adapter.mass_matrix_adapter.bind(self._layout.slices)
        self._adapter.configure(
            self._warmup_steps,
            mass_matrix_shape=shape,
            find_reasonable_step_size_fn=self._find_reasonable_step_size,
            options={"dtype": dtype},
            num_chains=self._num_chains,
        )

    def cleanup(self) -> None:
        """Forget the run's state (the compiled potential included)."""
        self._reset()

    # -- randomness -----------------------------------------------------------------------
    def _normal(self, active: torch.Tensor | None = None) -> torch.Tensor:
        D = self._layout.size
        if self._num_chains == 1:
            return torch.randn(1, D, generator=self._generators[0], dtype=self._pe.dtype)
        rows = []
        for c, g in enumerate(self._generators):
            if active is None or bool(active[c]):
                rows.append(torch.randn(D, generator=g, dtype=self._pe.dtype))
            else:
                rows.append(torch.zeros(D, dtype=self._pe.dtype))
        return torch.stack(rows)

    def _uniform(self, n: int, active: torch.Tensor | None = None) -> torch.Tensor:
        if self._num_chains == 1:
            return torch.rand(1, n, generator=self._generators[0], dtype=self._pe.dtype)
        rows = []
        for c, g in enumerate(self._generators):
            if active is None or bool(active[c]):
                rows.append(torch.rand(n, generator=g, dtype=self._pe.dtype))
            else:
                rows.append(torch.ones(n, dtype=self._pe.dtype))
        return torch.stack(rows)

    # -- dynamics -------------------------------------------------------------------------
    def _kinetic(self, r: torch.Tensor) -> torch.Tensor:
        return 0.5 * (r * self._adapter.mass_matrix_adapter.velocity(r)).sum(-1)

    def _leapfrog(
        self, z: torch.Tensor, r: torch.Tensor, grad: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One leapfrog step: new position, momentum, potential, gradient, kinetic energy."""
        assert self._flat is not None
        return self._flat.leapfrog(z, r, grad, step, self._adapter.mass_matrix_adapter.flat_inverse())

    def _find_reasonable_step_size(self, z: torch.Tensor) -> torch.Tensor:
        assert self._flat is not None
        step = self._adapter.step_sizes.clone()
        pe, grad = self._flat.value_and_grad(z)
        if not bool(torch.isfinite(pe).all()):
            return step
        threshold = math.log(0.8)

        def direction(step: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
            r = self._adapter.mass_matrix_adapter.momentum(self._normal(active))
            h0 = pe + self._kinetic(r)
            _, _, pe1, _, kinetic1 = self._leapfrog(z, r, grad, step[:, None])
            delta = pe1 + kinetic1 - h0
            delta = torch.where(torch.isnan(delta), math.inf, delta)
            return torch.where(threshold < -delta, 1.0, -1.0)

        d = direction(step, None)
        active = (self._min_stepsize < step) & (step < self._max_stepsize)
        while bool(active.any()):
            step = torch.where(active, step * torch.pow(2.0, d), step)
            d_new = direction(step, active)
            active = active & (d_new == d) & (self._min_stepsize < step) & (step < self._max_stepsize)
        return step.clamp(self._min_stepsize, self._max_stepsize)

    # -- bookkeeping ----------------------------------------------------------------------
    def _after_transition(self, accept_prob: torch.Tensor, accepted: torch.Tensor, delta: torch.Tensor, stats: dict[str, torch.Tensor]) -> None:
        assert self._z is not None
        if self._t >= self._warmup_steps:
            for c in (delta > self._max_sliced_energy).nonzero().flatten().tolist():
                self._divergences[c].append(self._t - self._warmup_steps)
        self._t += 1
        if self._t > self._warmup_steps:
            n = self._t - self._warmup_steps
            self._accept_cnt = self._accept_cnt + accepted.to(self._accept_cnt.dtype)
            self._draw_stats.append(stats)
        else:
            n = self._t
            self._adapter.step(self._t, self._z, accept_prob, self._grad)
        self._mean_accept_prob = self._mean_accept_prob + (accept_prob - self._mean_accept_prob) / n

    def _sample_flat(self) -> torch.Tensor:
        """One transition of every chain; the new flat states, ``(C, D)``."""
        assert self._z is not None
        if self._layout.size == 0:
            self._t += 1
            ones = torch.ones(self._num_chains)
            if self._t > self._warmup_steps:
                self._accept_cnt = self._accept_cnt + 1
            self._mean_accept_prob = ones
            return self._z
        with torch.no_grad():
            self._transition()
        return self._z

    def _transition(self) -> None:
        raise NotImplementedError

    def _step_extension(self) -> Any:
        """Per-step work to record into the potential's graph (none by default)."""
        return None

    def sample(self, params: Params) -> Params:
        """One transition from ``params`` (unconstrained values by site); the new values."""
        if self._z is None:
            raise RuntimeError("call setup() before sample()")
        if params is not self._last_params and params:
            batch = 1 if self._num_chains > 1 else 0
            z = self._layout.pack(params, batch).reshape(self._num_chains, -1).to(self._pe.dtype)
            if not torch.equal(z, self._z):
                assert self._flat is not None
                self._z = z
                self._pe, self._grad = self._flat.value_and_grad(z)
        z = self._sample_flat()
        out = self._layout.unpack(z if self._num_chains > 1 else z[0])
        self._last_params = out
        return out

    @property
    def step_size(self) -> float:
        """The current step size (the first chain's when chains run vectorized)."""
        return self._adapter.step_size

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], torch.Tensor]:
        """Per block of site names, the current inverse mass matrix."""
        return self._adapter.mass_matrix_adapter.inverse_mass_matrix

    @property
    def mass_matrix_adapter(self) -> Any:
        """The mass matrix adapter (assign an :class:`ArrowheadMassMatrix` to replace it)."""
        return self._adapter.mass_matrix_adapter

    @mass_matrix_adapter.setter
    def mass_matrix_adapter(self, value: Any) -> None:
        self._adapter.mass_matrix_adapter = value

    def logging(self) -> dict[str, str]:
        """Step size and mean acceptance probability, for the progress bar."""
        return {"step size": f"{self.step_size:.2e}", "acc. prob": f"{float(self._mean_accept_prob[0]):.3f}"}

    def diagnostics(self) -> dict[str, Any]:
        """Divergent sampling steps (indices after warmup) and the acceptance rate."""
        n = max(self._t - self._warmup_steps, 1)
        rate = (self._accept_cnt / n).tolist()
        if self._num_chains == 1:
            return {"divergences": self._divergences[0], "acceptance rate": rate[0]}
        return {"divergences": self._divergences, "acceptance rate": rate}
