"""Tests for MaskedMixture and MaskedConstraint (mixture.py)."""

from __future__ import annotations

import pytest
import torch

import ember.distributions as dist
from ember.distributions.mixture import MaskedConstraint
from tests.distributions._zoo import (
    assert_close,
    assert_fits_cdf,
    assert_log_prob_matches_pyro,
    pyro_dist,
)

_MASK = torch.tensor([True, False, True, False])
_LOC = torch.tensor([-1.0, 0.0, 1.0, 2.0])


def _pair(lib: object) -> tuple[object, object]:
    return lib.Normal(_LOC, 1.0), lib.Laplace(_LOC + 3, 2.0)  # type: ignore[attr-defined]


def test_log_prob_moments_and_shapes_match_pyro() -> None:
    d = dist.MaskedMixture(_MASK, *_pair(dist))  # type: ignore[arg-type]
    p = pyro_dist.MaskedMixture(_MASK, *_pair(pyro_dist))
    value = torch.randn(5, 4) * 3
    assert_log_prob_matches_pyro(d, p, value)
    assert_close(d.mean, p.mean)
    assert_close(d.variance, p.variance)
    assert d.batch_shape == p.batch_shape and d.event_shape == p.event_shape
    assert d.has_rsample and p.has_rsample
    expanded = d.expand((3, 4))
    assert type(expanded) is dist.MaskedMixture and expanded.batch_shape == (3, 4)
    assert_close(expanded.log_prob(value[0]), p.expand((3, 4)).log_prob(value[0]))


def test_samples_come_from_the_selected_component() -> None:
    d = dist.MaskedMixture(_MASK, *_pair(dist))  # type: ignore[arg-type]
    samples = d.rsample((4000,))
    assert_fits_cdf(samples[:, _MASK], dist.Laplace(_LOC[_MASK] + 3, 2.0).cdf)
    assert_fits_cdf(samples[:, ~_MASK], dist.Normal(_LOC[~_MASK], 1.0).cdf)
    torch.manual_seed(4)
    ours = d.sample((10,))
    torch.manual_seed(4)
    assert_close(ours, pyro_dist.MaskedMixture(_MASK, *_pair(pyro_dist)).sample((10,)))


def test_rsample_gradients_reach_only_the_selected_component() -> None:
    loc0 = torch.zeros(4, requires_grad=True)
    loc1 = torch.zeros(4, requires_grad=True)
    d = dist.MaskedMixture(_MASK, dist.Normal(loc0, 1.0), dist.Normal(loc1, 1.0))
    torch.autograd.backward(d.rsample((3,)).sum())
    assert loc0.grad is not None and loc1.grad is not None
    assert_close(loc1.grad, 3.0 * _MASK.float())
    assert_close(loc0.grad, 3.0 * (~_MASK).float())


def test_event_dimensions_are_selected_whole() -> None:
    mask = torch.tensor([True, False])
    c0 = dist.Normal(torch.zeros(2, 3), 1.0).to_event(1)
    c1 = dist.Normal(torch.full((2, 3), 10.0), 1.0).to_event(1)
    d = dist.MaskedMixture(mask, c0, c1)
    assert d.event_shape == (3,)
    sample = d.sample()
    assert bool((sample[0] > 5).all()) and bool((sample[1] < 5).all())
    p = pyro_dist.MaskedMixture(
        mask,
        pyro_dist.Normal(torch.zeros(2, 3), 1.0).to_event(1),
        pyro_dist.Normal(torch.full((2, 3), 10.0), 1.0).to_event(1),
    )
    assert_log_prob_matches_pyro(d, p, torch.randn(4, 2, 3) * 5)
    assert_close(d.mean, p.mean)


def test_support_is_masked_when_components_differ() -> None:
    d = dist.MaskedMixture(_MASK, dist.Normal(_LOC, 1.0), dist.Exponential(torch.ones(4)))
    support = d.support
    assert isinstance(support, MaskedConstraint)
    value = torch.tensor([1.0, -1.0, -1.0, 1.0])
    assert support.check(value).tolist() == [True, True, False, True]
    with pytest.raises(ValueError, match="support"):
        d.log_prob(value)
    same = dist.MaskedMixture(_MASK, dist.Normal(_LOC, 1.0), dist.Normal(_LOC, 2.0))
    assert same.support is dist.constraints.real


def test_bad_masks_and_components_raise_pyro_errors_naming_shapes() -> None:
    normal, laplace = _pair(dist)
    with pytest.raises(ValueError, match="Expected mask to be a BoolTensor"):
        dist.MaskedMixture(_MASK.float(), normal, laplace)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"MaskedMixture: components event_shape disagree: torch.Size\(\[\]\) vs torch.Size\(\[3\]\)"):
        dist.MaskedMixture(_MASK, normal, dist.Dirichlet(torch.ones(4, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"MaskedMixture: mask shape \(3,\) and component batch shapes \(4,\) and \(4,\)"):
        dist.MaskedMixture(torch.tensor([True, False, True]), normal, laplace)  # type: ignore[arg-type]
