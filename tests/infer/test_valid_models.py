"""Every ELBO on a zoo of valid model/guide pairs agrees with pyro-ppl; invalid pairs fail like Pyro.

Each pair is written once against a backend's ``(pyro, dist, poutine)`` namespaces and run by
Ember and by pyro-ppl from the same seed with fresh param stores. Both libraries draw from
torch's global RNG in the same order, so ``loss``, ``differentiable_loss`` and the gradients
left by ``loss_and_grads`` must agree to float rounding. The Jit ELBOs are compared with
Pyro's eager classes: Ember compiles without consuming random numbers (see test_jit.py),
so its draws follow the eager ones, while Pyro's Jit ELBOs draw extra samples while compiling.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch.jit._trace import TracerWarning

import ember
import ember.infer
from tests.parity._backends import (
    EMBER,
    PYRO,
    Backend,
    assert_same_error,
    assert_same_value,
    run_both,
)

DATA = torch.tensor([0.3, -1.2, 0.8, 2.1, -0.4, 1.0])
MASK = torch.tensor([True, False, True, True, False, True])
GRID = torch.tensor([[0.5, -0.1, 1.5], [0.2, 0.9, -0.7]])
CATS = torch.tensor([0, 2, 1, 1, 0, 2])

Fn = Callable[[Backend, torch.Tensor], None]


class _Baseline(torch.nn.Module):
    """A one-weight neural baseline whose output is a scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x.reshape(1)).squeeze(-1)
        return out


@dataclass(frozen=True)
class Pair:
    model: Fn
    guide: Fn
    reparam: bool = True  # every guide site reparameterized (TraceMeanField_ELBO needs it)
    vectorizable: bool = True
    uses_modules: bool = False


def _loc_scale(b: Backend, name: str = "q", shape: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    loc = b.pyro.param(f"{name}_loc", torch.full(shape, 0.1))
    scale = b.pyro.param(f"{name}_scale", torch.full(shape, 0.7), constraint=b.dist.constraints.positive)
    return loc, scale


# --- 1. global reparameterized latents --------------------------------------------------------
def global_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    scale = b.pyro.sample("scale", b.dist.LogNormal(0.0, 1.0))
    with b.pyro.plate("N", len(data)):
        b.pyro.sample("obs", b.dist.Normal(loc, scale), obs=data)


def global_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))
    w = b.pyro.param("w", torch.tensor([0.3, 0.7]), constraint=b.dist.constraints.simplex)
    b.pyro.sample("scale", b.dist.LogNormal(w[0], w[1]))


# --- 2. local latents in a subsampled plate (scale = 6 / 3) ------------------------------------
def local_model(b: Backend, data: torch.Tensor) -> None:
    with b.pyro.plate("N", len(data), subsample_size=3):
        z = b.pyro.sample("z", b.dist.Normal(0.0, 1.0))
        b.pyro.sample("obs", b.dist.Normal(z, 0.5), obs=b.pyro.subsample(data, event_dim=0))


def local_guide(b: Backend, data: torch.Tensor) -> None:
    with b.pyro.plate("N", len(data), subsample_size=3):
        loc = b.pyro.param("z_loc", torch.zeros(len(data)), event_dim=0)
        scale = b.pyro.param("z_scale", torch.ones(len(data)), constraint=b.dist.constraints.positive, event_dim=0)
        b.pyro.sample("z", b.dist.Normal(loc, scale))


# --- 3. a global non-reparameterized latent ----------------------------------------------------
def bernoulli_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    flip = b.pyro.sample("flip", b.dist.Bernoulli(0.3))
    with b.pyro.plate("N", len(data)):
        b.pyro.sample("obs", b.dist.Normal(loc + flip, 1.0), obs=data)


def _bernoulli_guide(b: Backend, baseline: dict[str, Any] | None) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))
    p = b.pyro.param("p", torch.tensor(0.4), constraint=b.dist.constraints.unit_interval)
    b.pyro.sample("flip", b.dist.Bernoulli(p), infer={} if baseline is None else {"baseline": baseline})


def bernoulli_guide(b: Backend, data: torch.Tensor) -> None:
    _bernoulli_guide(b, None)


# --- 4. local non-reparameterized latents in a plate (Rao-Blackwellized per element) ----------
def local_bernoulli_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    with b.pyro.plate("N", len(data), subsample_size=4) as idx:
        z = b.pyro.sample("z", b.dist.Bernoulli(0.5))
        b.pyro.sample("obs", b.dist.Normal(loc + 2 * z, 1.0), obs=data[idx])


def local_bernoulli_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))
    p = b.pyro.param("p", torch.full((len(data),), 0.4), constraint=b.dist.constraints.unit_interval)
    with b.pyro.plate("N", len(data), subsample_size=4) as idx:
        b.pyro.sample("z", b.dist.Bernoulli(p[idx]))


# --- 5-7. baselines ----------------------------------------------------------------------------
def decaying_baseline_guide(b: Backend, data: torch.Tensor) -> None:
    _bernoulli_guide(b, {"use_decaying_avg_baseline": True, "baseline_beta": 0.95})


def nn_baseline_guide(b: Backend, data: torch.Tensor) -> None:
    net = b.pyro.module("baseline", _NETS[b.name])
    _bernoulli_guide(b, {"nn_baseline": net, "nn_baseline_input": data.mean()})


def value_baseline_guide(b: Backend, data: torch.Tensor) -> None:
    value = b.pyro.param("baseline_value", torch.tensor(0.5))
    _bernoulli_guide(b, {"baseline_value": value})


_NETS: dict[str, torch.nn.Module] = {}


# --- 8. factor statements ----------------------------------------------------------------------
def factor_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    b.pyro.factor("penalty", -(loc**2))
    with b.pyro.plate("N", len(data)):
        b.pyro.factor("lik", -0.5 * (data - loc) ** 2)


def loc_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))


# --- 9. masks ----------------------------------------------------------------------------------
def mask_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    with b.pyro.plate("N", len(data)):
        z = b.pyro.sample("z", b.dist.Normal(loc, 1.0))
        with b.poutine.mask(mask=MASK):
            b.pyro.sample("obs", b.dist.Normal(z, 0.5), obs=data)
        b.pyro.sample("extra", b.dist.Normal(z, 1.0).mask(~MASK), obs=data)


def mask_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))
    z_loc, z_scale = _loc_scale(b, "z", (len(data),))
    with b.pyro.plate("N", len(data)), b.poutine.mask(mask=MASK):
        b.pyro.sample("z", b.dist.Normal(z_loc, z_scale))


# --- 10. obs_mask: partially observed data ------------------------------------------------------
def obs_mask_model(b: Backend, data: torch.Tensor) -> None:
    loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    with b.pyro.plate("N", len(data)):
        b.pyro.sample("x", b.dist.Normal(loc, 1.0), obs=data, obs_mask=MASK)


def obs_mask_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    b.pyro.sample("loc", b.dist.Normal(loc, scale))
    x_loc, x_scale = _loc_scale(b, "x", (len(data),))
    with b.pyro.plate("N", len(data)):
        b.pyro.sample("x_unobserved", b.dist.Normal(x_loc, x_scale))


# --- 11. nested plates and event dims ------------------------------------------------------------
def nested_model(b: Backend, data: torch.Tensor) -> None:
    w = b.pyro.sample("w", b.dist.Normal(torch.zeros(3), 1.0).to_event(1))
    with b.pyro.plate("rows", 2, dim=-2):
        shift = b.pyro.sample("shift", b.dist.Normal(0.0, 1.0))
        with b.pyro.plate("cols", 3, dim=-1):
            b.pyro.sample("obs", b.dist.Normal(w + shift, 1.0), obs=GRID)


def nested_guide(b: Backend, data: torch.Tensor) -> None:
    w_loc, w_scale = _loc_scale(b, "w", (3,))
    b.pyro.sample("w", b.dist.Normal(w_loc, w_scale).to_event(1))
    s_loc, s_scale = _loc_scale(b, "shift", (2, 1))
    with b.pyro.plate("rows", 2, dim=-2):
        b.pyro.sample("shift", b.dist.Normal(s_loc, s_scale))


# --- 12. a sequential plate --------------------------------------------------------------------
def sequential_model(b: Backend, data: torch.Tensor) -> None:
    for i in b.pyro.plate("seq", 3):
        z = b.pyro.sample(f"z_{i}", b.dist.Normal(0.0, 1.0))
        b.pyro.sample(f"obs_{i}", b.dist.Normal(z, 1.0), obs=data[i])


def sequential_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b, "z", (3,))
    for i in b.pyro.plate("seq", 3):
        b.pyro.sample(f"z_{i}", b.dist.Normal(loc[i], scale[i]))


# --- 13. poutine.scale --------------------------------------------------------------------------
def scaled_model(b: Backend, data: torch.Tensor) -> None:
    with b.poutine.scale(scale=2.5):
        loc = b.pyro.sample("loc", b.dist.Normal(0.0, 1.0))
    with b.pyro.plate("N", len(data)), b.poutine.scale(scale=0.5):
        b.pyro.sample("obs", b.dist.Normal(loc, 1.0), obs=data)


def scaled_guide(b: Backend, data: torch.Tensor) -> None:
    with b.poutine.scale(scale=2.5):
        loc_guide(b, data)


# --- 14. implicitly reparameterized Gamma and Dirichlet ------------------------------------------
def dirichlet_model(b: Backend, data: torch.Tensor) -> None:
    probs = b.pyro.sample("probs", b.dist.Dirichlet(torch.ones(3)))
    rate = b.pyro.sample("rate", b.dist.Gamma(2.0, 2.0))
    with b.pyro.plate("N", len(CATS)):
        b.pyro.sample("cat", b.dist.Categorical(probs), obs=CATS)
        b.pyro.sample("obs", b.dist.Exponential(rate), obs=data.abs())


def dirichlet_guide(b: Backend, data: torch.Tensor) -> None:
    conc = b.pyro.param("conc", torch.tensor([1.0, 2.0, 3.0]), constraint=b.dist.constraints.positive)
    b.pyro.sample("probs", b.dist.Dirichlet(conc))
    shape = b.pyro.param("shape", torch.tensor(2.0), constraint=b.dist.constraints.positive)
    b.pyro.sample("rate", b.dist.Gamma(shape, 3.0))


# --- 15. an auxiliary guide site -----------------------------------------------------------------
def auxiliary_guide(b: Backend, data: torch.Tensor) -> None:
    loc, scale = _loc_scale(b)
    u = b.pyro.sample("u", b.dist.Normal(loc, scale), infer={"is_auxiliary": True})
    b.pyro.sample("loc", b.dist.Normal(u, 0.5))


PAIRS: dict[str, Pair] = {
    "global": Pair(global_model, global_guide),
    "local_subsampled": Pair(local_model, local_guide),
    "bernoulli": Pair(bernoulli_model, bernoulli_guide, reparam=False),
    "local_bernoulli": Pair(local_bernoulli_model, local_bernoulli_guide, reparam=False),
    "decaying_baseline": Pair(bernoulli_model, decaying_baseline_guide, reparam=False),
    "nn_baseline": Pair(bernoulli_model, nn_baseline_guide, reparam=False, uses_modules=True),
    "value_baseline": Pair(bernoulli_model, value_baseline_guide, reparam=False),
    "factor": Pair(factor_model, loc_guide),
    "mask": Pair(mask_model, mask_guide),
    "obs_mask": Pair(obs_mask_model, obs_mask_guide),
    "nested_plates": Pair(nested_model, nested_guide),
    "sequential_plate": Pair(sequential_model, sequential_guide, vectorizable=False),
    "scale": Pair(scaled_model, scaled_guide),
    "gamma_dirichlet": Pair(dirichlet_model, dirichlet_guide),
    "auxiliary": Pair(factor_model, auxiliary_guide),
}

# (Ember class, Pyro class compared with, options)
ELBOS: list[tuple[str, str, dict[str, Any]]] = [
    ("Trace_ELBO", "Trace_ELBO", {"num_particles": 2}),
    ("JitTrace_ELBO", "Trace_ELBO", {"ignore_jit_warnings": True}),
    ("TraceGraph_ELBO", "TraceGraph_ELBO", {}),
    ("JitTraceGraph_ELBO", "TraceGraph_ELBO", {"ignore_jit_warnings": True}),
    ("TraceMeanField_ELBO", "TraceMeanField_ELBO", {}),
    ("JitTraceMeanField_ELBO", "TraceMeanField_ELBO", {"ignore_jit_warnings": True}),
    ("RenyiELBO", "RenyiELBO", {"alpha": 0.5, "num_particles": 3}),
    ("Trace_ELBO", "Trace_ELBO", {"num_particles": 3, "vectorize_particles": True}),
    ("TraceGraph_ELBO", "TraceGraph_ELBO", {"num_particles": 3, "vectorize_particles": True}),
    ("RenyiELBO", "RenyiELBO", {"alpha": 0.0, "num_particles": 3, "vectorize_particles": True}),
]


# The compiled and vectorized variants run on a subset, to keep the suite fast.
JIT_PAIRS = {"global", "local_subsampled", "bernoulli", "local_bernoulli", "nn_baseline", "mask", "obs_mask",
             "nested_plates", "sequential_plate", "gamma_dirichlet"}
VECTORIZED_PAIRS = {"global", "local_bernoulli", "mask", "nested_plates"}


def _applies(pair_name: str, elbo: tuple[str, str, dict[str, Any]]) -> bool:
    pair = PAIRS[pair_name]
    ember_name, _, options = elbo
    if "Jit" in ember_name and pair_name not in JIT_PAIRS:
        return False
    if options.get("vectorize_particles") and pair_name not in VECTORIZED_PAIRS:
        return False
    if "MeanField" in ember_name and not pair.reparam:
        return False
    if options.get("vectorize_particles") and not pair.vectorizable:
        return False
    # Pyro's Jit and vectorized TraceGraph_ELBO cannot update a decaying-average baseline
    # from inside a graph either; those combinations are covered in test_tracegraph_elbo.py.
    if pair_name == "decaying_baseline" and ("Jit" in ember_name or options.get("vectorize_particles")):
        return False
    # A scalar baseline cannot match the cost of vectorized particles (both libraries raise).
    if pair_name.endswith("_baseline") and options.get("vectorize_particles"):
        return False
    return True


CASES = [
    pytest.param(pair_name, elbo, id=f"{pair_name}-{elbo[0]}{'-vectorized' if elbo[2].get('vectorize_particles') else ''}")
    for elbo in ELBOS
    for pair_name in PAIRS
    if _applies(pair_name, elbo)
]


def _grads(b: Backend) -> dict[str, torch.Tensor | None]:
    return {name: None if leaf.grad is None else leaf.grad.clone() for name, leaf in b.param_leaves().items()}


def _zero(b: Backend) -> None:
    for leaf in b.param_leaves().values():
        leaf.grad = None


def _run_pair(pair_name: str, elbo_name: str, options: dict[str, Any], with_differentiable_loss: bool) -> Callable[[Backend], Any]:
    pair = PAIRS[pair_name]

    def program(b: Backend) -> Any:
        if pair.uses_modules:
            _NETS[b.name] = _Baseline()  # same draws for its init in both runs

        def model(data: torch.Tensor) -> None:
            pair.model(b, data)

        def guide(data: torch.Tensor) -> None:
            pair.guide(b, data)

        elbo = getattr(b.infer, elbo_name)(**options)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            out: dict[str, Any] = {"loss": elbo.loss(model, guide, DATA)}
            if with_differentiable_loss:
                loss = elbo.differentiable_loss(model, guide, DATA)
                torch.autograd.backward(loss)
                out["differentiable_loss"] = loss.detach()
                out["differentiable_loss_grads"] = _grads(b)
                _zero(b)
            out["loss_and_grads"] = elbo.loss_and_grads(model, guide, DATA)
            out["grads"] = _grads(b)
        # A valid pair warns about nothing (torch's own tracer and deprecation notes aside).
        torch_notes = (TracerWarning, DeprecationWarning, FutureWarning)
        out["warnings"] = [str(w.message) for w in record if not issubclass(w.category, torch_notes)]
        out["shapes"] = {name: tuple(leaf.shape) for name, leaf in b.param_leaves().items()}
        return out

    return program


@pytest.mark.parametrize(("pair_name", "elbo"), CASES)
def test_elbo_matches_pyro_on_valid_pair(pair_name: str, elbo: tuple[str, str, dict[str, Any]]) -> None:
    ember_name, pyro_name, options = elbo
    # Pyro's RenyiELBO and TraceGraph_ELBO have no differentiable_loss; Ember's are checked
    # against their own loss_and_grads in test_renyi_elbo.py and test_tracegraph_elbo.py.
    with_dl = pyro_name not in ("RenyiELBO", "TraceGraph_ELBO")
    ours = _run_pair(pair_name, ember_name, options, with_dl)(_ember())
    theirs = _run_pair(pair_name, pyro_name, options, with_dl)(_pyro())
    assert ours["warnings"] == []
    assert sorted(ours["shapes"]) == sorted(theirs["shapes"])
    assert_same_value(ours, theirs, pair_name)
    grads = [g for g in theirs["grads"].values() if g is not None]
    assert grads, "the pair trains nothing"


def _ember() -> Backend:
    _reset(EMBER)
    return EMBER


def _pyro() -> Backend:
    _reset(PYRO)
    return PYRO


def _reset(b: Backend) -> None:
    b.pyro.clear_param_store()
    b.pyro.enable_validation(True)
    torch.manual_seed(0)


# ------------------------------------------------------------------------------------------------
# Invalid pairs warn or fail as in Pyro


ALL_ELBOS = ["Trace_ELBO", "JitTrace_ELBO", "TraceGraph_ELBO", "JitTraceGraph_ELBO", "TraceMeanField_ELBO", "RenyiELBO"]


def _normal(b: Backend, name: str, shape: tuple[int, ...] = ()) -> None:
    loc = b.pyro.param(f"{name}_loc", torch.zeros(shape))
    b.pyro.sample(name, b.dist.Normal(loc, 1.0))


def _prior(b: Backend, name: str) -> None:
    b.pyro.sample(name, b.dist.Normal(0.0, 1.0))


def _model_a_b(b: Backend, data: torch.Tensor) -> None:
    _prior(b, "a")
    _prior(b, "b")


def _model_a(b: Backend, data: torch.Tensor) -> None:
    _prior(b, "a")


def _guide_a(b: Backend, data: torch.Tensor) -> None:
    _normal(b, "a")


def _guide_a_c(b: Backend, data: torch.Tensor) -> None:
    _normal(b, "a")
    _normal(b, "c")


def _guide_a_plate(b: Backend, data: torch.Tensor) -> None:
    _normal(b, "a")
    with b.pyro.plate("N", 3):
        pass


WARNING_CASES: dict[str, tuple[Fn, Fn, str]] = {
    "model_site_missing_in_guide": (_model_a_b, _guide_a, "Found vars in model but not guide: {'b'}"),
    "guide_site_missing_in_model": (
        _model_a,
        _guide_a_c,
        r"Found non-auxiliary vars in guide but not model, consider marking these infer=\{'is_auxiliary': True\}:\n\{'c'\}",
    ),
    "guide_plate_missing_in_model": (_model_a, _guide_a_plate, "Found plate statements in guide but not model: {'N'}"),
}


@pytest.mark.parametrize("elbo_name", ALL_ELBOS)
@pytest.mark.parametrize("case", list(WARNING_CASES))
def test_mismatched_pairs_warn_like_pyro(case: str, elbo_name: str) -> None:
    model_fn, guide_fn, pattern = WARNING_CASES[case]
    if "MeanField" in elbo_name and case != "guide_plate_missing_in_model":
        pytest.skip("TraceMeanField_ELBO needs every model latent in the guide")

    def program(b: Backend) -> list[str]:
        elbo = getattr(b.infer, elbo_name)()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            elbo.loss_and_grads(lambda: model_fn(b, DATA), lambda: guide_fn(b, DATA))
        return [str(w.message) for w in record if "Tracer" not in type(w.message).__name__]

    ours, theirs = run_both(program)
    assert ours == [m for m in theirs if "deprecated" not in m]
    ember.clear_param_store()
    elbo = getattr(ember.infer, elbo_name)(**({"ignore_jit_warnings": True} if "Jit" in elbo_name else {}))
    with pytest.warns(UserWarning, match=pattern):
        elbo.loss_and_grads(lambda: model_fn(EMBER, DATA), lambda: guide_fn(EMBER, DATA))


def test_enumerated_guide_sites_warn_in_every_non_enumerating_elbo() -> None:
    def model() -> None:
        ember.sample("x", ember.distributions.Bernoulli(0.5))

    def guide() -> None:
        p = ember.param("p", torch.tensor(0.5), constraint=ember.distributions.constraints.unit_interval)
        ember.sample("x", ember.distributions.Bernoulli(p), infer={"enumerate": "parallel"})

    for name in ["Trace_ELBO", "TraceGraph_ELBO", "RenyiELBO"]:
        with pytest.warns(UserWarning, match="^x\nIf you want to enumerate sites, you need to use TraceEnum_ELBO instead.$"):
            getattr(ember.infer, name)().loss(model, guide)


def _vector_model(b: Backend, data: torch.Tensor) -> None:
    b.pyro.sample("x", b.dist.Normal(torch.zeros(2), 1.0).to_event(1))


def _wide_vector_guide(b: Backend, data: torch.Tensor) -> None:
    b.pyro.sample("x", b.dist.Normal(b.pyro.param("x_loc", torch.zeros(3)), 1.0).to_event(1))


def _batched_guide(b: Backend, data: torch.Tensor) -> None:
    b.pyro.sample("x", b.dist.Normal(b.pyro.param("x_loc", torch.zeros(2)), 1.0))


def _batched_model(b: Backend, data: torch.Tensor) -> None:
    b.pyro.sample("x", b.dist.Normal(torch.zeros(2), 1.0))


def _empty_model(b: Backend, data: torch.Tensor) -> None:
    pass


def _factor_guide(b: Backend, data: torch.Tensor) -> None:
    b.pyro.factor("f", b.pyro.param("f", torch.tensor(0.0)))


ERROR_CASES: dict[str, tuple[Fn, Fn]] = {
    "shapes_disagree": (_vector_model, _wide_vector_guide),
    "event_dims_disagree": (_vector_model, _batched_guide),
    "batched_site_outside_plate": (_batched_model, _batched_guide),
    "guide_factor_without_has_rsample": (_empty_model, _factor_guide),
}


@pytest.mark.parametrize("elbo_name", ["Trace_ELBO", "TraceGraph_ELBO", "TraceMeanField_ELBO", "RenyiELBO"])
@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_invalid_pairs_raise_pyros_errors_and_leave_no_state_behind(case: str, elbo_name: str) -> None:
    model_fn, guide_fn = ERROR_CASES[case]

    def program(b: Backend) -> None:
        elbo = getattr(b.infer, elbo_name)(max_plate_nesting=1)
        elbo.loss_and_grads(lambda: model_fn(b, DATA), lambda: guide_fn(b, DATA))

    assert_same_error(program)


def test_failed_step_keeps_the_last_good_param_values() -> None:
    dist = ember.distributions
    bad = {"on": False}

    def model() -> None:
        ember.sample("x", dist.Normal(torch.zeros(3 if bad["on"] else 2), 1.0).to_event(1))

    def guide() -> None:
        loc = ember.param("loc", torch.zeros(2))
        ember.sample("x", dist.Normal(loc, 1.0).to_event(1))

    elbo = ember.infer.Trace_ELBO()
    elbo.loss_and_grads(model, guide)
    with torch.no_grad():
        ember.param("loc").add_(1.0)
    before = {name: leaf.detach().clone() for name, leaf in ember.get_param_store().named_parameters()}
    bad["on"] = True
    with pytest.raises(ValueError, match="Model and guide shapes disagree at site 'x'"):
        elbo.loss_and_grads(model, guide)
    after = dict(ember.get_param_store().named_parameters())
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[name], value) for name, value in before.items())
