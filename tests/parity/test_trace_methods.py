"""Trace methods beyond ``log_prob_sum`` (score parts, packing, NaN warnings) agree with pyro-ppl."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from tests.parity._backends import Backend, assert_same_value, run_both
from tests.parity.test_models import CASES, DATA_10, trace_of


def mixed_model(pyro: Any, dist: Any, poutine: Any) -> None:
    p = pyro.sample("p", dist.Beta(2.0, 2.0))
    with pyro.plate("N", 4, dim=-2):
        c = pyro.sample("c", dist.Bernoulli(p))
        with pyro.plate("M", 3):
            pyro.sample("x", dist.Normal(c, 1.0), obs=torch.zeros(4, 3))
    with poutine.scale(scale=0.5), pyro.plate("K", 3):
        with poutine.mask(mask=torch.tensor([True, False, True])):
            pyro.sample("k", dist.Poisson(3.0))


def _parts(site: Any) -> tuple[Any, ...]:
    parts = site["score_parts"]
    return (parts.log_prob, parts.score_function, parts.entropy_term)


def test_compute_score_parts_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        tr = trace_of(mixed_model)(b)
        tr.compute_score_parts()
        return tr

    ours, theirs = run_both(program)
    for name, site in theirs.nodes.items():
        if site["type"] != "sample":
            continue
        assert_same_value(_parts(ours.nodes[name]), _parts(site), f"{name}.score_parts")
        assert_same_value(ours.nodes[name]["unscaled_log_prob"], site["unscaled_log_prob"], name)
        assert_same_value(ours.nodes[name]["log_prob_sum"], site["log_prob_sum"], name)
    assert ours.reparameterized_nodes == theirs.reparameterized_nodes
    # Pyro builds this list from a set difference, so only its contents are defined.
    assert set(ours.nonreparam_stochastic_nodes) == set(theirs.nonreparam_stochastic_nodes)


def test_pack_tensors_matches_pyro() -> None:
    def program(b: Backend) -> Any:
        tr = trace_of(mixed_model)(b)
        tr.compute_log_prob()
        tr.pack_tensors()
        return tr

    ours, theirs = run_both(program)
    assert ours.plate_to_symbol == theirs.plate_to_symbol
    assert ours.symbol_to_dim == theirs.symbol_to_dim
    for name, site in theirs.nodes.items():
        if site["type"] != "sample":
            continue
        ours_packed, theirs_packed = ours.nodes[name]["packed"], site["packed"]
        assert sorted(ours_packed) == sorted(theirs_packed), name
        for key, value in theirs_packed.items():
            assert_same_value(ours_packed[key], value, f"{name}.packed[{key}]")
            if isinstance(value, torch.Tensor):
                ours_dims = getattr(ours_packed[key], "_pyro_dims", None)
                assert ours_dims == getattr(value, "_pyro_dims"), f"{name}.packed[{key}]"
        assert ours.nodes[name]["infer"]["_dim_to_symbol"] == site["infer"]["_dim_to_symbol"]


def test_nan_and_inf_log_prob_warnings_match_pyro() -> None:
    def model(pyro: Any, dist: Any, poutine: Any) -> None:
        pyro.factor("nan", torch.tensor(float("nan")))
        pyro.factor("neginf", torch.tensor(float("-inf")))
        pyro.factor("posinf", torch.tensor(float("inf")))

    def program(b: Backend) -> Any:
        with b.pyro.validation_enabled(False):
            tr = trace_of(model)(b)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            total = tr.log_prob_sum()
        return total, [(w.category.__name__, str(w.message)) for w in caught]

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs)


def test_subsampled_param_leaf_records_indices_like_pyro() -> None:
    def program(b: Backend) -> Any:
        tr = CASES["subsampled_params_event_dim"](b)
        leaves = b.param_leaves()
        return tr.nodes["N"]["value"], {name: getattr(leaf, "_pyro_subsample", None) for name, leaf in leaves.items()}

    ours, theirs = run_both(program)
    assert_same_value(ours, theirs)


def test_scale_of_subsampled_sites_inside_scale_matches_pyro() -> None:
    ours, theirs = run_both(CASES["scales"])
    assert ours.nodes["b"]["scale"] == theirs.nodes["b"]["scale"] == 4.0
    assert_same_value(ours.nodes["N"]["value"], theirs.nodes["N"]["value"])
    assert len(DATA_10) == 10
