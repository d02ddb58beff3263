"""The trace checks inference runs under validation: a guide against its model, a site's shape.

Model/guide agreement (latent sites, shapes, plates), two traces of one program agreeing, the
plate-dependency order enumeration needs, a site's log-density shape against its plates, and
the guide properties some ELBOs require. All are public under :mod:`ember.infer.util`; the
ones Pyro keeps in ``pyro.util`` are also under :mod:`ember.util`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import zip_longest
from typing import Any

from ember.distributions.util import is_identically_zero
from ember.poutine.message import CondIndepStackFrame, Message
from ember.poutine.trace_struct import Trace
from ember.poutine.util import site_is_subsample
from ember._util import warn_at_caller

__all__ = [
    "check_fully_reparametrized",
    "check_if_enumerated",
    "check_model_guide_match",
    "check_site_shape",
    "check_traceenum_requirements",
    "check_traces_match",
]


def check_traces_match(trace1: Trace, trace2: Trace) -> None:
    """Check that two traces have the same sample sites with the same shapes.

    Warns (``UserWarning``) if the sets of sample sites differ; raises ``ValueError`` naming
    the site and both shapes if a shared site's distribution shapes differ.

    :param trace1: a trace (e.g. of the model).
    :param trace2: another trace (e.g. of the guide).
    """
    vars1 = {name for name, site in trace1.nodes.items() if site["type"] == "sample"}
    vars2 = {name for name, site in trace2.nodes.items() if site["type"] == "sample"}
    if vars1 != vars2:
        warn_at_caller(f"Model vars changed: {vars1} vs {vars2}")
    for name in vars1 & vars2:
        site1, site2 = trace1.nodes[name], trace2.nodes[name]
        fn1: Any = site1["fn"]
        fn2: Any = site2["fn"]
        if hasattr(fn1, "shape") and hasattr(fn2, "shape"):
            shape1 = fn1.shape(*site1["args"], **site1["kwargs"])
            shape2 = fn2.shape(*site2["args"], **site2["kwargs"])
            if shape1 != shape2:
                raise ValueError(f"Site dims disagree at site '{name}': {shape1} vs {shape2}")


def _are_independent(counters1: dict[str, int], counters2: dict[str, int]) -> bool:
    # Two sites in different iterations of a shared sequential plate are independent.
    return any(name in counters2 and counters2[name] != counter for name, counter in counters1.items())


def check_traceenum_requirements(model_trace: Trace, guide_trace: Trace) -> None:
    """Warn (``RuntimeWarning``) where a site outside a plate follows an enumerated site inside it.

    ``TraceEnum_ELBO`` sums over enumerated values plate slice by plate slice, so no site
    outside a vectorized plate may depend on an enumerated site inside it. Dependencies are
    not tracked; the check flags a site that merely comes later, which a model can always
    avoid by reordering its statements.

    :param model_trace: the model's trace.
    :param guide_trace: the guide's trace (its enumerated sites are the ones checked).
    """
    enumerated = {
        name for name, site in guide_trace.nodes.items() if site["type"] == "sample" and site["infer"].get("enumerate")
    }
    for role, tr in (("model", model_trace), ("guide", guide_trace)):
        counters: dict[str, dict[str, int]] = {}
        contexts: defaultdict[frozenset[CondIndepStackFrame], set[str]] = defaultdict(set)
        for name, site in tr.nodes.items():
            if site["type"] != "sample":
                continue
            counter = {f.name: f.counter for f in site["cond_indep_stack"] if not f.vectorized}
            context = frozenset(f for f in site["cond_indep_stack"] if f.vectorized)
            for enumerated_context, names in contexts.items():
                if not context < enumerated_context:
                    continue
                earlier = sorted(n for n in names if not _are_independent(counter, counters[n]))
                if not earlier:
                    continue
                plates = '", "'.join(sorted(f.name for f in enumerated_context - context))
                sites = '", "'.join(earlier)
                warn_at_caller(
                    f'at {role} site "{name}", possibly invalid dependency.\n'
                    f'  Expected site "{name}" to precede sites "{sites}"\n'
                    f'  to avoid breaking independence of plates "{plates}"',
                    RuntimeWarning,
                )
            counters[name] = counter
            if name in enumerated:
                contexts[context].add(name)


def _sample_names(trace: Trace, *, subsample: bool, observed: bool = True) -> set[str]:
    return {
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and (observed or not site["is_observed"])
        and site_is_subsample(site) == subsample
    }


def check_model_guide_match(model_trace: Trace, guide_trace: Trace, max_plate_nesting: float = math.inf) -> None:
    """Check that a guide fits its model: same latent sites, shapes and plates.

    Warns about latent sites in only one of the two, auxiliary guide sites that the model
    samples, and guide plates missing from the model. Raises ``ValueError`` where the
    model and guide disagree on a site's event dim or shape (dims left of
    ``max_plate_nesting`` may broadcast), or where a guide factor does not say whether it
    is reparameterized, and ``NotImplementedError`` for model-side sequential enumeration.

    :param model_trace: the model's trace, replayed against the guide's.
    :param guide_trace: the guide's trace.
    :param max_plate_nesting: how many rightmost batch dims are plate dims.
    """
    guide_vars = _sample_names(guide_trace, subsample=False)
    aux_vars = {
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("is_auxiliary")
    }
    model_vars = _sample_names(model_trace, subsample=False, observed=False)
    enum_vars = {
        name
        for name in model_vars - guide_vars
        if model_trace.nodes[name]["infer"].get("_enumerate_dim") is not None
    }
    if aux_vars & model_vars:
        warn_at_caller(f"Found auxiliary vars in the model: {aux_vars & model_vars}")
    if not guide_vars <= model_vars | aux_vars:
        warn_at_caller(
            "Found non-auxiliary vars in guide but not model, consider marking these "
            f"infer={{'is_auxiliary': True}}:\n{guide_vars - aux_vars - model_vars}"
        )
    if not model_vars <= guide_vars | enum_vars:
        bad_sites = model_vars - guide_vars - enum_vars
        for name in bad_sites:
            if model_trace.nodes[name]["infer"].get("enumerate") == "sequential":
                raise NotImplementedError(
                    f"At site {name!r}, model-side sequential enumeration is not implemented. "
                    "Try parallel enumeration or guide-side enumeration."
                )
        warn_at_caller(f"Found vars in model but not guide: {bad_sites}")

    for name in model_vars & guide_vars:
        _check_shapes_agree(name, model_trace.nodes[name], guide_trace.nodes[name], max_plate_nesting)

    model_plates = _sample_names(model_trace, subsample=True, observed=False)
    guide_plates = _sample_names(guide_trace, subsample=True)
    if not guide_plates <= model_plates:
        warn_at_caller(f"Found plate statements in guide but not model: {guide_plates - model_plates}")

    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample" or not site["infer"].get("is_auxiliary"):
            continue
        fn = site["fn"]
        if type(fn).__name__ == "Unit" and "has_rsample" not in fn.__dict__:
            raise ValueError(
                f'At guide site pyro.factor("{name}",...), missing specification of has_rsample. '
                "Please either set has_rsample=True if the factor statement arises from "
                "reparametrized sampling or has_rsample=False otherwise."
            )


def _check_shapes_agree(name: str, model_site: Message, guide_site: Message, max_plate_nesting: float) -> None:
    model_fn: Any = model_site["fn"]
    guide_fn: Any = guide_site["fn"]
    if hasattr(model_fn, "event_dim") and hasattr(guide_fn, "event_dim"):
        if model_fn.event_dim != guide_fn.event_dim:
            raise ValueError(
                f"Model and guide event_dims disagree at site '{name}': "
                f"{model_fn.event_dim} vs {guide_fn.event_dim}"
            )
    if not (hasattr(model_fn, "shape") and hasattr(guide_fn, "shape")):
        return
    model_shape = model_fn.shape(*model_site["args"], **model_site["kwargs"])
    guide_shape = guide_fn.shape(*guide_site["args"], **guide_site["kwargs"])
    if model_shape == guide_shape:
        return
    # Dims left of the plate dims may broadcast (e.g. enumeration dims).
    if len(model_shape) > max_plate_nesting:
        model_shape = model_shape[len(model_shape) - int(max_plate_nesting) - model_fn.event_dim :]
    if len(guide_shape) > max_plate_nesting:
        guide_shape = guide_shape[len(guide_shape) - int(max_plate_nesting) - guide_fn.event_dim :]
    if model_shape == guide_shape:
        return
    for model_size, guide_size in zip_longest(reversed(model_shape), reversed(guide_shape), fillvalue=1):
        if model_size != guide_size:
            raise ValueError(f"Model and guide shapes disagree at site '{name}': {model_shape} vs {guide_shape}")


def check_site_shape(site: Message, max_plate_nesting: float) -> None:
    """Check that ``site["log_prob"]`` has the shape its enclosing plates imply.

    :raises ValueError: on a plate dim collision, more plates than ``max_plate_nesting``,
        a log density whose plate dims are wrong, or an enumeration dim conflict.
    """
    name = site["name"]
    actual_shape = list(site["log_prob"].shape)
    expected: list[int | None] = []
    for f in site["cond_indep_stack"]:
        if f.dim is None:
            continue
        assert f.dim < 0
        if len(expected) < -f.dim:
            padding: list[int | None] = [None] * (-f.dim - len(expected))
            expected = padding + expected
        if expected[f.dim] is not None:
            raise ValueError(
                f'at site "{name}" within plate("{f.name}", dim={f.dim}), dim collision\n'
                "  Try setting dim arg in other plates."
            )
        expected[f.dim] = f.size
    expected_shape = [-1 if size is None else size for size in expected]

    if len(expected_shape) > max_plate_nesting:
        raise ValueError(
            f'at site "{name}", plate stack overflow\n'
            f"  Try increasing max_plate_nesting to at least {len(expected_shape)}"
        )
    if max_plate_nesting < len(actual_shape):
        actual_shape = actual_shape[len(actual_shape) - int(max_plate_nesting) :]
    for actual_size, expected_size in zip_longest(reversed(actual_shape), reversed(expected_shape), fillvalue=1):
        if expected_size != -1 and expected_size != actual_size:
            raise ValueError(
                f'at site "{name}", invalid log_prob shape\n'
                f"  Expected {expected_shape}, actual {actual_shape}\n"
                "  Try one of the following fixes:\n"
                "  - enclose the batched tensor in a with pyro.plate(...): context\n"
                "  - .to_event(...) the distribution being sampled\n"
                "  - .permute() data dimensions"
            )

    enum_dim = site["infer"].get("_enumerate_dim")
    if enum_dim is not None:
        fn: Any = site["fn"]
        batch_shape = fn.batch_shape
        if len(batch_shape) >= -enum_dim and batch_shape[enum_dim] != 1:
            raise ValueError(
                f'Enumeration dim conflict at site "{name}"\n  Try increasing pyro.markov history size'
            )


def check_if_enumerated(guide_trace: Trace) -> None:
    """Warn when the guide has sites configured for enumeration (only TraceEnum_ELBO enumerates).

    The text repeats Pyro's, including its join separator.
    """
    enumerated = [
        name
        for name, site in guide_trace.nodes.items()
        if site["type"] == "sample" and site["infer"].get("enumerate")
    ]
    if enumerated:
        warn_at_caller(
            "Found sample sites configured for enumeration:, ".join(enumerated)
            + "\nIf you want to enumerate sites, you need to use TraceEnum_ELBO instead."
        )


def check_fully_reparametrized(guide_site: Message) -> None:
    """Raise ``NotImplementedError`` unless ``guide_site`` is sampled by reparameterization."""
    _, score_function, entropy_term = guide_site["score_parts"]
    fn: Any = guide_site["fn"]
    if not (fn.has_rsample and not is_identically_zero(entropy_term) and is_identically_zero(score_function)):
        raise NotImplementedError("All distributions in the guide must be fully reparameterized.")
