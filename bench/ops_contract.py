"""The tensor contraction under TraceEnum_ELBO for an HMM: Ember vs pyro-ppl vs a torch floor.

One "step" builds the HMM's packed log factors (T transitions over unique enumeration symbols
plus T emissions, all in the empty plate context), contracts them with
``contract_tensor_tree`` in a ``SampleRing`` under ``shared_intermediates`` (what
TraceEnum_ELBO does), and backpropagates the result. The floor is the forward algorithm
written by hand (a ``logsumexp`` per step) with the same backward.

Run: ``python bench/ops_contract.py [T ...]``. Interleaved rounds, medians.
"""

from __future__ import annotations

import statistics
import sys
from collections import OrderedDict
from typing import Any, Callable

import opt_einsum
import pyro.ops.contract as pyro_contract
import pyro.ops.rings as pyro_rings
import torch
from _common import run_interleaved

from ember.ops import contract as ember_contract
from ember.ops import rings as ember_rings

STATES = 4


def _factors(T: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    init = torch.randn(STATES, generator=generator).log_softmax(-1).requires_grad_()
    trans = torch.randn(STATES, STATES, generator=generator).log_softmax(-1).requires_grad_()
    emit = torch.randn(T, STATES, generator=generator).requires_grad_()
    return init, trans, emit


def _contraction_step(contract: Any, rings: Any, T: int) -> Callable[[], object]:
    init, trans, emit = _factors(T)
    symbols = [opt_einsum.get_symbol(t) for t in range(T)]

    def step() -> object:
        terms = []
        x = init + 0.0
        x._pyro_dims = symbols[0]  # type: ignore[attr-defined]
        terms.append(x)
        for t in range(T):
            if t:
                tr = trans + 0.0
                tr._pyro_dims = symbols[t - 1] + symbols[t]  # type: ignore[attr-defined]
                terms.append(tr)
            e = emit[t]
            e._pyro_dims = symbols[t]  # type: ignore[attr-defined]
            terms.append(e)
        tree = OrderedDict([(frozenset(), terms)])
        with opt_einsum.shared_intermediates() as cache:
            ring = rings.SampleRing(cache=cache, dim_to_size=dict.fromkeys(symbols, STATES))
            out = contract.contract_tensor_tree(tree, set(symbols), ring=ring)
        loss = sum(t.sum() for ts in out.values() for t in ts)
        loss.backward()  # type: ignore[union-attr]
        return loss

    return step


def _floor_step(T: int) -> Callable[[], object]:
    init, trans, emit = _factors(T)

    def step() -> object:
        alpha = init + emit[0]
        for t in range(1, T):
            alpha = torch.logsumexp(alpha[:, None] + trans, 0) + emit[t]
        loss = alpha.logsumexp(0)
        loss.backward()
        return loss

    return step


def main() -> None:
    torch.set_num_threads(1)
    lengths = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    for T in lengths:
        inner = max(1, 300 // T)
        jobs = {
            "ember": _contraction_step(ember_contract, ember_rings, T),
            "pyro": _contraction_step(pyro_contract, pyro_rings, T),
            "floor": _floor_step(T),
        }
        samples = run_interleaved(jobs, rounds=7, inner=inner, warmup=2)
        med = {k: statistics.median(v) for k, v in samples.items()}
        print(
            f"T={T:5d}  ember {med['ember'] * 1e3:8.2f} ms  pyro {med['pyro'] * 1e3:8.2f} ms  "
            f"floor {med['floor'] * 1e3:8.2f} ms  ember/pyro {med['ember'] / med['pyro']:.2f}  "
            f"ember/floor {med['ember'] / med['floor']:.2f}"
        )


if __name__ == "__main__":
    main()
