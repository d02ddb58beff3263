"""``conjugate_update``: prior x likelihood = posterior x exp(log_normalizer), pointwise."""

from __future__ import annotations

from typing import Any, Callable

import pyro
import pyro.distributions
import pyro.infer.reparam
import pyro.poutine
import pytest
import torch

import ember
import ember.distributions as dist
from ember import poutine
from ember.infer.reparam import ConjugateReparam


def _beta(*shape: int) -> Any:
    return dist.Beta(torch.rand(shape) * 3 + 0.5, torch.rand(shape) * 3 + 0.5)


def _gamma(*shape: int) -> Any:
    return dist.Gamma(torch.rand(shape) * 3 + 0.5, torch.rand(shape) * 3 + 0.5)


def _dirichlet(*shape: int) -> Any:
    return dist.Dirichlet(torch.rand(*shape, 4) * 3 + 0.5)


@pytest.mark.parametrize("make", [_beta, _gamma, _dirichlet, lambda *s: _beta(*s, 3).to_event(1)])
def test_update_is_exact_at_every_point_and_equals_pyros(make: Callable[..., Any]) -> None:
    torch.manual_seed(0)
    prior, likelihood = make(5), make(5)
    posterior, log_normalizer = prior.conjugate_update(likelihood)
    z = prior.sample()
    torch.testing.assert_close(prior.log_prob(z) + likelihood.log_prob(z), posterior.log_prob(z) + log_normalizer)
    assert type(posterior) is type(prior) and posterior.batch_shape == prior.batch_shape
    theirs = getattr(pyro.distributions, type(prior).__name__)
    if type(prior).__name__ != "Independent":
        params = [getattr(prior, k) for k in prior.arg_constraints]
        other = [getattr(likelihood, k) for k in likelihood.arg_constraints]
        _, their_normalizer = theirs(*params).conjugate_update(theirs(*other))
        torch.testing.assert_close(log_normalizer, their_normalizer)


def test_update_with_another_family_is_a_type_error_naming_both() -> None:
    with pytest.raises(TypeError, match="Beta.conjugate_update needs a Beta likelihood, got Gamma"):
        dist.Beta(2.0, 2.0).conjugate_update(dist.Gamma(2.0, 2.0))


def test_conjugate_reparam_of_a_beta_prior_matches_pyro() -> None:
    def run(backend: Any, handlers: Any, reparam_cls: Any) -> torch.Tensor:
        d = backend.distributions

        def model() -> None:
            p = backend.sample("p", d.Beta(2.0, 2.0))
            backend.sample("x", d.Bernoulli(p), obs=torch.tensor(1.0))

        def likelihood() -> Any:
            return d.Beta(torch.tensor(2.0), torch.tensor(1.0))

        reparamed = handlers.reparam(model, config={"p": reparam_cls(likelihood)})
        torch.manual_seed(3)
        tr = handlers.trace(reparamed).get_trace()
        total: torch.Tensor = tr.log_prob_sum()
        return total

    ours = run(ember, poutine, ConjugateReparam)
    theirs = run(pyro, pyro.poutine, pyro.infer.reparam.ConjugateReparam)
    torch.testing.assert_close(ours, theirs)
