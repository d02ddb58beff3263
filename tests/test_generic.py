"""Programs written against ``ember.generic`` (Pyro's ``pyro.generic``) run on Ember and on
Pyro and give the same numbers."""

from __future__ import annotations

import pytest

from ember.generic import distributions as dist
from ember.generic import infer, ops, optim, pyro, pyro_backend


def _fit(steps: int = 5) -> list[float]:
    def model(data: object) -> None:
        loc = pyro.sample("loc", dist.Normal(0.0, 10.0))
        with pyro.plate("data", 4, dim=-1):
            pyro.sample("obs", dist.Normal(loc, 1.0), obs=data)

    def guide(data: object) -> None:
        m = pyro.param("m", ops.tensor(0.0))
        s = pyro.param("s", ops.tensor(1.0), constraint=dist.constraints.positive)
        pyro.sample("loc", dist.Normal(m, s))

    data = ops.tensor([0.5, 1.5, 1.0, 2.0])
    pyro.get_param_store().clear()
    ops.manual_seed(0)
    svi = infer.SVI(model, guide, optim.Adam({"lr": 0.1}), infer.Trace_ELBO())
    return [svi.step(data) for _ in range(steps)]


def test_a_generic_program_runs_on_ember_and_matches_pyro() -> None:
    import ember

    with pyro_backend("ember"):
        assert pyro.sample is ember.sample
        ours = _fit()
    with pyro_backend("pyro"):
        theirs = _fit()
    assert ours == pytest.approx(theirs, rel=1e-12)


def test_the_minipyro_backend_is_embers_teaching_implementation() -> None:
    from ember.contrib import minipyro

    with pyro_backend("ember.minipyro"):
        assert pyro.sample is minipyro.sample and infer.SVI is minipyro.SVI
        losses = _fit(3)
    assert len(losses) == 3 and all(isinstance(loss, float) for loss in losses)
