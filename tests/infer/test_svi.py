"""SVI: steps, losses and params agree with pyro-ppl; non-finite steps are not applied."""

from __future__ import annotations

import math
import warnings
from collections import namedtuple
from typing import Any, cast

import pyro
import pyro.infer
import pyro.infer.autoguide
import pyro.optim
import pytest
import torch

import ember
import ember.distributions as dist
import ember.infer.autoguide
import ember.optim
from ember.infer import SVI, Trace_ELBO
from ember.poutine import runtime
from tests.parity._backends import assert_same_value

DATA = torch.randn(8, generator=torch.Generator().manual_seed(3))


def _model_guide(lib: Any, dist_module: Any) -> tuple[Any, Any]:
    constraints = dist_module.constraints

    def model(data: torch.Tensor) -> None:
        loc = lib.sample("loc", dist_module.Normal(0.0, 1.0))
        scale = lib.sample("scale", dist_module.LogNormal(0.0, 1.0))
        with lib.plate("N", len(data), subsample_size=4) as idx:
            lib.sample("obs", dist_module.Normal(loc, scale), obs=data[idx])

    def guide(data: torch.Tensor) -> None:
        m = lib.param("m", torch.tensor(0.1))
        s = lib.param("s", torch.tensor(0.8), constraint=constraints.positive)
        lib.sample("loc", dist_module.Normal(m, s))
        w = lib.param("w", torch.tensor([0.3, 0.7]), constraint=constraints.simplex)
        lib.sample("scale", dist_module.LogNormal(w[0], w[1]))

    return model, guide


def _train(lib: Any, make_optim: Any, steps: int = 6, **svi_kwargs: Any) -> tuple[list[float], dict[str, torch.Tensor]]:
    lib.clear_param_store()
    lib.enable_validation(True)
    torch.manual_seed(0)
    dist_module = ember.distributions if lib is ember else pyro.distributions
    pyro_infer: Any = pyro.infer  # pyro-ppl is not fully annotated
    elbo = Trace_ELBO() if lib is ember else pyro_infer.Trace_ELBO()
    model, guide = _model_guide(lib, dist_module)
    svi = lib.infer.SVI(model, guide, make_optim(lib.optim), elbo, **svi_kwargs)
    losses = [svi.step(DATA) for _ in range(steps)]
    params = {name: value.detach().clone() for name, value in lib.get_param_store().items()}
    return losses, params


@pytest.mark.parametrize(
    "make_optim",
    [
        lambda o: o.Adam({"lr": 0.05}),
        lambda o: o.SGD({"lr": 0.01}),
        lambda o: o.ClippedAdam({"lr": 0.05, "lrd": 0.99}),
        lambda o: o.Adam(lambda name: {"lr": 0.1 if name == "m" else 0.01}, {"clip_norm": 1.0}),
    ],
    ids=["adam", "sgd", "clipped-adam", "per-param-clipped"],
)
def test_losses_and_params_match_pyro(make_optim: Any) -> None:
    our_losses, ours = _train(ember, make_optim)
    their_losses, theirs = _train(pyro, make_optim)
    assert all(isinstance(loss, float) for loss in our_losses)
    assert our_losses == pytest.approx(their_losses, rel=1e-5, abs=1e-5)
    assert sorted(ours) == sorted(theirs) == ["m", "s", "w"]
    for name in theirs:
        assert ours[name].shape == theirs[name].shape
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-5)


def test_step_zeroes_gradients_and_keeps_one_optimizer_per_param() -> None:
    model, guide = _model_guide(ember, dist)
    optim = ember.optim.Adam({"lr": 0.01})
    svi = SVI(model, guide, optim, Trace_ELBO())
    svi.step(DATA)
    svi.step(DATA)
    leaves = dict(ember.get_param_store().named_parameters())
    assert set(optim.optim_objs) == set(leaves.values())
    for leaf in leaves.values():
        assert leaf.grad is not None
        assert not leaf.grad.any(), "gradients are zeroed after the step"
    assert sorted(str(name) for name in optim.get_state()) == ["m", "s", "w"]


def test_rejects_an_optimizer_that_is_not_a_pyro_optim() -> None:
    model, guide = _model_guide(ember, dist)
    adam = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match=r"Optimizer should be an instance of pyro\.optim\.PyroOptim class\."):
        SVI(model, guide, adam, Trace_ELBO())  # type: ignore[arg-type]  # the wrong type is the point


def test_deprecated_arguments_warn() -> None:
    model, guide = _model_guide(ember, dist)
    with pytest.warns(FutureWarning, match="The `num_steps` argument to SVI is deprecated"):
        SVI(model, guide, ember.optim.Adam({}), Trace_ELBO(), num_steps=2)
    with pytest.warns(FutureWarning) as record:
        svi = SVI(model, guide, ember.optim.Adam({"lr": 0.1}), Trace_ELBO(), num_samples=3, num_steps=2)
    assert [str(w.message).split(" argument")[0] for w in record] == ["The `num_steps`", "The `num_samples`"]
    assert "Use `pyro.infer.Predictive` class to draw samples from the posterior." in str(record[1].message)
    with pytest.warns(FutureWarning, match="The `SVI.run` method is deprecated"):
        svi.run(DATA)
    assert len(svi.exec_traces) == 3
    assert [float(w) for w in svi.log_weights] == [1.0, 1.0, 1.0]
    assert "obs" in svi.exec_traces[0].nodes
    assert "loc" in svi().nodes and "obs" not in svi().nodes


def test_callable_loss_gets_a_default_loss_and_grads() -> None:
    target = torch.tensor([1.0, -2.0])

    def loss(model: Any, guide: Any, scale: float) -> torch.Tensor:
        x = ember.param("x", torch.zeros(2))
        return scale * ((x - target) ** 2).sum()

    svi = SVI(lambda scale: None, lambda scale: None, ember.optim.SGD({"lr": 0.1}), loss)
    first = svi.step(2.0)
    assert first == pytest.approx(10.0)
    # d/dx 2 (x - t)^2 = 4 (x - t) at x = 0 is -4 t; SGD moves x by 0.4 t.
    torch.testing.assert_close(ember.param("x").detach(), 0.4 * target)
    assert svi.evaluate_loss(2.0) == pytest.approx(2.0 * (0.6**2 * 5))
    assert ember.param("x").detach().tolist() == pytest.approx((0.4 * target).tolist()), "evaluate_loss takes no step"


def test_custom_loss_and_grads_is_used() -> None:
    calls: list[tuple[Any, ...]] = []

    def loss_and_grads(model: Any, guide: Any, *args: Any) -> float:
        calls.append(args)
        x = ember.param("x", torch.tensor(1.0))
        torch.autograd.backward(x)
        return 7.0

    svi = SVI(None, None, ember.optim.SGD({"lr": 0.5}), lambda *a: 0.0, loss_and_grads=loss_and_grads)  # type: ignore[arg-type]  # SVI does not call model or guide itself
    assert svi.step(1, 2) == 7.0
    assert calls == [(1, 2)]
    assert ember.param("x").item() == pytest.approx(0.5)


def test_tuple_losses_come_back_as_tuples_of_floats() -> None:
    Pair = namedtuple("Pair", ["a", "b"])

    def loss(model: Any, guide: Any) -> Any:
        x = ember.param("x", torch.tensor(1.0))
        return Pair(x * 2, torch.tensor(3.0))

    svi = SVI(None, None, ember.optim.SGD({"lr": 0.5}), loss, loss_and_grads=lambda m, g: loss(m, g))  # type: ignore[arg-type]  # SVI does not call model or guide itself
    # step/evaluate_loss are typed float; a tuple loss is the documented exception.
    assert cast(Any, svi.step()) == Pair(2.0, 3.0)
    assert cast(Any, svi.evaluate_loss()) == Pair(2.0, 3.0)
    assert type(cast(Any, svi.evaluate_loss())) is Pair


def _model(data: torch.Tensor, corrupt: bool = False) -> None:
    loc = ember.sample("loc", dist.Normal(0.0, 1.0))
    with ember.plate("N", len(data)):
        ember.sample("obs", dist.Normal(loc, 1.0), obs=data)
    if corrupt:
        # Each factor is a valid real; together they make the log density NaN.
        ember.factor("up", torch.tensor(math.inf))
        ember.factor("down", torch.tensor(-math.inf))


def _guide(data: torch.Tensor, corrupt: bool = False) -> None:
    m = ember.param("m", torch.tensor(0.0))
    ember.sample("loc", dist.Normal(m, 1.0))


def test_nan_loss_skips_the_step_and_keeps_params() -> None:
    svi = SVI(_model, _guide, ember.optim.Adam({"lr": 0.1}), Trace_ELBO())
    svi.step(DATA)
    good = ember.param("m").item()
    with pytest.warns(UserWarning) as record:
        loss = svi.step(DATA, corrupt=True)
    skipped = [w for w in record if "SVI.step skipped the optimizer step" in str(w.message)]
    assert [str(w.message) for w in skipped] == [
        "Encountered NaN: loss; SVI.step skipped the optimizer step, so the params keep their last values "
        "(SVI(..., skip_nonfinite_steps=False) steps anyway, as Pyro does)"
    ]
    assert skipped[0].filename == __file__, "the warning points at the user's svi.step call"
    assert math.isnan(loss)
    assert ember.param("m").item() == good
    leaf = dict(ember.get_param_store().named_parameters())["m"]
    assert leaf.grad is not None and leaf.grad.item() == 0.0
    svi.step(DATA)
    assert ember.param("m").item() != good, "training goes on after a skipped step"


def test_skip_nonfinite_steps_false_steps_anyway_as_pyro() -> None:
    svi = SVI(_model, _guide, ember.optim.Adam({"lr": 0.1}), Trace_ELBO(), skip_nonfinite_steps=False)
    svi.step(DATA)
    good = ember.param("m").item()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loss = svi.step(DATA, corrupt=True)
    assert math.isnan(loss)
    assert not [w for w in record if "skipped the optimizer step" in str(w.message)]
    assert ember.param("m").item() != good, "Pyro's behaviour: the step with a NaN loss is applied"


def test_nan_gradients_skip_the_step_and_name_the_params() -> None:
    def loss(model: Any, guide: Any) -> torch.Tensor:
        a = ember.param("a", torch.tensor(0.0))
        b = ember.param("b", torch.tensor(1.0))
        return a.sqrt() * 0.0 + b  # finite loss, NaN gradient for a

    svi = SVI(None, None, ember.optim.SGD({"lr": 0.1}), loss)  # type: ignore[arg-type]  # SVI does not call model or guide itself
    with pytest.warns(UserWarning, match=r"Encountered NaN or inf: gradients of params \['a'\]"):
        assert svi.step() == 1.0
    assert ember.param("a").item() == 0.0
    assert ember.param("b").item() == 1.0, "no param is stepped"


def test_without_validation_a_nan_step_is_applied_as_in_pyro() -> None:
    def loss(model: Any, guide: Any) -> torch.Tensor:
        return ember.param("a", torch.tensor(1.0)) * math.nan

    ember.enable_validation(False)
    SVI(None, None, ember.optim.SGD({"lr": 0.1}), loss).step()  # type: ignore[arg-type]  # SVI does not call model or guide itself
    assert math.isnan(ember.param("a").item())


def test_error_in_model_leaves_stack_empty_and_params_unchanged() -> None:
    def model(data: torch.Tensor) -> None:
        loc = ember.sample("loc", dist.Normal(0.0, 1.0))
        ember.sample("obs", dist.Normal(loc, -1.0), obs=data)

    svi = SVI(_model, _guide, ember.optim.Adam({"lr": 0.1}), Trace_ELBO())
    svi.step(DATA)
    before = ember.param("m").item()
    broken = SVI(model, _guide, svi.optim, Trace_ELBO())
    with pytest.raises(ValueError, match="scale"):
        broken.step(DATA)
    assert runtime.get_stack() == ()
    assert ember.param("m").item() == before


def test_sparse_gradients_are_checked() -> None:
    embedding = torch.nn.Embedding(4, 2, sparse=True)

    def loss(model: Any, guide: Any, scale: float) -> torch.Tensor:
        ember.module("emb", embedding)
        rows: torch.Tensor = embedding(torch.tensor([1]))
        return rows.sum() * scale

    svi = SVI(None, None, ember.optim.SparseAdam({"lr": 0.1}), loss)  # type: ignore[arg-type]  # SVI does not call model or guide itself
    before = embedding.weight.detach().clone()
    svi.step(1.0)
    leaf = dict(ember.get_param_store().named_parameters())["emb$$$weight"]
    assert leaf is embedding.weight
    moved = embedding.weight.detach().clone()
    assert not torch.equal(moved[1], before[1])
    torch.testing.assert_close(moved[0], before[0])
    with pytest.warns(UserWarning, match=r"gradients of params \['emb\$\$\$weight'\]"):
        svi.step(math.inf)
    torch.testing.assert_close(embedding.weight.detach(), moved)


def test_gradients_of_mixed_dtypes_are_checked() -> None:
    def loss(model: Any, guide: Any, scale: float) -> torch.Tensor:
        single = ember.param("single", torch.tensor([1.0]))
        double = ember.param("double", torch.tensor([1.0], dtype=torch.float64))
        return (single.double() * scale + double).sum()

    svi = SVI(None, None, ember.optim.SGD({"lr": 0.1}), loss)  # type: ignore[arg-type]  # SVI does not call model or guide itself
    svi.step(1.0)
    assert ember.param("double").item() == pytest.approx(0.9)
    with pytest.warns(UserWarning, match=r"gradients of params \['single'\]"):
        svi.step(math.inf)
    assert ember.param("single").item() == pytest.approx(0.9)


def test_autoguide_training_and_prediction_match_pyro() -> None:
    """An ordinary Pyro program (AutoNormal, Adam, Trace_ELBO, Predictive) runs unchanged."""

    def program(lib: Any, dist_module: Any, autoguide: Any, elbo: Any) -> Any:
        def model(data: torch.Tensor) -> None:
            loc = lib.sample("loc", dist_module.Normal(0.0, 1.0))
            scale = lib.sample("scale", dist_module.LogNormal(0.0, 1.0))
            with lib.plate("N", len(data)):
                lib.sample("obs", dist_module.Normal(loc, scale), obs=data)

        lib.clear_param_store()
        torch.manual_seed(0)
        guide = autoguide.AutoNormal(model)
        svi = lib.infer.SVI(model, guide, lib.optim.Adam({"lr": 0.05}), elbo)
        losses = [svi.step(DATA) for _ in range(5)]
        predictions = lib.infer.Predictive(model, guide=guide, num_samples=4)(DATA)
        params = {name: value.detach().clone() for name, value in lib.get_param_store().items()}
        return losses, predictions, params

    pyro_infer: Any = pyro.infer  # pyro-ppl is not fully annotated
    ours = program(ember, dist, ember.infer.autoguide, Trace_ELBO())
    theirs = program(pyro, pyro.distributions, pyro.infer.autoguide, pyro_infer.Trace_ELBO())
    assert_same_value(ours, theirs, "svi")
    assert sorted(ours[2]) == ["AutoNormal.locs.loc", "AutoNormal.locs.scale", "AutoNormal.scales.loc", "AutoNormal.scales.scale"]
    assert {name: tuple(value.shape) for name, value in ours[1].items()} == {"loc": (4, 1), "scale": (4, 1), "obs": (4, 8)}
