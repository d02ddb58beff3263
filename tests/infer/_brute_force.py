"""Exact answers by brute force: score every joint assignment of a model's discrete latents.

Each assignment is imposed with ``condition`` (so nothing is enumerated) and scored with
``Trace.log_prob_sum``; the log marginal likelihood is the ``logsumexp`` over assignments,
and it keeps its autograd graph, so its gradients are the exact ones.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch

from ember import poutine


class BruteForce:
    """The joint log densities of all assignments of ``latents`` in ``model(*args)``.

    :param model: an Ember model.
    :param latents: ``{site: (shape, cardinality)}`` for every discrete latent site.
    """

    def __init__(self, model: Callable[..., Any], latents: dict[str, tuple[tuple[int, ...], int]], *args: Any) -> None:
        self.names = list(latents)
        self.shapes = {name: shape for name, (shape, _) in latents.items()}
        axes: list[tuple[str, int, int]] = []  # (site, flat position, cardinality)
        for name, (shape, card) in latents.items():
            axes += [(name, i, card) for i in range(math.prod(shape))]
        self.axes = axes
        self.assignments: list[dict[str, torch.Tensor]] = []
        log_joint = []
        for values in itertools.product(*(range(card) for _, _, card in axes)):
            flat: dict[str, list[int]] = {name: [] for name in latents}
            for (name, _, _), value in zip(axes, values):
                flat[name].append(value)
            data = {name: torch.tensor(flat[name]).reshape(self.shapes[name]) for name in latents}
            self.assignments.append(data)
            tr = poutine.trace(poutine.condition(model, data=data)).get_trace(*args)
            log_p = tr.log_prob_sum()
            assert isinstance(log_p, torch.Tensor)
            log_joint.append(log_p)
        self.log_joint = torch.stack(log_joint)

    @property
    def log_evidence(self) -> torch.Tensor:
        """``log p(data)``, differentiable in the model's params."""
        return torch.logsumexp(self.log_joint, 0)

    @property
    def posterior(self) -> torch.Tensor:
        """The posterior probability of each assignment, in :attr:`assignments` order."""
        return (self.log_joint - self.log_evidence).exp().detach()

    def marginal(self, name: str) -> torch.Tensor:
        """``p(site = k | data)`` with shape ``site shape + (cardinality,)``."""
        shape = self.shapes[name]
        card = 1 + max(int(a[name].max()) for a in self.assignments)
        probs = torch.zeros(*shape, card)
        for assignment, p in zip(self.assignments, self.posterior):
            one_hot = torch.nn.functional.one_hot(assignment[name], card).to(probs.dtype)
            probs += p * one_hot
        return probs

    def argmax(self) -> dict[str, torch.Tensor]:
        """The MAP assignment."""
        return self.assignments[int(self.log_joint.argmax())]

    def index_of(self, values: dict[str, torch.Tensor]) -> int:
        """The position of a joint assignment in :attr:`assignments`."""
        index = 0
        for name, position, card in self.axes:
            index = index * card + int(values[name].reshape(-1)[position])
        return index


class ExactAnswers:
    """What a :class:`BruteForce` run yields, as plain values (no autograd graph), so one run
    serves every test of a model: params start from fixed values in each test's fresh store.

    :ivar log_evidence: ``log p(data)``.
    :ivar grads: the gradient of ``-log p(data)`` per unconstrained param leaf.
    """

    def __init__(self, exact: BruteForce, leaves: dict[str, torch.Tensor]) -> None:
        loss = -exact.log_evidence
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        self.grads = {
            name: torch.zeros_like(leaf) if g is None else g for (name, leaf), g in zip(leaves.items(), grads)
        }
        self.log_evidence = exact.log_evidence.item()
        self.names = exact.names
        self.marginals = {name: exact.marginal(name) for name in exact.names}
        self.argmax = exact.argmax()
        self.posterior = exact.posterior
        self.log_joint = exact.log_joint.detach()
        self.assignments = exact.assignments
        self.index_of = exact.index_of


_CACHE: dict[str, ExactAnswers] = {}


def exact_answers(name: str) -> ExactAnswers:
    """The brute-force answers for the model ``name`` of :data:`tests.infer._enum_models.EXACT_MODELS`,
    computed once per test session (each test's fresh param store holds the same initial values)."""
    import functools

    import ember
    import ember.distributions as dist
    from tests.infer._enum_models import EXACT_MODELS

    if name not in _CACHE:
        model_fn, data, _, latents = EXACT_MODELS[name]
        model = functools.partial(model_fn, ember, dist)
        exact = BruteForce(model, latents, data)
        _CACHE[name] = ExactAnswers(exact, dict(ember.get_param_store().named_parameters()))
    return _CACHE[name]


def chi2_quantile(df: int, z: float = 3.09) -> float:
    """The chi-squared quantile at standard-normal quantile ``z`` (Wilson-Hilferty);
    ``z = 3.09`` is the 0.999 quantile."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3
