"""Bad input raises Pyro's error type naming the site, and leaves nothing behind."""

from __future__ import annotations

import multiprocessing
import os
from typing import Callable

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import HMC, MCMC, NUTS
from ember.poutine import runtime


def normal() -> None:
    ember.sample("x", dist.Normal(0.0, 1.0))
    ember.sample("s", dist.HalfNormal(1.0))


def _clean() -> None:
    assert runtime.get_stack() == ()
    assert multiprocessing.active_children() == []
    assert list(ember.get_param_store().keys()) == []


def _raises(error: type[Exception], match: str, fn: Callable[[], object]) -> None:
    with pytest.raises(error, match=match):
        fn()
    _clean()


def test_model_without_latent_sites() -> None:
    def model() -> None:
        ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))

    _raises(ValueError, "no latent sample sites", lambda: MCMC(NUTS(model), 5, 5, disable_progbar=True).run())


def test_subsampled_plate_is_not_supported() -> None:
    def model() -> None:
        x = ember.sample("x", dist.Normal(0.0, 1.0))
        with ember.plate("data", 10, subsample_size=3):
            ember.sample("y", dist.Normal(x, 1.0), obs=torch.zeros(3))

    _raises(NotImplementedError, "subsample sites", lambda: MCMC(NUTS(model), 5, 5, disable_progbar=True).run())


def test_initial_params_unknown_site_wrong_shape_or_not_finite() -> None:
    good = {"x": torch.tensor(0.0), "s": torch.tensor(0.0)}
    for params, match in [
        ({**good, "zz": torch.tensor(0.0)}, "unknown sites \\['zz'\\]"),
        ({"x": torch.tensor(0.0)}, "missing the latent sites \\['s'\\]"),
        ({**good, "x": torch.zeros(3)}, "initial_params\\['x'\\] has shape \\(3,\\), expected \\(\\)"),
        ({**good, "s": torch.tensor(float("nan"))}, "initial_params\\['s'\\] is not finite"),
    ]:
        _raises(ValueError, match, lambda: MCMC(NUTS(normal), 5, 5, initial_params=params, disable_progbar=True).run())


def test_initial_params_leading_dim_must_match_num_chains() -> None:
    _raises(ValueError, "must match the number of chains \\(2\\)",
            lambda: MCMC(NUTS(normal), 5, 5, num_chains=2, initial_params={"x": torch.zeros(3), "s": torch.zeros(3)}))


def test_nan_potential_at_every_init_attempt() -> None:
    def model() -> None:
        x = ember.sample("x", dist.Normal(0.0, 1.0))
        ember.factor("bad", x * float("nan"))

    _raises(ValueError, "cannot find valid initial params", lambda: MCMC(NUTS(model), 5, 5, disable_progbar=True).run())


def test_potential_fn_without_initial_params() -> None:
    kernel = HMC(potential_fn=lambda p: (p["x"] ** 2).sum())
    _raises(ValueError, "Must provide valid initial parameters", lambda: MCMC(kernel, 5, 5))


def test_potential_fn_with_initial_params_samples() -> None:
    kernel = NUTS(potential_fn=lambda p: 0.5 * (p["x"] ** 2).sum())
    mcmc = MCMC(kernel, 30, 20, initial_params={"x": torch.zeros(2)}, disable_progbar=True)
    mcmc.run()
    assert mcmc.get_samples()["x"].shape == (30, 2)


def test_negative_warmup_steps_and_model_xor_potential() -> None:
    _raises(ValueError, "warmup_steps must be >= 0, got -1", lambda: MCMC(NUTS(normal), 5, warmup_steps=-1))
    _raises(ValueError, "Only one of `model` or `potential_fn`", lambda: NUTS(normal, potential_fn=lambda p: p["x"]))
    _raises(ValueError, "Only one of `model` or `potential_fn`", lambda: HMC())


def test_unknown_chain_method_and_full_mass_site() -> None:
    _raises(ValueError, "chain_method must be one of", lambda: MCMC(NUTS(normal), 5, chain_method="threads"))
    _raises(ValueError, "full_mass names 'nope'",
            lambda: MCMC(NUTS(normal, full_mass=[("x", "nope")]), 5, 5, disable_progbar=True).run())


def test_more_chains_than_cpus_warns_and_runs_sequentially(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.multiprocessing.cpu_count", lambda: 2)
    with pytest.warns(UserWarning, match="num_chains=3 is more than available_cpu=1. Chains will be drawn sequentially."):
        mcmc = MCMC(NUTS(normal), 5, 5, num_chains=3, disable_progbar=True)
    assert mcmc.chain_method == "sequential"


def test_worker_error_reaches_the_parent_and_no_process_is_left() -> None:
    parent = os.getpid()

    def model() -> None:
        if os.getpid() != parent:
            raise RuntimeError("model failed in the worker")
        ember.sample("x", dist.Normal(0.0, 1.0))

    mcmc = MCMC(NUTS(model), 5, 5, num_chains=2, chain_method="parallel", disable_progbar=True)
    _raises(RuntimeError, "model failed in the worker", lambda: mcmc.run())


def test_unknown_save_params_site() -> None:
    mcmc = MCMC(NUTS(normal), 3, 2, disable_progbar=True, save_params=["not_a_site"])
    _raises(ValueError, "save_params names unknown sites \\['not_a_site'\\]", lambda: mcmc.run())
