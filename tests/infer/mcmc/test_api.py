"""MCMC driver behaviour: chain methods, seeds, sample layout, summary, diagnostics, streaming."""

from __future__ import annotations

import io
import multiprocessing
import sys
import time
from contextlib import redirect_stdout
from typing import Any

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer.mcmc import MCMC, NUTS, HMC, RandomWalkKernel, StreamingMCMC
from ember.infer.mcmc.util import print_summary

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(sigma: torch.Tensor, y: torch.Tensor | None = None) -> None:
    mu = ember.sample("mu", dist.Normal(0.0, 5.0))
    tau = ember.sample("tau", dist.HalfCauchy(5.0))
    with ember.plate("J", len(sigma)):
        theta = ember.sample("theta", dist.Normal(0.0, 1.0))
        ember.sample("obs", dist.Normal(mu + tau * theta, sigma), obs=y)


def run(method: str, seed: int = 0, num_chains: int = 2, **kwargs: Any) -> MCMC:
    ember.set_rng_seed(seed)
    mcmc = MCMC(NUTS(eight_schools), num_samples=15, warmup_steps=15, num_chains=num_chains,
                chain_method=method, disable_progbar=True, **kwargs)
    mcmc.run(SIGMA, y=Y)
    return mcmc


def test_each_chain_method_gives_the_same_samples_per_chain() -> None:
    sequential = run("sequential").get_samples(group_by_chain=True)
    vectorized = run("vectorized").get_samples(group_by_chain=True)
    start = time.monotonic()
    parallel = run("parallel").get_samples(group_by_chain=True)
    assert time.monotonic() - start < 60
    assert multiprocessing.active_children() == []
    for name in ("mu", "tau", "theta"):
        assert sequential[name].shape[:2] == (2, 15)
        assert torch.allclose(sequential[name], vectorized[name], atol=1e-4), name
        assert torch.allclose(sequential[name], parallel[name], atol=1e-4), name
    assert not torch.equal(sequential["mu"][0], sequential["mu"][1])


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    a = run("sequential", seed=3, num_chains=1).get_samples()["mu"]
    b = run("sequential", seed=3, num_chains=1).get_samples()["mu"]
    c = run("sequential", seed=4, num_chains=1).get_samples()["mu"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_get_samples_shapes_and_resampling() -> None:
    mcmc = run("vectorized")
    grouped = mcmc.get_samples(group_by_chain=True)
    flat = mcmc.get_samples()
    assert grouped["theta"].shape == (2, 15, 8) and flat["theta"].shape == (30, 8)
    assert torch.equal(flat["mu"], grouped["mu"].reshape(-1))
    drawn = mcmc.get_samples(num_samples=7)
    assert drawn["theta"].shape == (7, 8)
    assert all(bool((flat["mu"] == v).any()) for v in drawn["mu"])
    assert bool((grouped["tau"] > 0).all())


def test_summary_prints_pyros_table_and_divergences() -> None:
    import pyro.infer.mcmc.util

    pyro_util: Any = pyro.infer.mcmc.util  # pyro is untyped
    mcmc = run("vectorized")
    samples = mcmc.get_samples(group_by_chain=True)
    mine, theirs = io.StringIO(), io.StringIO()
    with redirect_stdout(mine):
        print_summary(samples, prob=0.8)
    with redirect_stdout(theirs):
        pyro_util.print_summary(samples, prob=0.8)
    assert mine.getvalue() == theirs.getvalue()
    out = io.StringIO()
    with redirect_stdout(out):
        mcmc.summary()
    text = out.getvalue()
    header = text.strip().splitlines()[0].split()
    assert header == ["mean", "std", "median", "5.0%", "95.0%", "n_eff", "r_hat"]
    assert "theta[7]" in text and text.strip().endswith(
        f"Number of divergences: {sum(len(v) for v in mcmc.diagnostics()['divergences'].values())}"
    )


def test_diagnostics_per_site_and_per_chain() -> None:
    mcmc = run("vectorized")
    diag = mcmc.diagnostics()
    assert diag["theta"]["n_eff"].shape == (8,) and diag["mu"]["r_hat"].shape == ()
    assert set(diag["divergences"]) == {"chain 0", "chain 1"}
    assert all(0.0 <= v <= 1.0 for v in diag["acceptance rate"].values())


def test_hook_fn_sees_every_step_and_save_params_keeps_named_sites() -> None:
    calls: list[tuple[str, int]] = []
    ember.set_rng_seed(0)
    mcmc = MCMC(NUTS(eight_schools), num_samples=4, warmup_steps=3, disable_progbar=True,
                hook_fn=lambda kernel, params, stage, i: calls.append((stage, i)), save_params=["mu"])
    mcmc.run(SIGMA, y=Y)
    assert calls == [("Warmup", 0), ("Warmup", 1), ("Warmup", 2), ("Sample", 0), ("Sample", 1), ("Sample", 2), ("Sample", 3)]
    assert list(mcmc.get_samples()) == ["mu"]


def test_streaming_mcmc_statistics_equal_the_kept_samples() -> None:
    kept = run("sequential")
    ember.set_rng_seed(0)
    streaming = StreamingMCMC(NUTS(eight_schools), num_samples=15, warmup_steps=15, num_chains=2, disable_progbar=True)
    streaming.run(SIGMA, y=Y)
    samples = kept.get_samples(group_by_chain=True)
    stats = streaming.get_statistics()
    for c in range(2):
        assert torch.allclose(stats[(c, "theta")]["mean"], samples["theta"][c].mean(0), atol=1e-5)
        assert torch.allclose(stats[(c, "mu")]["variance"], samples["mu"][c].var(0), atol=1e-4)
    merged = streaming.get_statistics(group_by_chain=False)
    assert torch.allclose(merged["tau"]["mean"], samples["tau"].mean(), atol=1e-5)
    assert set(streaming.diagnostics()["mu"]) == {"r_hat"}


def test_random_walk_and_hmc_kernels_run_vectorized() -> None:
    def model() -> None:
        ember.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))

    for kernel in (RandomWalkKernel(model, init_step_size=0.5), HMC(model, num_steps=3)):
        mcmc = MCMC(kernel, num_samples=20, warmup_steps=10, num_chains=3, chain_method="vectorized", disable_progbar=True)
        mcmc.run()
        assert mcmc.get_samples(group_by_chain=True)["x"].shape == (3, 20, 2)


def test_to_arviz_without_arviz_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    mcmc = run("sequential", num_chains=1)
    monkeypatch.setitem(sys.modules, "arviz", None)
    with pytest.raises(ImportError, match=r"ember\[arviz\]"):
        mcmc.to_arviz()


def test_to_arviz_groups() -> None:
    pytest.importorskip("arviz")
    mcmc = run("vectorized")
    data = mcmc.to_arviz()
    assert data.posterior["theta"].shape == (2, 15, 8)
    assert set(data.sample_stats.data_vars) >= {"diverging", "energy", "step_size", "tree_depth"}
    assert data.log_likelihood["obs"].shape == (2, 15, 8)
    assert data.observed_data["obs"].shape == (8,)
