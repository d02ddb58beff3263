"""Tests for the torch distribution wrappers in ember.distributions.torch (and its submodules).

Most tests build the same distribution from ``ember.distributions`` and ``pyro.distributions``
and check that they agree: seeded samples, densities, shapes, score parts, expansion, masking.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.distributions.transforms import ExpTransform

import ember.distributions as dist
from ember.distributions import TorchDistributionMixin

# Pyro is an unannotated test oracle.
pyro_dist: Any = importlib.import_module("pyro.distributions")

# torch 2.13's Wishart.rsample warns about every nonsingular sample (its check lacks a `~`).
pytestmark = pytest.mark.filterwarnings("ignore:Singular sample detected:UserWarning")

_T = torch.tensor
_PROBS = [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]
_LOGITS = [[0.1, -1.0, 2.0], [0.5, 0.5, -0.3]]
_SCALE_TRIL = [[[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.1, -0.2, 1.5]]] * 2

# One constructor per torch distribution class, applied to either module.
CASES: dict[str, Callable[[Any], Any]] = {
    "Bernoulli": lambda m: m.Bernoulli(probs=_T([0.2, 0.7, 0.5])),
    "Beta": lambda m: m.Beta(_T([1.5, 2.0]), _T([2.0, 3.0])),
    "Binomial": lambda m: m.Binomial(5, _T([0.3, 0.6])),
    "Categorical": lambda m: m.Categorical(logits=_T(_LOGITS)),
    "Cauchy": lambda m: m.Cauchy(_T([0.0, 1.0]), _T([1.0, 2.0])),
    "Chi2": lambda m: m.Chi2(_T([2.0, 3.0])),
    "ContinuousBernoulli": lambda m: m.ContinuousBernoulli(probs=_T([0.2, 0.8])),
    "Dirichlet": lambda m: m.Dirichlet(_T([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])),
    "Exponential": lambda m: m.Exponential(_T([1.0, 2.0])),
    "FisherSnedecor": lambda m: m.FisherSnedecor(_T([3.0, 4.0]), _T([5.0, 6.0])),
    "Gamma": lambda m: m.Gamma(_T([2.0, 3.0]), _T([1.0, 0.5])),
    "GeneralizedPareto": lambda m: m.GeneralizedPareto(_T([0.0, 1.0]), _T([1.0, 2.0]), _T([0.1, 0.2])),
    "Geometric": lambda m: m.Geometric(_T([0.3, 0.6])),
    "Gumbel": lambda m: m.Gumbel(_T([0.0, 1.0]), _T([1.0, 2.0])),
    "HalfCauchy": lambda m: m.HalfCauchy(_T([1.0, 2.0])),
    "HalfNormal": lambda m: m.HalfNormal(_T([1.0, 2.0])),
    "Independent": lambda m: m.Independent(m.Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1),
    "InverseGamma": lambda m: m.InverseGamma(_T([2.0, 3.0]), _T([1.0, 2.0])),
    "Kumaraswamy": lambda m: m.Kumaraswamy(_T([2.0, 3.0]), _T([2.0, 1.0])),
    "LKJCholesky": lambda m: m.LKJCholesky(3, _T([0.5, 2.0])),
    "Laplace": lambda m: m.Laplace(_T([0.0, 1.0]), _T([1.0, 2.0])),
    "LogNormal": lambda m: m.LogNormal(_T([0.0, 1.0]), _T([1.0, 0.5])),
    "LogisticNormal": lambda m: m.LogisticNormal(torch.zeros(2, 2), torch.ones(2, 2)),
    "LowRankMultivariateNormal": lambda m: m.LowRankMultivariateNormal(
        torch.zeros(2, 3), _T([[[1.0], [0.5], [-1.0]]] * 2), torch.ones(2, 3)
    ),
    "MixtureSameFamily": lambda m: m.MixtureSameFamily(
        m.Categorical(logits=_T(_LOGITS)), m.Normal(_T(_LOGITS), torch.ones(2, 3))
    ),
    "Multinomial": lambda m: m.Multinomial(4, probs=_T(_PROBS)),
    "MultivariateNormal": lambda m: m.MultivariateNormal(torch.zeros(2, 3), scale_tril=_T(_SCALE_TRIL)),
    "NegativeBinomial": lambda m: m.NegativeBinomial(_T([3.0, 4.0]), _T([0.3, 0.6])),
    "Normal": lambda m: m.Normal(_T([0.0, 1.0]), _T([1.0, 2.0])),
    "OneHotCategorical": lambda m: m.OneHotCategorical(probs=_T(_PROBS)),
    "OneHotCategoricalStraightThrough": lambda m: m.OneHotCategoricalStraightThrough(probs=_T(_PROBS)),
    "Pareto": lambda m: m.Pareto(_T([1.0, 2.0]), _T([2.0, 3.0])),
    "Poisson": lambda m: m.Poisson(_T([1.0, 4.0])),
    "RelaxedBernoulli": lambda m: m.RelaxedBernoulli(_T(0.5), probs=_T([0.3, 0.6])),
    "RelaxedOneHotCategorical": lambda m: m.RelaxedOneHotCategorical(_T(0.5), probs=_T(_PROBS)),
    "StudentT": lambda m: m.StudentT(_T([3.0, 4.0]), _T([0.0, 1.0]), _T([1.0, 2.0])),
    "TransformedDistribution": lambda m: m.TransformedDistribution(
        m.Normal(torch.zeros(2), torch.ones(2)), [ExpTransform()]
    ),
    "Uniform": lambda m: m.Uniform(_T([0.0, 1.0]), _T([1.0, 3.0])),
    "VonMises": lambda m: m.VonMises(_T([0.0, 1.0]), _T([1.0, 2.0])),
    "Weibull": lambda m: m.Weibull(_T([1.0, 2.0]), _T([1.5, 2.0])),
    "Wishart": lambda m: m.Wishart(_T([6.0, 7.0]), scale_tril=torch.eye(2).expand(2, 2, 2)),
}
NAMES = sorted(CASES)
ENUMERABLE = [n for n in NAMES if getattr(torch.distributions, n).has_enumerate_support is True]


def _torch_distribution_names() -> list[str]:
    names = []
    for name in torch.distributions.__all__:
        obj = getattr(torch.distributions, name)
        if isinstance(obj, type) and issubclass(obj, torch.distributions.Distribution):
            names.append(name)
    return names


def _both(name: str) -> tuple[Any, Any]:
    return CASES[name](dist), CASES[name](pyro_dist)


def _assert_close(actual: Any, expected: Any) -> None:
    torch.testing.assert_close(torch.as_tensor(actual), torch.as_tensor(expected), equal_nan=True)


def test_every_torch_distribution_has_an_ember_subclass() -> None:
    names = _torch_distribution_names()
    assert "Normal" in names and len(names) > 40
    for name in names:
        torch_cls = getattr(torch.distributions, name)
        if torch_cls is torch.distributions.Distribution:
            assert issubclass(dist.TorchDistribution, torch_cls)
            continue
        ember_cls = getattr(dist, name, None)
        assert isinstance(ember_cls, type), f"ember.distributions lacks {name}"
        assert torch_cls in ember_cls.__bases__, f"{name} must subclass torch's {name} directly"
        assert issubclass(ember_cls, TorchDistributionMixin)
        assert ember_cls.__module__.startswith("ember.distributions.")
        assert name in dist.__all__


def test_every_torch_distribution_has_a_parity_case() -> None:
    names = set(_torch_distribution_names()) - {"Distribution", "ExponentialFamily"}
    assert names == set(CASES)


@pytest.mark.parametrize("name", [*NAMES, "ExponentialFamily"])
def test_classes_are_written_out_explicitly(name: str) -> None:
    cls = getattr(dist, name)
    assert f"class {name}(" in inspect.getsource(cls)
    assert cls.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_instances_pass_isinstance_checks(name: str) -> None:
    d = CASES[name](dist)
    assert type(d) is getattr(dist, name)
    assert isinstance(d, getattr(torch.distributions, name))
    assert isinstance(d, TorchDistributionMixin)
    assert isinstance(d, dist.Distribution)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_match_pyro(name: str) -> None:
    ours, theirs = _both(name)
    assert ours.batch_shape == theirs.batch_shape
    assert ours.event_shape == theirs.event_shape
    assert ours.event_dim == theirs.event_dim
    assert ours.shape((4, 1)) == theirs.shape((4, 1))
    assert ours.has_rsample == theirs.has_rsample
    assert ours.has_enumerate_support == theirs.has_enumerate_support


@pytest.mark.parametrize("name", NAMES)
def test_seeded_samples_and_log_prob_match_pyro(name: str) -> None:
    ours, theirs = _both(name)
    torch.manual_seed(0)
    x = ours((3,))
    torch.manual_seed(0)
    y = theirs((3,))
    assert x.shape == ours.shape((3,))
    _assert_close(x, y)
    _assert_close(ours.log_prob(x), theirs.log_prob(x))
    assert ours.log_prob(x).shape == (3, *ours.batch_shape)


@pytest.mark.parametrize("name", NAMES)
def test_call_uses_rsample_only_when_reparameterized(name: str) -> None:
    d = CASES[name](dist)
    torch.manual_seed(1)
    x = d()
    torch.manual_seed(1)
    expected = d.rsample() if d.has_rsample else d.sample()
    _assert_close(x, expected)


@pytest.mark.parametrize("name", NAMES)
def test_score_parts_match_pyro(name: str) -> None:
    ours, theirs = _both(name)
    torch.manual_seed(0)
    x = ours.sample((2,))
    for mine, pyros in zip(ours.score_parts(x), theirs.score_parts(x)):
        _assert_close(mine, pyros)
    parts = ours.score_parts(x)
    if ours.has_rsample:
        assert parts.score_function == 0 and parts.entropy_term is parts.log_prob
    else:
        assert parts.entropy_term == 0 and parts.score_function is parts.log_prob


@pytest.mark.parametrize("name", NAMES)
def test_expand_matches_pyro_and_keeps_the_class(name: str) -> None:
    ours, theirs = _both(name)
    shape = torch.Size((4, *ours.batch_shape))
    ours_e, theirs_e = ours.expand(shape), theirs.expand(shape)
    assert type(ours_e) is type(ours)
    assert ours_e.batch_shape == theirs_e.batch_shape == shape
    assert ours.batch_shape != shape  # expand returns a new distribution
    torch.manual_seed(0)
    x = ours_e.sample()
    torch.manual_seed(0)
    _assert_close(x, theirs_e.sample())
    _assert_close(ours_e.log_prob(x), theirs_e.log_prob(x))


@pytest.mark.parametrize("name", NAMES)
def test_expand_by_and_to_event_match_pyro(name: str) -> None:
    ours, theirs = _both(name)
    ours_e = ours.expand_by([5]).to_event()
    theirs_e = theirs.expand_by([5]).to_event()
    assert ours_e.batch_shape == theirs_e.batch_shape == ()
    assert ours_e.event_shape == theirs_e.event_shape
    assert isinstance(ours_e, dist.Independent)
    torch.manual_seed(0)
    x = ours_e.sample()
    _assert_close(ours_e.log_prob(x), theirs_e.log_prob(x))


@pytest.mark.parametrize("name", NAMES)
def test_mask_matches_pyro(name: str) -> None:
    ours, theirs = _both(name)
    mask = torch.arange(ours.batch_shape.numel()).reshape(ours.batch_shape) % 2 == 0
    torch.manual_seed(0)
    x = ours.sample()
    for m in [mask, False, True]:
        _assert_close(ours.mask(m).log_prob(x), theirs.mask(m).log_prob(x))
        for mine, pyros in zip(ours.mask(m).score_parts(x), theirs.mask(m).score_parts(x)):
            _assert_close(mine, pyros)


@pytest.mark.parametrize("name", ENUMERABLE)
@pytest.mark.parametrize("expand", [True, False])
def test_enumerate_support_matches_pyro(name: str, expand: bool) -> None:
    ours, theirs = _both(name)
    values = ours.enumerate_support(expand=expand)
    torch.testing.assert_close(values, theirs.enumerate_support(expand=expand))
    batch = ours.batch_shape if expand else (1,) * len(ours.batch_shape)
    assert values.shape == (values.size(0), *batch, *ours.event_shape)
    _assert_close(ours.log_prob(values), theirs.log_prob(values))
    expanded = ours.expand_by([2])
    torch.testing.assert_close(
        expanded.enumerate_support(expand=expand),
        theirs.expand_by([2]).enumerate_support(expand=expand),
    )


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_deepcopy_round_trip(name: str) -> None:
    d = CASES[name](dist).expand_by([2]).mask(True)
    for copied in [pickle.loads(pickle.dumps(d)), copy.deepcopy(d)]:
        assert type(copied) is type(d)
        assert copied.batch_shape == d.batch_shape and copied.event_shape == d.event_shape
        x = d.sample()
        _assert_close(copied.log_prob(x), d.log_prob(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda loc: dist.Normal(loc, 1.0),
        lambda loc: dist.LogNormal(loc, 1.0),
        lambda loc: dist.Gamma(loc.exp(), 1.0),
        lambda loc: dist.Beta(loc.exp(), 1.0),
        lambda loc: dist.Uniform(loc, loc + 1.0),
        lambda loc: dist.Gumbel(loc, 1.0),
        lambda loc: dist.StudentT(3.0, loc, 1.0),
        lambda loc: dist.Dirichlet(loc.exp()),
        lambda loc: dist.MultivariateNormal(loc, torch.eye(3)),
        lambda loc: dist.RelaxedBernoulli(torch.tensor(0.5), logits=loc),
        lambda loc: dist.Normal(loc, 1.0).expand_by([2]).to_event(1),
        lambda loc: dist.Normal(loc, 1.0).mask(torch.tensor([True, False, True])),
    ],
)
def test_gradients_flow_through_rsample(make: Callable[[torch.Tensor], Any]) -> None:
    loc = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    d = make(loc)
    assert d.has_rsample
    torch.manual_seed(0)
    x = d()
    assert x.requires_grad
    weights = torch.arange(1.0, 1.0 + x.numel()).reshape(x.shape)
    (grad,) = torch.autograd.grad((x * weights).sum(), [loc])
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_sample_of_reparameterized_distribution_has_no_gradient() -> None:
    loc = torch.zeros(2, requires_grad=True)
    d = dist.Normal(loc, 1.0)
    assert not d.sample().requires_grad
    assert not d.has_rsample_(False)().requires_grad


def test_log_normal_base_dist_is_an_ember_normal_and_survives_expand() -> None:
    d = dist.LogNormal(torch.zeros(2), torch.ones(2))
    assert type(d.base_dist) is dist.Normal
    expanded = d.expand([3, 2])
    assert type(expanded) is dist.LogNormal and type(expanded.base_dist) is dist.Normal
    assert expanded.base_dist.batch_shape == (3, 2)
    x = torch.tensor([0.5, 2.0])
    expected = dist.Normal(0.0, 1.0).log_prob(x.log()) - x.log()
    _assert_close(d.log_prob(x), expected)
    assert torch.equal(d.loc, torch.zeros(2)) and torch.equal(d.scale, torch.ones(2))


def test_uniform_support_keeps_unbroadcast_bounds_like_pyro() -> None:
    high = torch.tensor([1.0, 2.0])
    d = dist.Uniform(0.0, high).expand([3, 2])
    assert type(d) is dist.Uniform and d.low.shape == (3, 2)
    support = d.support
    assert isinstance(support, torch.distributions.constraints.interval)
    assert support.lower_bound == 0.0 and support.upper_bound is high
    theirs = pyro_dist.Uniform(0.0, high).expand([3, 2]).support
    assert theirs.lower_bound == support.lower_bound
    assert torch.equal(theirs.upper_bound, support.upper_bound)
    # A transform built from the support applies to any batch shape.
    transform = dist.biject_to(support)
    assert transform(torch.zeros(5, 2)).shape == (5, 2)


def test_uniform_support_is_statically_continuous() -> None:
    assert dist.Uniform.support.is_discrete is False
    assert dist.Uniform.support.event_dim == 0


@pytest.mark.parametrize("name", ["TransformedDistribution", "Gumbel", "Pareto", "Weibull"])
def test_has_rsample_can_be_overridden_on_transformed_distributions(name: str) -> None:
    assert CASES[name](dist).has_rsample is True
    d = CASES[name](dist)
    assert d.has_rsample_(False) is d
    assert d.has_rsample is False
    assert CASES[name](dist).has_rsample is True  # the class is unchanged
    x = d()
    assert not x.requires_grad


def test_typed_torch_methods_adds_only_the_self_drawn_shortcut_at_runtime() -> None:
    from ember.distributions._common import TypedTorchMethods

    members = {k for k in vars(TypedTorchMethods) if not k.startswith("__")}
    assert members == {"_validate_sample"}
    for name in ["log_prob", "expand", "sample", "rsample"]:
        assert getattr(dist.Normal, name) is getattr(torch.distributions.Normal, name)


def test_subclass_with_custom_init_falls_back_to_expanded_distribution() -> None:
    class Shifted(dist.Normal):
        def __init__(self, shift: float) -> None:
            super().__init__(torch.full((2,), shift), torch.ones(2))

    d = Shifted(1.0)
    with pytest.raises(NotImplementedError, match="must also define a custom .expand"):
        d.expand([3, 2])
    expanded = d.expand_by([3])
    assert isinstance(expanded, dist.ExpandedDistribution)
    assert expanded.batch_shape == (3, 2)
    assert expanded.sample().shape == (3, 2)


def test_subclass_without_custom_init_expands_to_its_own_type() -> None:
    class MyNormal(dist.Normal):
        pass

    d = MyNormal(torch.zeros(2), 1.0).expand([3, 2])
    assert type(d) is MyNormal and d.batch_shape == (3, 2)


def test_default_infer_shapes_matches_pyro() -> None:
    shapes = {"loc": (3, 1), "scale": (4,)}
    assert dist.Normal.infer_shapes(**shapes) == ((3, 4), ())
    assert dist.Normal.infer_shapes(**shapes) == pyro_dist.Normal.infer_shapes(**shapes)
    assert dist.Gamma.infer_shapes(concentration=(2,), rate=()) == ((2,), ())
    for cls in [dist.Categorical, dist.Bernoulli]:
        assert cls.infer_shapes(logits=(5, 3)) == pyro_dist.__dict__[cls.__name__].infer_shapes(
            logits=(5, 3)
        )


@pytest.mark.parametrize("cls", [dist.Independent, dist.TransformedDistribution, dist.Delta])
def test_infer_shapes_raises_when_shapes_are_not_determined_by_tensors(cls: Any) -> None:
    with pytest.raises(NotImplementedError):
        cls.infer_shapes(v=(2,))
