from __future__ import annotations

import random
import warnings

import pytest
import torch

from ember._util import get_rng_state, set_rng_seed, set_rng_state, warn_if_inf, warn_if_nan


def test_set_rng_seed_seeds_torch_random_and_numpy() -> None:
    np = pytest.importorskip("numpy")
    set_rng_seed(7)
    draws = (torch.rand(()), random.random(), np.random.rand())
    set_rng_seed(7)
    assert (torch.rand(()), random.random(), np.random.rand()) == draws


def test_rng_state_roundtrip_covers_all_generators() -> None:
    np = pytest.importorskip("numpy")
    state = get_rng_state()
    draws = (torch.rand(()), random.random(), np.random.rand())
    set_rng_state(state)
    assert (torch.rand(()), random.random(), np.random.rand()) == draws


def test_warn_if_nan_and_inf() -> None:
    with pytest.warns(UserWarning, match="Encountered NaN: x"):
        warn_if_nan(torch.tensor([0.0, float("nan")]), "x")
    with pytest.warns(UserWarning, match=r"Encountered \+inf: y"):
        warn_if_inf(torch.tensor(float("inf")), "y")
    with pytest.warns(UserWarning, match="Encountered -inf."):
        warn_if_inf(float("-inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_inf(torch.tensor(float("-inf")), "z", allow_neginf=True)
        warn_if_nan(torch.tensor(1.0))


def test_warn_if_nan_watches_gradients() -> None:
    x = torch.tensor(0.0, requires_grad=True)
    y = x * 1.0
    warn_if_nan(y, "y")
    with pytest.warns(UserWarning, match="Encountered NaN: backward y"):
        (y * float("nan")).backward()  # type: ignore[no-untyped-call]  # torch leaves backward unannotated


# ---------------------------------------------------------------------------------------------
# The rest of pyro.util: timing, optional contexts, experimental warnings, torch_float


def test_the_facade_exposes_pyros_helpers_from_their_layers() -> None:
    import timeit

    import ember._util
    import ember.poutine.util
    import ember.util

    assert ember.util.timeit is timeit
    for name in ("ExperimentalWarning", "ignore_experimental_warning", "optional", "timed", "torch_float"):
        assert getattr(ember.util, name) is getattr(ember._util, name)
    assert ember.util.save_visualization is ember.poutine.util.save_visualization


def test_timed_measures_the_block_and_lets_errors_through() -> None:
    from ember.util import timed

    with timed() as t:
        sum(range(1000))
    assert t.end >= t.start and t.elapsed == t.end - t.start
    with pytest.raises(KeyError):
        with timed():
            raise KeyError("not swallowed")


def test_optional_enters_its_context_only_under_the_condition() -> None:
    from ember.util import optional

    with optional(torch.no_grad(), True):
        assert not torch.is_grad_enabled()
    with optional(torch.no_grad(), False) as entered:
        assert torch.is_grad_enabled() and entered is None


def test_experimental_warnings_are_user_warnings_and_can_be_ignored() -> None:
    from ember.util import ExperimentalWarning, ignore_experimental_warning

    assert issubclass(ExperimentalWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ignore_experimental_warning():
            warnings.warn("new", ExperimentalWarning)
        with pytest.raises(UserWarning, match="other"):
            with ignore_experimental_warning():
                warnings.warn("other", UserWarning)


def test_torch_float_converts_tensors_and_numbers() -> None:
    from ember.util import torch_float

    out = torch_float(torch.tensor([1, 2]))
    assert out.dtype == torch.float32 and torch.equal(out, torch.tensor([1.0, 2.0]))
    assert torch_float(3) == 3.0 and isinstance(torch_float(3), float)


def test_save_visualization_warns_it_is_deprecated_and_needs_graphviz() -> None:
    import importlib.util

    import ember
    import ember.distributions as dist
    from ember.poutine import trace
    from ember.util import save_visualization

    if importlib.util.find_spec("graphviz") is not None:
        pytest.skip("graphviz is installed")
    tr = trace(lambda: ember.sample("z", dist.Normal(0.0, 1.0)), graph_type="dense").get_trace()
    with pytest.warns(UserWarning, match="`save_visualization` function is deprecated"):
        with pytest.raises(ModuleNotFoundError, match="graphviz"):
            save_visualization(tr, "unused")
