"""``collapse`` against marginal densities computed independently (Pyro needs funsor here)."""

from __future__ import annotations

import io
import math
import pickle
from typing import Any, Callable

import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.poutine.collapse_messenger import CollapsedValue

DATA = torch.tensor([1.0, 0.0, 1.0, 1.0])


def beta_bernoulli(data: torch.Tensor) -> None:
    p = ember.sample("p", dist.Beta(2.0, 3.0))
    with ember.plate("data", len(data)):
        ember.sample("x", dist.Bernoulli(p), obs=data)


def _grid_marginal(prior: Any, likelihood: Callable[[torch.Tensor], torch.Tensor], low: float, high: float) -> float:
    """log of the integral of prior(t) * likelihood(t) over [low, high], by the trapezoid rule."""
    grid = torch.linspace(low, high, 200_001, dtype=torch.float64)[1:-1]
    integrand = (prior.log_prob(grid) + likelihood(grid)).exp()
    return math.log(torch.trapezoid(integrand, grid).item())


def _factor(tr: Any) -> float:
    return float(tr.log_prob_sum())


def test_beta_bernoulli_matches_numeric_integration() -> None:
    tr = poutine.trace(poutine.collapse(beta_bernoulli)).get_trace(DATA)
    assert list(tr.nodes) == ["_INPUT", "data", "p", "_RETURN"]
    site = tr.nodes["p"]
    assert site["is_observed"] and site["infer"] == {"is_auxiliary": True}
    unit: Any = site["fn"]
    assert type(unit).__name__ == "Unit" and unit.log_factor.shape == ()
    prior = dist.Beta(torch.tensor(2.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64))
    k, n = 3, 4
    expected = _grid_marginal(prior, lambda t: k * t.log() + (n - k) * (1 - t).log(), 0.0, 1.0)
    assert _factor(tr) == pytest.approx(expected, abs=1e-5)


def test_beta_binomial_matches_numeric_integration() -> None:
    counts, totals = torch.tensor([1.0, 4.0, 2.0]), torch.tensor([5.0, 6.0, 2.0])

    def model() -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Beta(2.5, 1.5))
            with ember.plate("data", 3):
                ember.sample("x", dist.Binomial(totals, p), obs=counts)

    prior = dist.Beta(torch.tensor(2.5, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64))

    def likelihood(t: torch.Tensor) -> torch.Tensor:
        binomial = dist.Binomial(totals.double()[:, None], probs=t, validate_args=False)
        log_prob: torch.Tensor = binomial.log_prob(counts.double()[:, None])
        return log_prob.sum(0)

    expected = _grid_marginal(prior, likelihood, 0.0, 1.0)
    assert _factor(poutine.trace(model).get_trace()) == pytest.approx(expected, abs=1e-5)


def test_gamma_poisson_matches_numeric_integration() -> None:
    counts = torch.tensor([1.0, 4.0, 2.0, 0.0])

    def model() -> None:
        with poutine.collapse():
            rate = ember.sample("rate", dist.Gamma(2.0, 0.5))
            with ember.plate("data", 4):
                ember.sample("x", dist.Poisson(rate), obs=counts)

    prior = dist.Gamma(torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))

    def likelihood(t: torch.Tensor) -> torch.Tensor:
        log_prob: torch.Tensor = dist.Poisson(t[:, None]).log_prob(counts.double())
        return log_prob.sum(-1)

    expected = _grid_marginal(prior, likelihood, 0.0, 60.0)
    assert _factor(poutine.trace(model).get_trace()) == pytest.approx(expected, abs=1e-5)


def test_normal_normal_matches_the_multivariate_normal_marginal() -> None:
    data = torch.tensor([0.3, 1.2, -0.4, 2.0])

    def model() -> None:
        loc = ember.param("loc", torch.tensor(0.5))
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(loc, 2.0))
            with ember.plate("data", 4):
                ember.sample("x", dist.Normal(z, 0.7), obs=data)

    tr = poutine.trace(model).get_trace()
    log_factor = torch.as_tensor(tr.log_prob_sum())
    loc = ember.param("loc")
    marginal: torch.Tensor = dist.MultivariateNormal(loc.expand(4), 0.49 * torch.eye(4) + 4.0).log_prob(data)
    assert torch.allclose(log_factor, marginal)
    (grad,) = torch.autograd.grad(log_factor, loc)
    (expected_grad,) = torch.autograd.grad(marginal, loc)
    assert torch.allclose(grad, expected_grad)


def test_normal_normal_with_several_children_and_a_batched_latent() -> None:
    data1, data2 = torch.tensor([[0.1, 2.0], [0.5, 1.5], [-0.3, 2.2]]), torch.tensor([1.0, 3.0])

    def model() -> None:
        with poutine.collapse():
            with ember.plate("groups", 2):
                z = ember.sample("z", dist.Normal(torch.tensor([0.0, 1.0]), 1.5))
                with ember.plate("data", 3, dim=-2):
                    ember.sample("x1", dist.Normal(z, 0.5), obs=data1)
                ember.sample("x2", dist.Normal(z, 2.0), obs=data2)

    expected = 0.0
    for g, prior_loc in enumerate([0.0, 1.0]):
        values = torch.cat([data1[:, g], data2[g : g + 1]])
        noise = torch.diag(torch.tensor([0.25, 0.25, 0.25, 4.0]))
        expected += float(dist.MultivariateNormal(torch.full((4,), prior_loc), noise + 2.25).log_prob(values))
    tr = poutine.trace(model).get_trace()
    assert list(tr.nodes) == ["_INPUT", "groups", "data", "z", "_RETURN"]
    assert _factor(tr) == pytest.approx(expected, abs=1e-4)


def _polya_log_prob(alpha: list[float], draws: list[list[float]]) -> float:
    """Dirichlet-multinomial by the chain rule: draw the balls one at a time from a Polya urn."""
    counts, total, log_p = list(alpha), sum(alpha), 0.0
    for draw in draws:
        n = int(sum(draw))
        log_p += math.lgamma(n + 1) - sum(math.lgamma(c + 1) for c in draw)  # orderings
        for k, c in enumerate(draw):
            for _ in range(int(c)):
                log_p += math.log(counts[k] / total)
                counts[k] += 1
                total += 1
    return log_p


def test_dirichlet_categorical_matches_the_polya_urn() -> None:
    values = torch.tensor([0, 2, 2, 1, 2])

    def model() -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Dirichlet(torch.tensor([1.0, 2.0, 3.0])))
            with ember.plate("data", 5):
                ember.sample("x", dist.Categorical(p), obs=values)

    one_hot = [[1.0 if k == v else 0.0 for k in range(3)] for v in values.tolist()]
    expected = _polya_log_prob([1.0, 2.0, 3.0], one_hot)
    assert _factor(poutine.trace(model).get_trace()) == pytest.approx(expected, abs=1e-5)


def test_dirichlet_multinomial_matches_the_polya_urn() -> None:
    counts = torch.tensor([[1.0, 1.0, 2.0], [0.0, 4.0, 0.0]])

    def model() -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Dirichlet(torch.tensor([0.5, 2.0, 1.0])))
            with ember.plate("data", 2):
                ember.sample("x", dist.Multinomial(4, p), obs=counts)

    expected = _polya_log_prob([0.5, 2.0, 1.0], counts.tolist())
    assert _factor(poutine.trace(model).get_trace()) == pytest.approx(expected, abs=1e-5)


def test_masked_observations_do_not_count() -> None:
    def model(mask: torch.Tensor) -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Beta(2.0, 3.0))
            with ember.plate("data", 4), poutine.mask(mask=mask):
                ember.sample("x", dist.Bernoulli(p), obs=DATA)

    masked = _factor(poutine.trace(model).get_trace(torch.tensor([True, False, True, False])))
    subset = _factor(poutine.trace(poutine.collapse(beta_bernoulli)).get_trace(torch.tensor([1.0, 1.0])))
    assert masked == pytest.approx(subset, abs=1e-6)


def test_other_sites_are_folded_into_the_factor() -> None:
    def model() -> None:
        with poutine.collapse():
            ember.sample("lonely", dist.Exponential(1.0))  # no conjugate prior needed: no children
            beta_bernoulli(DATA)
            ember.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5))
            ember.deterministic("d", torch.tensor(1.0))

    tr = poutine.trace(model).get_trace()
    assert list(tr.nodes) == ["_INPUT", "data", "lonely", "_RETURN"]  # named after the first latent
    alone = _factor(poutine.trace(poutine.collapse(beta_bernoulli)).get_trace(DATA))
    assert _factor(tr) == pytest.approx(alone + float(dist.Normal(0.0, 1.0).log_prob(torch.tensor(0.5))), abs=1e-6)


def test_latent_values_are_stand_ins_holding_the_prior_mean() -> None:
    inner = poutine.trace(beta_bernoulli)
    poutine.trace(poutine.collapse(inner))(DATA)
    z = inner.trace.nodes["p"]["value"]
    assert isinstance(z, CollapsedValue) and z._collapsed_sites == {"p"} and z._collapsed_kind == "value"
    assert float(z) == pytest.approx(0.4)
    derived = z * 2
    assert isinstance(derived, CollapsedValue) and derived._collapsed_kind == "derived"
    broadcast = z.expand(3)
    assert isinstance(broadcast, CollapsedValue) and broadcast._collapsed_kind == "value"
    assert type(torch.zeros_like(z)) is torch.Tensor


def test_outer_plates_are_kept_in_the_factor() -> None:
    data = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])

    def model() -> None:
        with ember.plate("groups", 2):
            with poutine.collapse():
                p = ember.sample("p", dist.Beta(2.0, 3.0))
                with ember.plate("data", 3, dim=-2):
                    ember.sample("x", dist.Bernoulli(p), obs=data)

    tr = poutine.trace(model).get_trace()
    site = tr.nodes["p"]
    assert [f.name for f in site["cond_indep_stack"]] == ["groups"]
    tr.compute_log_prob()
    per_group = site["log_prob"]
    assert per_group.shape == (2,)
    for g in range(2):
        alone = _factor(poutine.trace(poutine.collapse(beta_bernoulli)).get_trace(data[:, g]))
        assert float(per_group[g]) == pytest.approx(alone, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# barrier


def _barrier_model(data: torch.Tensor) -> torch.Tensor:
    with poutine.collapse():
        beta_bernoulli(data)
        p = ember.sample("p2", dist.Beta(1.0, 1.0))
        draws: Any = ember.barrier({"p2": p})
        ember.sample("y", dist.Bernoulli(draws["p2"]), obs=torch.tensor(1.0))
    draw: torch.Tensor = draws["p2"]
    return draw


def test_barrier_emits_a_factor_and_returns_posterior_draws() -> None:
    ember.set_rng_seed(7)
    tr = poutine.trace(_barrier_model).get_trace(DATA)
    assert list(tr.nodes) == ["_INPUT", "data", "p", "y", "_RETURN"]
    draw = tr.nodes["_RETURN"]["value"]
    assert type(draw) is torch.Tensor
    torch.manual_seed(7)
    torch.distributions.Beta(5.0, 4.0).rsample()  # "p" | 3 successes in 4, drawn first
    assert torch.equal(draw, torch.distributions.Beta(1.0, 1.0).rsample())  # "p2" has no data
    tr.compute_log_prob()
    assert float(tr.nodes["p"]["log_prob"]) == pytest.approx(_factor(poutine.trace(poutine.collapse(beta_bernoulli)).get_trace(DATA)))
    assert torch.allclose(tr.nodes["y"]["log_prob"], draw.log())  # the later site uses the draw


def test_barrier_errors_name_the_sites() -> None:
    def stale() -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Beta(2.0, 3.0))
            ember.barrier(p)
            ember.sample("x", dist.Bernoulli(p), obs=torch.tensor(1.0))

    with pytest.raises(NotImplementedError, match="site 'x' uses the stand-in of 'p', which a barrier already replaced"):
        poutine.trace(stale).get_trace()

    def derived() -> None:
        with poutine.collapse():
            p = ember.sample("p", dist.Beta(2.0, 3.0))
            ember.barrier(p * 2)

    with pytest.raises(NotImplementedError, match=r"barrier cannot make a value computed from collapsed site\(s\) \['p'\]"):
        poutine.trace(derived).get_trace()


# ---------------------------------------------------------------------------------------------
# errors


def _raises(model: Callable[[], None], match: str) -> None:
    with pytest.raises(NotImplementedError, match=match):
        poutine.trace(model).get_trace()


def test_non_conjugate_pairs_raise_naming_the_site() -> None:
    def scale_child() -> None:
        with poutine.collapse():
            s = ember.sample("s", dist.Gamma(2.0, 1.0))
            ember.sample("x", dist.Normal(0.0, s), obs=torch.tensor(1.0))

    _raises(scale_child, r"latent site\(s\) \['s'\] through observed site 'x': no conjugate rule for a Gamma prior and this Normal")

    def logits_child() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            ember.sample("x", dist.Bernoulli(logits=z), obs=torch.tensor(1.0))

    _raises(logits_child, "observed site 'x': no conjugate rule for a Normal prior and this Bernoulli")

    def derived_child() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            ember.sample("x", dist.Normal(2 * z, 1.0), obs=torch.tensor(1.0))

    _raises(derived_child, "observed site 'x'")

    def two_latents() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            w = ember.sample("w", dist.Gamma(1.0, 1.0))
            ember.sample("x", dist.Normal(z, w), obs=torch.tensor(1.0))

    _raises(two_latents, r"latent site\(s\) \['w', 'z'\] through observed site 'x'")


def test_unsupported_structures_raise_naming_the_site() -> None:
    def chained() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            ember.sample("w", dist.Normal(z, 1.0))

    _raises(chained, "the prior of latent site 'w' depends on another collapsed site")

    def scaled() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            with poutine.scale(scale=2.0):
                ember.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(1.0))

    _raises(scaled, "observed site 'x' is scaled")

    def observes_latent() -> None:
        with poutine.collapse():
            z = ember.sample("z", dist.Normal(0.0, 1.0))
            ember.sample("x", dist.Normal(0.0, 1.0), obs=z)

    _raises(observes_latent, "site 'x' observes a collapsed value")


# ---------------------------------------------------------------------------------------------
# forms and composition


EXPECTED = math.log(math.gamma(5) * math.gamma(4) / math.gamma(9) / (math.gamma(2) * math.gamma(3) / math.gamma(5)))


def test_function_form() -> None:
    wrapped = poutine.collapse(beta_bernoulli)
    assert _factor(poutine.trace(wrapped).get_trace(DATA)) == pytest.approx(EXPECTED, abs=1e-5)


def test_decorator_and_context_manager_forms() -> None:
    @poutine.collapse()
    def decorated(data: torch.Tensor) -> None:
        beta_bernoulli(data)

    assert _factor(poutine.trace(decorated).get_trace(DATA)) == pytest.approx(EXPECTED, abs=1e-5)
    with poutine.trace() as tracer, poutine.collapse():
        beta_bernoulli(DATA)
    assert _factor(tracer.get_trace()) == pytest.approx(EXPECTED, abs=1e-5)
    messenger = poutine.CollapseMessenger()
    assert _factor(poutine.trace(messenger(beta_bernoulli)).get_trace(DATA)) == pytest.approx(EXPECTED, abs=1e-5)


class Coin:
    def __init__(self, a: float) -> None:
        self.a = a

    @poutine.collapse()
    def model(self, data: torch.Tensor) -> None:
        p = ember.sample("p", dist.Beta(self.a, 3.0))
        with ember.plate("data", len(data)):
            ember.sample("x", dist.Bernoulli(p), obs=data)


def test_method_decorator_binds_self() -> None:
    assert _factor(poutine.trace(Coin(2.0).model).get_trace(DATA)) == pytest.approx(EXPECTED, abs=1e-5)


def test_wrapped_model_pickles() -> None:
    wrapped = poutine.collapse(beta_bernoulli)
    poutine.trace(wrapped)(DATA)  # a run leaves nothing unpicklable behind
    buf = io.BytesIO()
    torch.save(wrapped, buf, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert _factor(poutine.trace(loaded).get_trace(DATA)) == pytest.approx(EXPECTED, abs=1e-5)


def test_condition_inside_makes_sites_observed() -> None:
    def latent_x() -> None:
        p = ember.sample("p", dist.Beta(2.0, 3.0))
        with ember.plate("data", 4):
            ember.sample("x", dist.Bernoulli(p))

    tr = poutine.trace(poutine.collapse(poutine.condition(latent_x, data={"x": DATA}))).get_trace()
    assert _factor(tr) == pytest.approx(EXPECTED, abs=1e-5)
    # Outside, condition never sees the hidden site: "x" stays latent and depends on "p".
    with pytest.raises(NotImplementedError, match="the prior of latent site 'x'"):
        poutine.trace(poutine.condition(poutine.collapse(latent_x), data={"x": DATA})).get_trace()


def test_replay_inside_fixes_the_latent_and_outside_leaves_the_factor() -> None:
    source = poutine.trace(beta_bernoulli).get_trace(DATA)
    p = source.nodes["p"]["value"]
    tr = poutine.trace(poutine.collapse(poutine.replay(beta_bernoulli, trace=source))).get_trace(DATA)
    expected = dist.Beta(2.0, 3.0).log_prob(p) + dist.Bernoulli(p).log_prob(DATA).sum()
    assert _factor(tr) == pytest.approx(float(expected), abs=1e-5)
    tr = poutine.trace(poutine.replay(poutine.collapse(beta_bernoulli), trace=source)).get_trace(DATA)
    assert _factor(tr) == pytest.approx(EXPECTED, abs=1e-5)  # the factor is observed: not replayed


def test_block_hides_the_factor_or_the_sites() -> None:
    tr = poutine.trace(poutine.block(poutine.collapse(beta_bernoulli), hide=["p"])).get_trace(DATA)
    assert list(tr.nodes) == ["_INPUT", "data", "_RETURN"]
    # Sites blocked inside are invisible to collapse as well: only the prior is integrated.
    tr = poutine.trace(poutine.collapse(poutine.block(beta_bernoulli, hide=["x"]))).get_trace(DATA)
    assert list(tr.nodes) == ["_INPUT", "data", "p", "_RETURN"] and _factor(tr) == 0.0


def test_plate_inside_and_outside() -> None:
    def inside() -> None:
        with poutine.collapse():
            beta_bernoulli(DATA)

    def outside() -> None:
        with ember.plate("outer", 2, dim=-2), poutine.collapse():
            beta_bernoulli(DATA)  # the same data, observed once per element of "outer"

    assert _factor(poutine.trace(inside).get_trace()) == pytest.approx(EXPECTED, abs=1e-5)
    tr = poutine.trace(outside).get_trace()
    tr.compute_log_prob()
    assert tr.nodes["p"]["log_prob"].shape == (2, 1)
    assert torch.allclose(tr.nodes["p"]["log_prob"], torch.full((2, 1), EXPECTED))


def test_outside_inference_the_factor_is_dropped_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="trying to observe a value outside of inference at p"):
        poutine.collapse(beta_bernoulli)(DATA)
