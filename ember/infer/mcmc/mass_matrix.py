"""Mass matrices for HMC/NUTS and their adaptation, on flat vectors with one row per chain.

The *inverse* mass matrix is what is estimated (the posterior covariance). From it each adapter
gives the velocity ``M^{-1} r``, the kinetic energy ``r . M^{-1} r / 2`` and momenta drawn from
``N(0, M)`` (``r = L^{-T} eps`` where ``L L^T = M^{-1}``).
"""

from __future__ import annotations

from typing import Any

import torch

from ember.ops.arrowhead import SymmArrowhead, TriuArrowhead, sqrt, triu_inverse, triu_matvecmul
from ember.ops.welford import WelfordArrowheadCovariance, WelfordCovariance

__all__ = ["ArrowheadMassMatrix", "BlockMassMatrix"]

Shape = tuple[int, ...]


class _Block:
    def __init__(self, names: tuple[str, ...], index: torch.Tensor | None, inverse: torch.Tensor) -> None:
        self.names = names
        self.index = index  # None: the block is the whole flat vector, in order
        self.set_inverse(inverse)

    @property
    def diagonal(self) -> bool:
        return self.inverse.dim() == 2

    def set_inverse(self, inverse: torch.Tensor) -> None:
        self.version = getattr(self, "version", 0) + 1
        self.inverse = inverse
        if inverse.dim() == 2:
            self.sqrt_inverse = inverse.rsqrt()
        else:
            lower = torch.linalg.cholesky(inverse)
            eye = torch.eye(inverse.shape[-1], dtype=inverse.dtype, device=inverse.device).expand_as(inverse)
            # L^{-T}: momenta r = L^{-T} eps have covariance (L L^T)^{-1} = M.
            self.sqrt_inverse = torch.linalg.solve_triangular(lower.transpose(-1, -2), eye, upper=True)

    def velocity(self, r: torch.Tensor) -> torch.Tensor:
        if self.diagonal:
            return self.inverse * r
        return (self.inverse @ r.unsqueeze(-1)).squeeze(-1)

    def momentum(self, eps: torch.Tensor) -> torch.Tensor:
        if self.diagonal:
            return self.sqrt_inverse * eps
        return (self.sqrt_inverse @ eps.unsqueeze(-1)).squeeze(-1)


class BlockMassMatrix:
    """A block-structured mass matrix: each block of sites dense or diagonal.

    :param init_scale: the initial inverse mass matrix is ``init_scale * I``.
    """

    def __init__(self, init_scale: float = 1.0) -> None:
        self._init_scale = init_scale
        self._blocks: list[_Block] = []
        self._adapt_scheme: dict[tuple[str, ...], WelfordCovariance] = {}
        self._mass_matrix_size: dict[tuple[str, ...], int] = {}
        self._slices: dict[str, slice] = {}
        self._single = True
        self._batched = False
        self._flat_cache: tuple[tuple[int, ...], torch.Tensor] | None = None

    def bind(self, slices: dict[str, slice]) -> None:
        """Tell the adapter where each site lives in the flat vector (sorted site order)."""
        self._slices = dict(slices)

    @property
    def mass_matrix_size(self) -> dict[tuple[str, ...], int]:
        """Per block of site names, the size of its matrix."""
        return self._mass_matrix_size

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], torch.Tensor]:
        """Per block of site names, its inverse mass matrix (with a leading chain dim when
        chains run vectorized)."""
        return {b.names: b.inverse if self._batched else b.inverse[0] for b in self._blocks}

    @inverse_mass_matrix.setter
    def inverse_mass_matrix(self, value: dict[tuple[str, ...], torch.Tensor]) -> None:
        for block in self._blocks:
            if block.names in value:
                inverse = value[block.names]
                batch = block.inverse.shape[0]
                if inverse.dim() == block.inverse.dim() - 1:
                    inverse = inverse.expand((batch,) + tuple(inverse.shape))
                block.set_inverse(inverse.clone())
                if block.names in self._adapt_scheme:
                    self._adapt_scheme[block.names].reset()

    def _index(self, names: tuple[str, ...]) -> torch.Tensor | None:
        parts = [torch.arange(self._slices[n].start, self._slices[n].stop) for n in names]
        index = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
        total = sum(s.stop - s.start for s in self._slices.values())
        if index.numel() == total and bool((index == torch.arange(total)).all()):
            return None
        return index

    def configure(
        self,
        mass_matrix_shape: dict[tuple[str, ...], Shape],
        adapt_mass_matrix: bool = True,
        options: dict[str, Any] | None = None,
        num_chains: int = 1,
    ) -> None:
        """Start from ``init_scale * I`` with the given blocks.

        :param mass_matrix_shape: per tuple of site names, ``(n,)`` (diagonal) or ``(n, n)``.
        :param adapt_mass_matrix: estimate each block in the slow windows.
        :param options: ``dtype`` and ``device``.
        :param num_chains: one matrix per chain.
        """
        options = {} if options is None else options
        self._blocks, self._adapt_scheme, self._mass_matrix_size = [], {}, {}
        self._batched = num_chains > 1
        for names, shape in mass_matrix_shape.items():
            self._mass_matrix_size[names] = shape[0]
            diagonal = len(shape) == 1
            if diagonal:
                inverse = torch.full((num_chains, shape[0]), self._init_scale, **options)
            else:
                inverse = torch.eye(shape[0], **options).expand(num_chains, -1, -1) * self._init_scale
            self._blocks.append(_Block(names, self._index(names) if self._slices else None, inverse))
            if adapt_mass_matrix:
                self._adapt_scheme[names] = WelfordCovariance(diagonal=diagonal)
        self._single = len(self._blocks) == 1 and self._blocks[0].index is None

    def update(self, z: torch.Tensor, z_grad: torch.Tensor | None = None) -> None:
        """Add the flat state ``z`` (``(C, D)``) to each block's estimate."""
        for block in self._blocks:
            scheme = self._adapt_scheme.get(block.names)
            if scheme is not None:
                scheme.update(z if block.index is None else z[:, block.index])

    def end_adaptation(self) -> None:
        """Replace each adapted block by its regularised estimate."""
        for block in self._blocks:
            scheme = self._adapt_scheme.get(block.names)
            if scheme is not None:
                block.set_inverse(scheme.get_covariance(regularize=True))
                scheme.reset()

    @property
    def dense_flat(self) -> bool:
        """Whether :meth:`flat_inverse` is dense (``(C, D, D)``) rather than diagonal."""
        return bool(self._blocks) and not (self._single and self._blocks[0].diagonal)

    def flat_inverse(self) -> torch.Tensor:
        """The whole inverse mass matrix of each chain: ``(C, D)`` if diagonal, else the dense
        block-diagonal ``(C, D, D)`` (what the compiled leapfrog step takes)."""
        versions = tuple(b.version for b in self._blocks)
        if self._flat_cache is not None and self._flat_cache[0] == versions:
            return self._flat_cache[1]
        if self._single:
            flat = self._blocks[0].inverse
            if flat.dim() == 2 and self.dense_flat:
                flat = torch.diag_embed(flat)
        else:
            C = self._blocks[0].inverse.shape[0]
            D = sum(s.stop - s.start for s in self._slices.values())
            flat = torch.zeros(C, D, D, dtype=self._blocks[0].inverse.dtype)
            for block in self._blocks:
                idx = torch.arange(D) if block.index is None else block.index
                part = torch.diag_embed(block.inverse) if block.diagonal else block.inverse
                flat[:, idx[:, None], idx[None, :]] = part
        self._flat_cache = (versions, flat)
        return flat

    def _apply(self, r: torch.Tensor, momentum: bool) -> torch.Tensor:
        if self._single:
            block = self._blocks[0]
            return block.momentum(r) if momentum else block.velocity(r)
        out = r.clone()
        for block in self._blocks:
            part = r if block.index is None else r[:, block.index]
            value = block.momentum(part) if momentum else block.velocity(part)
            if block.index is None:
                out = value
            else:
                out[:, block.index] = value
        return out

    def velocity(self, r: torch.Tensor) -> torch.Tensor:
        """``M^{-1} r`` for flat momenta ``r`` (``(C, D)``)."""
        return self._apply(r, momentum=False)

    def momentum(self, eps: torch.Tensor) -> torch.Tensor:
        """Momenta with covariance ``M`` from standard normal draws ``eps`` (``(C, D)``)."""
        return self._apply(eps, momentum=True)

    def kinetic_grad(self, r: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pyro's site-keyed velocity ``M^{-1} r`` (one chain)."""
        names = sorted(r)
        flat = torch.cat([r[n].reshape(-1) for n in names])[None]
        velocity = self.velocity(flat)[0]
        out, pos = {}, 0
        for n in names:
            out[n] = velocity[pos : pos + r[n].numel()].reshape(r[n].shape)
            pos += r[n].numel()
        return out


class ArrowheadMassMatrix(BlockMassMatrix):
    """A mass matrix dense among the first ``head_size`` coordinates (and between them and the
    rest), diagonal among the others: cheap for many latent sites with a few coupled ones.

    :param head_size: the size of the dense head.
    """

    def __init__(self, head_size: int = 0) -> None:
        super().__init__()
        self.head_size = head_size
        self._arrow: list[tuple[SymmArrowhead, TriuArrowhead, TriuArrowhead]] = []
        self._welford: WelfordArrowheadCovariance | None = None
        self._names: tuple[str, ...] = ()

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], torch.Tensor]:
        """The dense inverse mass matrix of each chain (for inspection)."""
        dense = [_dense(inverse) for inverse, _, _ in self._arrow]
        return {self._names: torch.stack(dense) if self._batched else dense[0]}

    @inverse_mass_matrix.setter
    def inverse_mass_matrix(self, value: dict[tuple[str, ...], torch.Tensor]) -> None:
        raise NotImplementedError("ArrowheadMassMatrix is set from its (top, bottom_diag) estimate only")

    def configure(
        self,
        mass_matrix_shape: dict[tuple[str, ...], Shape],
        adapt_mass_matrix: bool = True,
        options: dict[str, Any] | None = None,
        num_chains: int = 1,
    ) -> None:
        """Start from the identity over all sites (the blocks are merged into one arrowhead)."""
        options = {} if options is None else options
        self._names = tuple(sorted(n for names in mass_matrix_shape for n in names))
        size = sum(shape[0] for shape in mass_matrix_shape.values())
        self._mass_matrix_size = {self._names: size}
        self._batched = num_chains > 1
        h = self.head_size
        top = torch.eye(h, size, **options)
        bottom = torch.ones(size - h, **options)
        self._arrow = [self._factor(SymmArrowhead(top, bottom)) for _ in range(num_chains)]
        self._welford = WelfordArrowheadCovariance(h) if adapt_mass_matrix else None

    @property
    def dense_flat(self) -> bool:
        """Always dense: the arrowhead is given to the compiled step as a dense matrix."""
        return True

    def flat_inverse(self) -> torch.Tensor:
        """The dense inverse mass matrix of each chain, ``(C, D, D)``."""
        if self._flat_cache is None or self._flat_cache[0] != (id(self._arrow),):
            self._flat_cache = ((id(self._arrow),), torch.stack([_dense(inverse) for inverse, _, _ in self._arrow]))
        return self._flat_cache[1]

    @staticmethod
    def _factor(inverse: SymmArrowhead) -> tuple[SymmArrowhead, TriuArrowhead, TriuArrowhead]:
        root = sqrt(inverse)
        return inverse, root, triu_inverse(root)

    def update(self, z: torch.Tensor, z_grad: torch.Tensor | None = None) -> None:
        """Add the flat state ``z`` (``(C, D)``) to the estimate."""
        if self._welford is not None:
            self._welford.update(z)

    def end_adaptation(self) -> None:
        """Replace the matrix by its regularised arrowhead estimate."""
        if self._welford is None:
            return
        top, bottom = self._welford.get_covariance(regularize=True)
        self._arrow = [self._factor(SymmArrowhead(top[c], bottom[c])) for c in range(len(self._arrow))]
        self._welford.reset()

    def velocity(self, r: torch.Tensor) -> torch.Tensor:
        """``M^{-1} r`` for flat momenta ``r`` (``(C, D)``)."""
        h = self.head_size
        rows = []
        for c, (inverse, _, _) in enumerate(self._arrow):
            head = inverse.top @ r[c]
            tail = inverse.top[:, h:].T @ r[c, :h] + inverse.bottom_diag * r[c, h:]
            rows.append(torch.cat([head, tail]))
        return torch.stack(rows)

    def momentum(self, eps: torch.Tensor) -> torch.Tensor:
        """Momenta with covariance ``M`` from standard normal draws ``eps`` (``(C, D)``)."""
        # U U^T = M^{-1} with U upper triangular, so r = U^{-T} eps has covariance M.
        return torch.stack([triu_matvecmul(inv_root, eps[c], transpose=True) for c, (_, _, inv_root) in enumerate(self._arrow)])


def _dense(x: SymmArrowhead) -> torch.Tensor:
    h = x.top.shape[0]
    n = x.top.shape[1]
    out = torch.diag(torch.cat([x.top.new_zeros(h), x.bottom_diag]))
    out[:h] = x.top
    out[:, :h] = x.top.T
    return out
