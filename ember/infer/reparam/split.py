"""Split a sample site into independent pieces along one of its event dims."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ember.distributions import constraints
from ember.distributions.delta import Delta
from ember.distributions.improper_uniform import ImproperUniform
from ember.infer.reparam.reparam import Reparam, ReparamMessage, ReparamResult
from ember.ops.tensor_utils import broadcast_tensors_without_dim
from ember.poutine.runtime import get_mask
from ember.primitives import sample

__all__ = ["SplitReparam", "default_support", "real_support", "same_support"]

SupportFn = Callable[[Any, slice, int], constraints.Constraint]


def same_support(fn: Any, *args: Any) -> constraints.Constraint:
    """Give every piece the support of the whole site (for elementwise supports).

    :param fn: the site's distribution.
    """
    support: constraints.Constraint = fn.support
    return support


def real_support(fn: Any, *args: Any) -> constraints.Constraint:
    """Give every piece the real line, with the site's event dim.

    :param fn: the site's distribution.
    """
    return constraints.independent(constraints.real, fn.event_dim)  # type: ignore[no-untyped-call]  # torch: unannotated


def default_support(fn: Any, slice: slice, dim: int) -> constraints.Constraint:
    """The support of one piece: the site's, with ``cat``/``stack`` supports cut to the piece.

    :param fn: the site's distribution.
    :param slice: the piece's positions along ``dim``.
    :param dim: the (negative) dim being split.
    """
    support: Any = fn.support
    wrappers: list[int] = []
    while isinstance(support, constraints.independent):
        wrappers.append(support.reinterpreted_batch_ndims)
        support = support.base_constraint
    if isinstance(support, constraints.stack) and support.dim == dim:
        support = constraints.stack(support.cseq[slice], dim)  # type: ignore[no-untyped-call]  # torch: unannotated
    elif isinstance(support, constraints.cat) and support.dim == dim:
        support = constraints.cat(support.cseq[slice], dim, support.lengths[slice])  # type: ignore[no-untyped-call]  # torch: unannotated
    for ndims in reversed(wrappers):
        support = constraints.independent(support, ndims)  # type: ignore[no-untyped-call]  # torch: unannotated
    result: constraints.Constraint = support
    return result


class SplitReparam(Reparam):
    """Draw a site as independent pieces along an event dim, like :func:`torch.split`.

    Each piece becomes a site ``"<name>_split_<i>"`` with an improper uniform prior; the
    site itself becomes a point mass at the concatenated pieces that carries the original
    density. Useful to hand different parts of a tensor to different reparameterizers or
    inference methods (e.g. low frequencies of a :class:`HaarReparam` site into a full mass
    matrix).

    :param sections: the size of each piece along ``dim``.
    :param dim: the (negative) event dim to split.
    :param support_fn: derives each piece's support from the site's distribution, the
        piece's slice and ``dim``: :func:`default_support`, :func:`same_support` or
        :func:`real_support`.
    :raises AssertionError: if ``dim`` is not a negative int or ``sections`` not a list of
        ints (Pyro's type).

    >>> import ember, torch
    >>> import ember.distributions as dist
    >>> from ember import poutine
    >>> def model():
    ...     return ember.sample("x", dist.Normal(torch.zeros(5), 1.0).to_event(1), obs=torch.arange(5.0))
    >>> tr = poutine.trace(poutine.reparam(model, {"x": SplitReparam([2, 3], -1)})).get_trace()
    >>> tr.nodes["x_split_0"]["value"], tr.nodes["x_split_1"]["value"]
    (tensor([0., 1.]), tensor([2., 3., 4.]))

    The pieces of a latent site have improper priors: give them values (a guide, or an
    ``init_to_*`` strategy) rather than sampling the model.
    """

    def __init__(self, sections: list[int], dim: int, support_fn: SupportFn = default_support) -> None:
        if not (isinstance(dim, int) and dim < 0):
            raise AssertionError(f"SplitReparam: dim must be a negative int, got {dim!r}")
        if not (isinstance(sections, list) and all(isinstance(size, int) for size in sections)):
            raise AssertionError(f"SplitReparam: sections must be a list of ints, got {sections!r}")
        self.event_dim = -dim
        self.sections = sections
        self.support_fn = support_fn

    def apply(self, msg: ReparamMessage) -> ReparamResult:
        """Draw the pieces, then the site as a point mass at their concatenation.

        :param msg: the site.
        :raises AssertionError: if the site has fewer event dims than ``-dim``, or its size
            along ``dim`` is not the sum of ``sections`` (Pyro's type), naming the site.
        """
        name = msg["name"]
        fn: Any = msg["fn"]
        value = msg["value"]
        is_observed = bool(msg["is_observed"])
        if fn.event_dim < self.event_dim:
            raise AssertionError(
                f"SplitReparam at site {name!r}: cannot split dim {-self.event_dim} of a site "
                f"with event shape {tuple(fn.event_shape)}"
            )
        split = fn.event_dim - self.event_dim
        size = fn.event_shape[split]
        if sum(self.sections) != size:
            raise AssertionError(
                f"SplitReparam at site {name!r}: sections {self.sections} do not add up to the "
                f"size {size} of dim {-self.event_dim} (event shape {tuple(fn.event_shape)})"
            )

        pieces: list[torch.Tensor | None] = [None] * len(self.sections)
        if value is not None:
            pieces = list(value.split(self.sections, -self.event_dim))  # type: ignore[no-untyped-call]  # torch leaves Tensor.split unannotated
        left, right = fn.event_shape[:split], fn.event_shape[split + 1 :]
        start = 0
        drawn: list[torch.Tensor] = []
        for i, (piece_size, piece) in enumerate(zip(self.sections, pieces)):
            support = self.support_fn(fn, slice(start, start + piece_size), -self.event_dim)
            prior = ImproperUniform(support, fn.batch_shape, left + (piece_size,) + right)
            drawn.append(sample(f"{name}_split_{i}", prior, obs=piece, infer={"is_observed": is_observed}))
            start += piece_size

        if value is None:
            value = torch.cat(broadcast_tensors_without_dim(drawn, -self.event_dim), dim=-self.event_dim)
        log_density = 0.0 if get_mask() is False else fn.log_prob(value)
        new_fn = Delta(value, log_density=log_density, event_dim=fn.event_dim)
        return {"fn": new_fn, "value": value, "is_observed": True}
