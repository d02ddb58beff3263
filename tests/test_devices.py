"""Every tensor Ember creates lives on the model's device: trace, the plate family,
autoguides, Predictive, SVI.

On CPU-only machines the checks run on the ``meta`` device (shapes and devices without
data; validation off, as it reads values), which catches any tensor silently created on the
CPU. The CUDA cases run where a GPU is present and are skipped elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import ember
import ember.distributions as dist
from ember.infer import SVI, Predictive, Trace_ELBO
from ember.infer.autoguide import AutoDelta, AutoNormal
from ember.optim import Adam

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["meta", pytest.param("cuda", marks=requires_cuda)]


@pytest.fixture(autouse=True)
def _no_validation_on_meta(request: pytest.FixtureRequest) -> Iterator[None]:
    device = request.node.callspec.params.get("device") if hasattr(request.node, "callspec") else None
    with ember.validation_enabled(device != "meta"):
        yield


def _data(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, generator=gen)
    return x.to(device), (1.0 - x + 0.1 * torch.randn(20, generator=gen)).to(device)


def _model(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    a = ember.sample("a", dist.Normal(x.new_zeros(()), 1.0))
    s = ember.sample("s", dist.HalfNormal(x.new_ones(())))
    with ember.plate("data", len(x), subsample_size=5, device=x.device) as idx:
        with ember.plate("group", 3, dim=-2, device=x.device):
            ember.sample("z", dist.Normal(a, 1.0))
        ember.sample("y", dist.Normal(a * x[idx], s), obs=None if y is None else y[idx])


def _tensors_of(trace: ember.poutine.Trace) -> Iterator[tuple[str, torch.Tensor]]:
    for name, site in trace.nodes.items():
        if site["type"] in ("sample", "param"):
            yield name, site["value"]
            for key in ("log_prob", "unscaled_log_prob"):
                if isinstance(site.get(key), torch.Tensor):
                    yield f"{name}.{key}", site[key]


@pytest.mark.parametrize("device", DEVICES)
def test_trace_and_plates_stay_on_the_model_device(device: str) -> None:
    x, y = _data(device)
    with ember.plate("outer", 2, dim=-3, device=device) as outer:
        assert outer.device.type == device
    trace = ember.poutine.trace(_model).get_trace(x, y)
    trace.compute_log_prob()
    found = dict(_tensors_of(trace))
    assert {"data", "group", "a", "z", "y", "y.log_prob"} <= set(found)
    assert {name: t.device.type for name, t in found.items()} == {name: device for name in found}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("guide_class", [AutoNormal, AutoDelta])
def test_autoguides_and_predictive_stay_on_the_model_device(device: str, guide_class: type) -> None:
    ember.clear_param_store()
    x, y = _data(device)
    guide = guide_class(_model)
    trace = ember.poutine.trace(guide).get_trace(x, y)
    found = dict(_tensors_of(trace))
    # The guide's plates (rebuilt from the model's) draw their indices on the model's device.
    assert found["data"].device.type == device and found["group"].device.type == device
    assert {t.device.type for t in found.values()} == {device}
    samples = Predictive(_model, guide=guide, num_samples=4)(x)
    assert {name: v.device.type for name, v in samples.items()} == {name: device for name in samples}


@requires_cuda
@pytest.mark.parametrize("guide_class", [AutoNormal, AutoDelta])
def test_svi_on_cuda_keeps_params_and_optimizer_state_on_the_gpu(guide_class: type) -> None:
    ember.clear_param_store()
    x, y = _data("cuda")
    guide = guide_class(_model)
    optim = Adam({"lr": 0.05})
    svi = SVI(_model, guide, optim, Trace_ELBO())
    losses = [svi.step(x, y) for _ in range(20)]
    assert all(isinstance(loss, float) for loss in losses)
    assert {v.device.type for _, v in ember.get_param_store().items()} == {"cuda"}
    for state in optim.get_state().values():
        assert {t.device.type for t in state["state"][0].values() if isinstance(t, torch.Tensor) and t.dim()} <= {"cuda"}
