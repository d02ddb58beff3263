"""Models written once against a backend's namespaces, and helpers to compare autoguides.

A model factory takes a :class:`~tests.parity._backends.Backend` and returns the model built
from that backend's ``pyro`` and ``dist``, so the same program runs under Ember and pyro-ppl.
"""

from __future__ import annotations

import importlib
import io
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

from tests.parity._backends import Backend, assert_same_value

Model = Callable[..., None]

DATA = torch.tensor([0.3, 1.2, 2.0, 0.7, 1.9, 1.1, -0.4, 0.8, 1.5, 0.2])


def autoguide(backend: Backend) -> Any:
    """The backend's ``infer.autoguide`` package."""
    return importlib.import_module(f"{backend.pyro.__name__}.infer.autoguide")


def normal_normal(backend: Backend) -> Model:
    """``loc ~ N(0, 1)``, ``data_i ~ N(loc, 1)``: the posterior is ``N(sum / (n + 1), 1 / (n + 1))``."""
    pyro, dist = backend.pyro, backend.dist

    def model(data: torch.Tensor) -> None:
        loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(data)):
            pyro.sample("obs", dist.Normal(loc, 1.0), obs=data)

    return model


def mixed(backend: Backend) -> Model:
    """Real, positive and simplex latents, and a local latent in a subsampled plate."""
    pyro, dist = backend.pyro, backend.dist

    def model(data: torch.Tensor) -> None:
        a = pyro.sample("a", dist.Normal(0.0, 1.0))
        s = pyro.sample("s", dist.LogNormal(0.0, 1.0))
        pyro.sample("p", dist.Dirichlet(torch.ones(3)))
        with pyro.plate("N", len(data), subsample_size=4) as idx:
            z = pyro.sample("z", dist.Normal(a, 1.0))
            pyro.sample("obs", dist.Normal(z, s), obs=data[idx])

    return model


def event_shaped(backend: Backend) -> Model:
    """A multivariate latent, a latent with event dims inside a plate, and a nested plate."""
    pyro, dist = backend.pyro, backend.dist

    def model(data: torch.Tensor) -> None:
        x = pyro.sample("x", dist.MultivariateNormal(torch.zeros(2), torch.eye(2)))
        with pyro.plate("rows", 3, dim=-2):
            with pyro.plate("cols", 2, dim=-1):
                w = pyro.sample("w", dist.Gamma(2.0, 1.0))
            v = pyro.sample("v", dist.Normal(0.0, 1.0).expand([4]).to_event(1))
        pyro.sample("obs", dist.Normal(x.sum() + w.sum() + v.sum(), 1.0), obs=data.sum())

    return model


MODELS = {"normal_normal": normal_normal, "mixed": mixed, "event_shaped": event_shaped}


def store_state(backend: Backend) -> dict[str, tuple[tuple[int, ...], torch.Tensor]]:
    """The param store's ``name -> (shape, constrained value)``, in insertion order."""
    return {name: (tuple(value.shape), value.detach().clone()) for name, value in backend.pyro.get_param_store().items()}


def assert_same_store(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Same param names in the same order, same shapes and values."""
    assert list(ours) == list(theirs)
    for name in theirs:
        assert ours[name][0] == theirs[name][0], name
        assert_same_value(ours[name][1], theirs[name][1], name)


def elbo_loss(model: Callable[..., Any], guide: Callable[..., Any], *args: Any) -> torch.Tensor:
    """A single-sample Monte Carlo ``-ELBO`` through Ember's ``trace`` and ``replay``."""
    from ember import poutine

    guide_trace = poutine.trace(guide).get_trace(*args)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args)
    loss = guide_trace.log_prob_sum() - model_trace.log_prob_sum()
    assert isinstance(loss, torch.Tensor)
    return loss


def reload_without_store(guide: Any) -> Any:
    """``guide`` saved with :func:`torch.save` and loaded back with the param store cleared in
    between, so the copy can only use the params it carries itself."""
    import ember

    buffer = io.BytesIO()
    torch.save(guide, buffer)
    buffer.seek(0)
    ember.clear_param_store()
    return torch.load(buffer, weights_only=False)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: optimisation loops over tiny tensors only pay wake-up
    latency for more (several times slower on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit(guide: torch.nn.Module, loss: Callable[[], torch.Tensor], steps: int) -> None:
    """Take ``steps`` Adam steps (learning rate 0.05) on ``guide``'s parameters against ``loss()``.

    Runs on one thread (see :func:`one_thread`).
    """
    optimizer = torch.optim.Adam(guide.parameters(), lr=0.05)
    with one_thread():
        for _ in range(steps):
            optimizer.zero_grad()
            torch.autograd.backward(loss())
            optimizer.step()
