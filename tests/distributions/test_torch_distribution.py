"""Tests for TorchDistributionMixin, TorchDistribution and the masked/expanded/independent wrappers."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch
from torch.types import _size

import ember.distributions as dist
from ember.distributions import (
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
    TorchDistribution,
    validation_enabled,
)

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")


def _has_rsample(d: Any) -> bool:
    """Read has_rsample afresh (a plain attribute read would stay narrowed for mypy)."""
    return bool(d.has_rsample)


class _Constant(TorchDistribution):
    """A TorchDistribution subclass that does not implement expand."""

    arg_constraints: dict[str, Any] = {}
    has_rsample = True

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value
        super().__init__(value.shape, torch.Size())

    def rsample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        return self.value.expand(torch.Size(sample_shape) + self.value.shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return (value - self.value).abs().neg()


# --- the mixin ---------------------------------------------------------------------------------


def test_event_dim_and_shape() -> None:
    d = dist.MultivariateNormal(torch.zeros(4, 3), torch.eye(3))
    assert d.event_dim == 1
    assert d.shape() == (4, 3)
    assert d.shape((2, 5)) == (2, 5, 4, 3)


def test_call_samples_with_the_given_shape() -> None:
    d = dist.Bernoulli(torch.full((2,), 0.5))
    assert d((3, 4)).shape == (3, 4, 2)
    assert d().shape == (2,)


def test_expand_by_adds_leading_batch_dims() -> None:
    d = dist.Normal(torch.zeros(3), 1.0).expand_by([4, 2])
    assert type(d) is dist.Normal and d.batch_shape == (4, 2, 3)
    assert dist.Normal(0.0, 1.0).expand_by(torch.Size()).batch_shape == ()


def test_to_event_defaults_to_all_batch_dims() -> None:
    base = dist.Normal(torch.zeros(2, 3, 4), 1.0)
    d = base.to_event()
    assert isinstance(d, Independent)
    assert d.batch_shape == () and d.event_shape == (2, 3, 4)
    assert d.base_dist is base


def test_to_event_zero_returns_self() -> None:
    base = dist.Normal(torch.zeros(2), 1.0)
    assert base.to_event(0) is base
    assert dist.Normal(0.0, 1.0).to_event() is not None


def test_to_event_merges_nested_independents_like_pyro() -> None:
    base = dist.Normal(torch.zeros(2, 3, 4), 1.0)
    d = base.to_event(1).to_event(2)
    assert isinstance(d, Independent)
    assert d.base_dist is base and d.reinterpreted_batch_ndims == 3
    theirs = pyro_dist.Normal(torch.zeros(2, 3, 4), 1.0).to_event(1).to_event(2)
    assert theirs.reinterpreted_batch_ndims == 3 and isinstance(theirs.base_dist, pyro_dist.Normal)


def test_to_event_negative_removes_event_dims() -> None:
    base = dist.Normal(torch.zeros(2, 3), 1.0)
    d = base.to_event(2)
    partial = d.to_event(-1)
    assert isinstance(partial, Independent) and partial.base_dist is base
    assert partial.batch_shape == (2,) and partial.event_shape == (3,)
    assert d.to_event(-2) is base


def test_to_event_cannot_remove_dims_it_did_not_add() -> None:
    with pytest.raises(ValueError, match="Cannot remove event dimensions from"):
        dist.Normal(torch.zeros(2), 1.0).to_event(-1)
    with pytest.raises(ValueError, match="Cannot remove event dimensions from"):
        dist.Normal(torch.zeros(2), 1.0).to_event(1).to_event(-2)


def test_to_event_rejects_too_many_dims() -> None:
    with pytest.raises(ValueError, match="reinterpreted_batch_ndims"):
        dist.Normal(torch.zeros(2), 1.0).to_event(2)


def test_torch_distribution_expand_falls_back_to_expanded_distribution() -> None:
    d = _Constant(torch.tensor([1.0, 2.0]))
    expanded = d.expand([3, 2])
    assert isinstance(expanded, ExpandedDistribution)
    assert expanded.base_dist is d
    assert torch.equal(expanded.sample(), torch.tensor([[1.0, 2.0]] * 3))
    assert isinstance(d.expand_by([4]), ExpandedDistribution)
    assert d.expand_by([4]).batch_shape == (4, 2)


# --- MaskedDistribution ------------------------------------------------------------------------


def test_mask_false_gives_zero_log_prob_without_computing_it() -> None:
    d = dist.Normal(torch.zeros(3), 1.0, validate_args=True).mask(False)
    value = torch.full((5, 3), float("nan"))  # invalid: the base would raise
    lp = d.log_prob(value)
    assert lp.shape == (5, 3) and torch.equal(lp, torch.zeros(5, 3))
    theirs = pyro_dist.Normal(torch.zeros(3), 1.0).mask(False).log_prob(torch.zeros(5, 3))
    assert theirs.shape == lp.shape


def test_mask_true_is_the_base_log_prob() -> None:
    base = dist.Normal(torch.zeros(3), 1.0)
    x = torch.tensor([0.0, 1.0, 2.0])
    assert torch.equal(base.mask(True).log_prob(x), base.log_prob(x))


def test_tensor_mask_broadcasts_with_batch_shape() -> None:
    base = dist.Normal(torch.zeros(2), 1.0)
    d = base.mask(torch.tensor([[True], [False], [True]]))
    assert isinstance(d, MaskedDistribution)
    assert d.batch_shape == (3, 2) and d.base_dist.batch_shape == (3, 2)
    lp = d.log_prob(torch.zeros(3, 2))
    assert torch.allclose(lp[1], torch.zeros(2)) and torch.all(lp[0] < 0)
    theirs = pyro_dist.Normal(torch.zeros(2), 1.0).mask(torch.tensor([[True], [False], [True]]))
    assert torch.equal(lp, theirs.log_prob(torch.zeros(3, 2)))


def test_tensor_mask_stops_nan_log_prob() -> None:
    with validation_enabled(False):
        d = dist.Normal(torch.zeros(2), 1.0).mask(torch.tensor([True, False]))
        lp = d.log_prob(torch.tensor([0.0, float("nan")]))
    assert torch.isfinite(lp).all() and lp[1] == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.int64])
def test_non_bool_tensor_mask_is_rejected_with_its_dtype(dtype: torch.dtype) -> None:
    with pytest.raises(ValueError, match=f"bool tensor.*{dtype}"):
        dist.Normal(torch.zeros(2), 1.0).mask(torch.ones(2, dtype=dtype))


def test_mask_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bool"):
        dist.Normal(0.0, 1.0).mask(1)  # type: ignore[arg-type]  # the point of the test


@pytest.mark.parametrize("mask", [True, False, torch.tensor([True, False, True])])
@pytest.mark.parametrize("reparameterized", [True, False])
def test_masked_score_parts_match_pyro(mask: torch.Tensor | bool, reparameterized: bool) -> None:
    loc = torch.tensor([0.0, 1.0, 2.0])
    ours = dist.Normal(loc, 1.0).has_rsample_(reparameterized).mask(mask)
    theirs = pyro_dist.Normal(loc, 1.0).has_rsample_(reparameterized).mask(mask)
    x = torch.tensor([0.5, -1.0, 3.0])
    parts = ours.score_parts(x)
    for mine, pyros in zip(parts, theirs.score_parts(x)):
        torch.testing.assert_close(torch.as_tensor(mine), torch.as_tensor(pyros))
    if isinstance(mask, torch.Tensor):
        # score_function is not masked: only log_prob and entropy_term are
        unmasked = dist.Normal(loc, 1.0).log_prob(x)
        if not reparameterized:
            assert isinstance(parts.score_function, torch.Tensor)
            assert torch.equal(parts.score_function, unmasked)
        assert parts.log_prob[1] == 0


def test_masked_distribution_delegates_to_base() -> None:
    base = dist.Bernoulli(torch.tensor([0.2, 0.8]))
    d = base.mask(torch.tensor([True, False]))
    assert d.has_rsample is False and d.has_enumerate_support is True
    assert d.support is base.support
    assert torch.equal(d.enumerate_support(), base.enumerate_support())
    assert torch.equal(d.mean, base.mean) and torch.equal(d.variance, base.variance)
    torch.manual_seed(0)
    x = d.sample((4,))
    torch.manual_seed(0)
    assert torch.equal(x, base.sample((4,)))


def test_masked_has_rsample_can_be_overridden_and_survives_expand() -> None:
    d = dist.Normal(torch.zeros(2), 1.0).mask(torch.tensor([True, False]))
    assert _has_rsample(d) is True
    assert d.has_rsample_(False) is d and _has_rsample(d) is False
    expanded = d.expand([3, 2])
    assert isinstance(expanded, MaskedDistribution)
    assert expanded.has_rsample is False
    assert expanded.batch_shape == (3, 2)
    assert torch.equal(expanded.log_prob(torch.zeros(3, 2))[:, 1], torch.zeros(3))


def test_masked_expand_matches_pyro() -> None:
    mask = torch.tensor([True, False])
    ours = dist.Normal(torch.zeros(2), 1.0).mask(mask).expand([3, 2])
    theirs = pyro_dist.Normal(torch.zeros(2), 1.0).mask(mask).expand([3, 2])
    x = torch.randn(3, 2)
    assert torch.equal(ours.log_prob(x), theirs.log_prob(x))
    assert dist.Normal(torch.zeros(2), 1.0).mask(False).expand([3, 2]).log_prob(x).shape == (3, 2)


# --- ExpandedDistribution ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_shape", "target"),
    [((3, 1), (2, 3, 4)), ((1, 1), (5, 2, 3)), ((3,), (2, 3)), ((), (4,)), ((2,), (2,))],
)
@pytest.mark.parametrize("sample_shape", [(), (2,)])
def test_expanded_samples_match_pyro(
    base_shape: tuple[int, ...], target: tuple[int, ...], sample_shape: tuple[int, ...]
) -> None:
    loc = torch.arange(float(torch.Size(base_shape).numel())).reshape(base_shape)
    ours = ExpandedDistribution(dist.Normal(loc, 1.0), target)
    theirs = pyro_dist.torch_distribution.ExpandedDistribution(pyro_dist.Normal(loc, 1.0), target)
    torch.manual_seed(0)
    x = ours.sample(sample_shape)
    torch.manual_seed(0)
    y = theirs.sample(sample_shape)
    assert x.shape == torch.Size(sample_shape) + target
    assert torch.equal(x, y)
    assert torch.equal(ours.log_prob(x), theirs.log_prob(x))


def test_expanded_samples_are_independent_along_new_dims() -> None:
    torch.manual_seed(0)
    x = ExpandedDistribution(dist.Normal(torch.zeros(1), 1.0), [2, 3]).sample()
    assert len(set(x.flatten().tolist())) == 6


def test_expanded_with_event_dims() -> None:
    base = dist.MultivariateNormal(torch.zeros(1, 3), torch.eye(3))
    d = ExpandedDistribution(base, [4, 2])
    assert d.batch_shape == (4, 2) and d.event_shape == (3,)
    x = d.rsample((5,))
    assert x.shape == (5, 4, 2, 3)
    assert d.log_prob(x).shape == (5, 4, 2)
    theirs = pyro_dist.torch_distribution.ExpandedDistribution(
        pyro_dist.MultivariateNormal(torch.zeros(1, 3), torch.eye(3)), [4, 2]
    )
    torch.manual_seed(3)
    x = d.rsample()
    torch.manual_seed(3)
    assert torch.equal(x, theirs.rsample())


def test_expanded_rsample_has_gradients() -> None:
    loc = torch.zeros(3, 1, requires_grad=True)
    x = ExpandedDistribution(dist.Normal(loc, 1.0), [2, 3, 4]).rsample()
    (grad,) = torch.autograd.grad(x.sum(), [loc])
    assert torch.equal(grad, torch.full((3, 1), 8.0))


def test_expanded_log_prob_broadcasts_value_batch_dims() -> None:
    d = ExpandedDistribution(dist.Normal(torch.zeros(3), 1.0), [2, 3])
    assert d.log_prob(torch.zeros(3)).shape == (2, 3)
    assert d.log_prob(torch.zeros(5, 1, 3)).shape == (5, 2, 3)


@pytest.mark.parametrize("expand", [True, False])
def test_expanded_enumerate_support_matches_pyro(expand: bool) -> None:
    base = dist.Bernoulli(torch.tensor([0.2, 0.7]))
    d = ExpandedDistribution(base, [4, 2])
    theirs = pyro_dist.torch_distribution.ExpandedDistribution(
        pyro_dist.Bernoulli(torch.tensor([0.2, 0.7])), [4, 2]
    )
    values = d.enumerate_support(expand=expand)
    assert values.shape == ((2, 4, 2) if expand else (2, 1, 1))
    assert torch.equal(values, theirs.enumerate_support(expand=expand))


@pytest.mark.parametrize("reparameterized", [True, False])
def test_expanded_score_parts_match_pyro(reparameterized: bool) -> None:
    base = dist.Normal(torch.zeros(3), 1.0).has_rsample_(reparameterized)
    d = ExpandedDistribution(base, [2, 3])
    theirs = pyro_dist.torch_distribution.ExpandedDistribution(
        pyro_dist.Normal(torch.zeros(3), 1.0).has_rsample_(reparameterized), [2, 3]
    )
    x = torch.randn(3)
    parts = d.score_parts(x)
    assert parts.log_prob.shape == (2, 3)
    for mine, pyros in zip(parts, theirs.score_parts(x)):
        torch.testing.assert_close(torch.as_tensor(mine), torch.as_tensor(pyros))


def test_expanded_expand_returns_a_new_distribution() -> None:
    d = ExpandedDistribution(dist.Normal(torch.zeros(3), 1.0), [2, 3])
    further = d.expand([4, 2, 3])
    assert further is not d
    assert further.batch_shape == (4, 2, 3) and d.batch_shape == (2, 3)
    assert further.base_dist is d.base_dist


@pytest.mark.parametrize(("base_shape", "target"), [((3,), (4,)), ((2, 3), (3,)), ((3,), (3, 2))])
def test_expanded_rejects_shapes_that_do_not_broadcast(
    base_shape: tuple[int, ...], target: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match="Cannot broadcast distribution of shape"):
        ExpandedDistribution(dist.Normal(torch.zeros(base_shape), 1.0), target)


def test_expanded_cannot_shrink_through_expand() -> None:
    d = ExpandedDistribution(dist.Normal(torch.zeros(1), 1.0), [4])
    with pytest.raises(ValueError, match="Cannot broadcast distribution of shape"):
        d.expand([2])


def test_expanded_mean_variance_and_delegation() -> None:
    base = dist.Normal(torch.tensor([1.0, 2.0]), 3.0)
    d = ExpandedDistribution(base, [4, 2])
    assert torch.equal(d.mean, base.mean.expand(4, 2))
    assert torch.equal(d.variance, torch.full((4, 2), 9.0))
    assert d.has_rsample and not d.has_enumerate_support and d.support is base.support
    assert d.has_rsample_(False).has_rsample is False
    assert d.expand([3, 4, 2]).has_rsample is False


# --- Independent -------------------------------------------------------------------------------


def test_independent_validate_args_is_the_base_setting() -> None:
    base = dist.Normal(torch.zeros(2), 1.0, validate_args=False)
    d = dist.Independent(base, 1)
    assert d._validate_args is False
    d._validate_args = True
    assert base._validate_args is True


def test_independent_has_rsample_can_be_overridden_and_survives_expand() -> None:
    d = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    assert isinstance(d, Independent)
    assert _has_rsample(d) is True
    d.has_rsample_(False)
    assert _has_rsample(d) is False and d.base_dist.has_rsample is True
    expanded = d.expand([3])
    assert type(expanded) is Independent
    assert expanded.batch_shape == (3,) and expanded.event_shape == (2,)
    assert expanded.has_rsample is False


def test_independent_log_prob_sums_event_dims() -> None:
    base = dist.Normal(torch.zeros(2, 3), 1.0)
    x = torch.randn(2, 3)
    assert torch.allclose(dist.Independent(base, 2).log_prob(x), base.log_prob(x).sum())


def test_scoring_a_self_drawn_value_skips_only_that_support_check(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[torch.Tensor] = []
    original = torch.distributions.Distribution._validate_sample

    def counting(self: torch.distributions.Distribution, value: torch.Tensor) -> None:
        checked.append(value)
        original(self, value)

    monkeypatch.setattr(torch.distributions.Distribution, "_validate_sample", counting)
    d = dist.Normal(torch.zeros(3), 1.0)
    drawn = d()
    expected = -0.5 * drawn**2 - 0.5 * torch.log(torch.tensor(2 * torch.pi))
    assert torch.allclose(d.log_prob(drawn), expected)
    assert checked == []
    other = drawn.clone()
    d.log_prob(other)
    assert len(checked) == 1 and checked[0] is other
    with pytest.raises(ValueError, match="support"):
        dist.Beta(1.0, 1.0).log_prob(torch.tensor(2.0))


def test_unbound_torch_distribution_expand_returns_the_generic_expansion() -> None:
    # Pyro's own tests call TorchDistribution.expand(d, shape) to bypass a class's expand.
    for d in (dist.Normal(torch.zeros(1), 1.0), dist.GammaPoisson(torch.ones(1), 1.0)):
        expanded = dist.TorchDistribution.expand(d, (3, 1))  # type: ignore[arg-type]  # the unbound call under test
        assert type(expanded) is dist.ExpandedDistribution
        assert expanded.batch_shape == (3, 1) and expanded.base_dist is d
