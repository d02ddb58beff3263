"""The affine map ``y = loc + scale_tril @ x`` with a lower-triangular scale."""

from __future__ import annotations

import torch
from torch.distributions.transforms import Transform

from ember.distributions import constraints

__all__ = ["LowerCholeskyAffine"]


class LowerCholeskyAffine(Transform):
    """The bijection ``y = loc + scale_tril @ x`` of vectors, with ``scale_tril`` lower triangular.

    :param loc: the ``D``-vector offset.
    :param scale_tril: the ``D x D`` lower-triangular scale, with a positive diagonal.
    :param cache_size: 0 or 1, as for every torch transform.
    :raises ValueError: when the sizes of ``loc`` and ``scale_tril`` disagree.

    >>> t = LowerCholeskyAffine(torch.zeros(2), torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    >>> t(torch.tensor([1.0, 1.0])), t.log_abs_det_jacobian(torch.zeros(2), torch.zeros(2))
    (tensor([2., 2.]), tensor(0.6931))
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True
    volume_preserving = False

    def __init__(self, loc: torch.Tensor, scale_tril: torch.Tensor, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        if scale_tril.dim() < 2 or not loc.size(-1) == scale_tril.size(-1) == scale_tril.size(-2):
            raise ValueError(
                "LowerCholeskyAffine: loc and scale_tril must be of size D and D x D, respectively "
                f"(instead: {tuple(loc.shape)}, {tuple(scale_tril.shape)})"
            )
        self.loc = loc
        self.scale_tril = scale_tril

    def with_cache(self, cache_size: int = 1) -> LowerCholeskyAffine:
        if self._cache_size == cache_size:
            return self
        return LowerCholeskyAffine(self.loc, self.scale_tril, cache_size=cache_size)

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.scale_tril, x.unsqueeze(-1)).squeeze(-1) + self.loc

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        solved: torch.Tensor = torch.linalg.solve_triangular(self.scale_tril, (y - self.loc).unsqueeze(-1), upper=False)
        return solved.squeeze(-1)

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_det = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return log_det + x.new_zeros(x.shape[:-1])
