"""LatentStableReparam, SymmetricStableReparam, StableReparam: Pyro's traces on the same seed,
the stable marginal unchanged, and sites of other distributions refused."""

from __future__ import annotations

import importlib
from typing import Any

import pyro.infer.reparam as pyro_reparam
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.reparam as ember_reparam
from ember import poutine
from ember.infer.reparam import LatentStableReparam, StableReparam, SymmetricStableReparam
from ember.infer.reparam import stable as stable_module
from tests.parity._backends import EMBER, Backend, EmberState, assert_traces_match, run_both

pyro_stable: Any = importlib.import_module("pyro.infer.reparam.stable")

_NODES = {
    "LatentStableReparam": ["x_uniform", "x_exponential", "x"],
    "SymmetricStableReparam": ["x_uniform", "x_exponential", "x"],
    "StableReparam": ["x_z_uniform", "x_z_exponential", "x_t_uniform", "x_t_exponential", "x"],
}


@pytest.mark.parametrize(
    ("reparam_name", "observed"),
    [(name, observed) for name in sorted(_NODES) for observed in (False, True) if not (observed and name.startswith("Latent"))],
)
def test_trace_and_log_density_equal_pyros_on_the_same_seed(reparam_name: str, observed: bool) -> None:
    # Stabilities on both sides of the hole at 1, inside StableReparam's shift window too.
    stability = torch.tensor([0.5, 0.997, 1.0, 1.3, 1.9])
    skew = torch.zeros(5) if reparam_name == "SymmetricStableReparam" else torch.tensor([-0.5, 0.3, 0.9, 0.0, 1.0])

    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam

        def model() -> None:
            with b.pyro.plate("p", 5):
                obs = torch.tensor([0.5, -2.0, 4.0, 0.0, 1.0]) if observed else None
                b.pyro.sample("x", b.dist.Stable(stability, skew, 2.0, 1.0), obs=obs)

        reparameterized = b.poutine.reparam(model, {"x": getattr(reparams, reparam_name)()})
        return b.poutine.trace(reparameterized).get_trace()

    ours, theirs = run_both(program, seed=5)
    assert list(ours.nodes) == ["_INPUT", "p", *_NODES[reparam_name], "_RETURN"]
    assert_traces_match(ours, theirs)


def test_independent_wrapped_sites_keep_their_event_dims() -> None:
    def model() -> None:
        ember.sample("x", dist.Stable(1.5 * torch.ones(3), 0.2).to_event(1), obs=torch.ones(3))

    tr = poutine.trace(poutine.reparam(model, {"x": StableReparam()})).get_trace()
    fn: Any = tr.nodes["x"]["fn"]
    assert (fn.batch_shape, fn.event_shape) == ((), (3,))
    assert tr.nodes["x_t_uniform"]["fn"].event_shape == (3,)


def _ks_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """The two-sample Kolmogorov-Smirnov statistic."""
    both = torch.cat([x, y]).sort().values
    cdf_x = torch.searchsorted(x.sort().values, both, right=True) / x.numel()
    cdf_y = torch.searchsorted(y.sort().values, both, right=True) / y.numel()
    return float((cdf_x - cdf_y).abs().max())


@pytest.mark.parametrize(
    ("reparam", "stability", "skew"),
    [
        (LatentStableReparam(), 1.5, 0.7),
        (SymmetricStableReparam(), 1.2, 0.0),
        (StableReparam(), 1.7, -0.6),
        (StableReparam(), 1.0, 0.4),
        (StableReparam(), 0.8, 0.9),
    ],
)
def test_the_marginal_of_the_site_is_the_stable_distribution(reparam: Any, stability: float, skew: float) -> None:
    """Two-sample KS test against Stable.sample: with n = m = 4000 draws the statistic
    exceeds 1.95 * sqrt(2 / n) = 0.0436 with probability 0.001 under the null."""
    n = 4000
    fn = dist.Stable(stability, skew, 1.5, -0.5)

    def model() -> torch.Tensor:
        with ember.plate("draws", n):
            x: torch.Tensor = ember.sample("x", fn)
        return x

    torch.manual_seed(0)
    x = poutine.reparam(model, {"x": reparam})()
    if not isinstance(reparam, LatentStableReparam):
        x = x.detach()  # the site is a normal given the auxiliaries: its draw is the marginal
    y = fn.sample((n,))
    assert _ks_distance(x.detach(), y) < 1.95 * (2 / n) ** 0.5


@pytest.mark.parametrize("reparam", [LatentStableReparam(), SymmetricStableReparam(), StableReparam()])
def test_a_site_of_another_distribution_is_refused_naming_it(reparam: Any) -> None:
    def normal_model() -> None:
        ember.sample("y", dist.Normal(0.0, 1.0))

    def logprob_model() -> None:
        ember.sample("y", dist.StableWithLogProb(1.5, 0.0))

    before = EmberState.capture()
    name = type(reparam).__name__
    for model, got in [(normal_model, "Normal"), (logprob_model, "StableWithLogProb")]:
        with pytest.raises(AssertionError, match=f"{name} at site 'y' expects a Stable .*got {got}"):
            poutine.trace(poutine.reparam(model, {"y": reparam})).get_trace()
        assert EmberState.capture() == before


def test_latent_reparam_refuses_observations_and_symmetric_refuses_skew() -> None:
    def observed() -> None:
        ember.sample("x", dist.Stable(1.5, 0.0), obs=torch.tensor(1.0))

    with pytest.raises(NotImplementedError, match=r"pyro.sample\('x',...\), LatentStableReparam does not support observe"):
        poutine.reparam(observed, {"x": LatentStableReparam()})()

    def skewed() -> None:
        ember.sample("x", dist.Stable(1.5, 0.5))

    with pytest.raises(ValueError, match="SymmetricStableReparam found nonzero skew at site 'x'"):
        poutine.reparam(skewed, {"x": SymmetricStableReparam()})()
    assert ember.poutine.runtime.get_stack() == ()


def test_gradients_flow_to_the_parameters_and_equal_pyros() -> None:
    def program(b: Backend) -> Any:
        reparams: Any = ember_reparam if b is EMBER else pyro_reparam
        a = torch.tensor([0.7, 1.3, 1.6], requires_grad=True)
        skew = torch.tensor([0.5, -0.3, 0.8], requires_grad=True)

        def model() -> None:
            with b.pyro.plate("p", 3):
                b.pyro.sample("x", b.dist.Stable(a, skew), obs=torch.tensor([0.1, 1.0, -2.0]))

        tr = b.poutine.trace(b.poutine.reparam(model, {"x": reparams.StableReparam()})).get_trace()
        return torch.autograd.grad(tr.log_prob_sum(), [a, skew])

    ours, theirs = run_both(program, seed=2)
    for g_ours, g_theirs in zip(ours, theirs):
        assert torch.allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-5)


def test_the_shift_is_continuous_across_stability_one_with_pyros_gradients() -> None:
    """Inside its window around 1 the S -> S0 shift is interpolated; its value and gradient
    equal Pyro's, and the values at the window's edges meet the exact shift."""
    a = torch.tensor([0.994, 0.996, 1.0, 1.003, 1.006], requires_grad=True)
    skew = torch.tensor([0.4, -0.7, 0.2, 0.9, -0.1])
    skew_abs = skew.abs()
    ours = stable_module._safe_shift(a, skew, skew_abs)
    theirs = pyro_stable._safe_shift(a, skew, skew_abs.pow(a.reciprocal()), skew_abs)
    assert torch.allclose(ours, theirs, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.sum(), [a])
    (g_theirs,) = torch.autograd.grad(theirs.sum(), [a])
    assert torch.allclose(g_ours, g_theirs, rtol=1e-4)
    edge = torch.tensor([0.995, 1.005], dtype=torch.float64)
    exact = stable_module._shift(edge, torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64))
    interpolated = stable_module._safe_shift(edge, torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64))
    assert torch.allclose(interpolated, exact)
