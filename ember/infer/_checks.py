"""Trace checks for enumeration: plate-dependency order, and two traces of one program agreeing.

Public as :func:`ember.util.check_traceenum_requirements` and
:func:`ember.util.check_traces_match` (Pyro's ``pyro.util``), and under :mod:`ember.infer.util`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ember.poutine.message import CondIndepStackFrame
from ember.poutine.trace_struct import Trace
from ember._util import warn_at_caller

__all__ = ["check_traceenum_requirements", "check_traces_match"]


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
