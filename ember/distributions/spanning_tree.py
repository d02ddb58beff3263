"""The distribution over spanning trees of a complete graph with weighted edges."""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property
from torch.types import _size

from ember.distributions.torch_distribution import TorchDistribution

__all__ = [
    "NUM_SPANNING_TREES",
    "SpanningTree",
    "enumerate_spanning_trees",
    "find_best_tree",
    "make_complete_graph",
    "sample_tree",
    "sample_tree_approx",
    "sample_tree_mcmc",
]

#: The number of spanning trees of the complete graph on ``V`` vertices (Cayley: ``V^(V-2)``).
NUM_SPANNING_TREES = [1, 1] + [v ** (v - 2) for v in range(2, 20)]


def _num_vertices(num_edges: int) -> int:
    return int(round(0.5 + (0.25 + 2 * num_edges) ** 0.5))


def make_complete_graph(num_vertices: int, backend: str = "python") -> torch.Tensor:
    """The ``(2, V(V-1)/2)`` vertex pairs ``v1 < v2`` of the complete graph, in edge-id order.

    Edge ``(v1, v2)`` has id ``v1 + v2 (v2 - 1) / 2``: ids sort edges colexicographically.

    :param num_vertices: the number of vertices, at least 2.
    :param backend: only ``"python"`` (Pyro's C++ backend is not provided).
    :raises ValueError: for fewer than 2 vertices or an unknown backend.

    >>> make_complete_graph(3)
    tensor([[0, 0, 1],
            [1, 2, 2]])
    """
    if backend != "python":
        raise ValueError(f"unknown backend: {backend!r}")
    if num_vertices < 2:
        raise ValueError("PyTorch cannot handle zero-sized multidimensional tensors")
    v2, v1 = torch.tril_indices(num_vertices, num_vertices, offset=-1)
    return torch.stack([v1, v2])


def _edges_from_ids(ids: torch.Tensor, num_vertices: int) -> torch.Tensor:
    grid = make_complete_graph(num_vertices)
    return grid[:, ids.sort().values].T.contiguous()


@torch.no_grad()
def _sample_tree_wilson(edge_logits: torch.Tensor) -> torch.Tensor:
    """An exact draw by Wilson's algorithm: loop-erased random walks with edge weights ``exp(logits)``."""
    num_vertices = _num_vertices(len(edge_logits))
    if num_vertices == 1:
        return torch.empty((0, 2), dtype=torch.long)
    grid = make_complete_graph(num_vertices)
    logits = edge_logits.new_full((num_vertices, num_vertices), -math.inf)
    logits[grid[0], grid[1]] = edge_logits
    logits[grid[1], grid[0]] = edge_logits
    probs = (logits - logits.amax(-1, keepdim=True)).exp()
    in_tree = [False] * num_vertices
    in_tree[0] = True
    successor = [0] * num_vertices
    for start in range(num_vertices):
        v = start
        while not in_tree[v]:
            successor[v] = int(torch.multinomial(probs[v], 1))
            v = successor[v]
        v = start
        while not in_tree[v]:
            in_tree[v] = True
            v = successor[v]
    ids = []
    for v in range(1, num_vertices):
        a, b = sorted((v, successor[v]))
        ids.append(a + b * (b - 1) // 2)
    return _edges_from_ids(torch.tensor(ids), num_vertices)


@torch.no_grad()
def _sample_tree_gibbs(edge_logits: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """One Gibbs sweep: resample each edge given the others (it must reconnect the two parts)."""
    num_edges = len(edges)
    if num_edges <= 1:
        return edges
    num_vertices = num_edges + 1
    grid = make_complete_graph(num_vertices)
    current = [(int(a), int(b)) for a, b in edges]
    for e in torch.randperm(num_edges).tolist():
        others = current[:e] + current[e + 1 :]
        side = torch.zeros(num_vertices, dtype=torch.bool)
        side[current[e][0]] = True
        grown = True
        while grown:
            grown = False
            for a, b in others:
                if side[a] != side[b]:
                    side[a] = side[b] = True
                    grown = True
        crossing = (side[grid[0]] != side[grid[1]]).nonzero().squeeze(-1)
        logits = edge_logits[crossing]
        pick = crossing[int(torch.multinomial((logits - logits.max()).exp(), 1))]
        current[e] = (int(grid[0, pick]), int(grid[1, pick]))
    ids = torch.tensor([a + b * (b - 1) // 2 for a, b in current])
    return _edges_from_ids(ids, num_vertices)


def sample_tree_mcmc(edge_logits: torch.Tensor, edges: torch.Tensor, backend: str = "python") -> torch.Tensor:
    """One Gibbs sweep over the edges of the tree ``edges``; it preserves the tree distribution.

    :param edge_logits: one logit per edge, in edge-id order.
    :param edges: the current ``(E, 2)`` tree.
    :param backend: only ``"python"``.
    :raises ValueError: for an unknown backend.
    """
    if backend != "python":
        raise ValueError(f"unknown backend: {backend!r}")
    return _sample_tree_gibbs(edge_logits, edges)


def sample_tree_approx(edge_logits: torch.Tensor, backend: str = "python") -> torch.Tensor:
    """A draw to start MCMC from; Ember's is exact (Wilson's algorithm), not merely approximate.

    :param edge_logits: one logit per edge, in edge-id order.
    :param backend: only ``"python"``.
    :raises ValueError: for an unknown backend.
    """
    if backend != "python":
        raise ValueError(f"unknown backend: {backend!r}")
    return _sample_tree_wilson(edge_logits)


def sample_tree(
    edge_logits: torch.Tensor,
    init_edges: torch.Tensor | None = None,
    mcmc_steps: int = 1,
    backend: str = "python",
) -> torch.Tensor:
    """Draw a spanning tree with probability proportional to ``exp(sum of its edge logits)``.

    Without ``init_edges`` the draw starts exact (Wilson's algorithm); each of ``mcmc_steps``
    Gibbs sweeps preserves the distribution, so from ``init_edges`` they move towards it.

    :param edge_logits: one logit per edge of the complete graph, in edge-id order.
    :param init_edges: an ``(E, 2)`` tree to start the Gibbs sweeps from.
    :param mcmc_steps: the number of Gibbs sweeps.
    :param backend: only ``"python"``.
    :raises ValueError: for an unknown backend.
    """
    if backend != "python":
        raise ValueError(f"unknown backend: {backend!r}")
    edges = _sample_tree_wilson(edge_logits) if init_edges is None else init_edges
    for _ in range(mcmc_steps):
        edges = _sample_tree_gibbs(edge_logits, edges)
    return edges


@torch.no_grad()
def find_best_tree(edge_logits: torch.Tensor, backend: str = "python") -> torch.Tensor:
    """The maximum-weight spanning tree, by Prim's algorithm.

    :param edge_logits: one logit per edge, in edge-id order.
    :param backend: only ``"python"``.
    :raises ValueError: for an unknown backend.
    """
    if backend != "python":
        raise ValueError(f"unknown backend: {backend!r}")
    num_vertices = _num_vertices(len(edge_logits))
    grid = make_complete_graph(num_vertices)
    reached = torch.zeros(num_vertices, dtype=torch.bool)
    first = int(edge_logits.argmax())
    reached[grid[:, first]] = True
    ids = [first]
    for _ in range(num_vertices - 2):
        crossing = (reached[grid[0]] != reached[grid[1]]).nonzero().squeeze(-1)
        best = int(crossing[edge_logits[crossing].argmax()])
        reached[grid[:, best]] = True
        ids.append(best)
    return _edges_from_ids(torch.tensor(ids, dtype=torch.long), num_vertices)


def _prufer_to_edges(sequence: tuple[int, ...], num_vertices: int) -> tuple[tuple[int, int], ...]:
    degree = [1] * num_vertices
    for v in sequence:
        degree[v] += 1
    edges = []
    for v in sequence:
        leaf = min(u for u in range(num_vertices) if degree[u] == 1)
        edges.append(tuple(sorted((leaf, v))))
        degree[leaf] -= 1
        degree[v] -= 1
    last = [u for u in range(num_vertices) if degree[u] == 1]
    edges.append((last[0], last[1]))
    edges.sort(key=lambda uv: (uv[1], uv[0]))
    return tuple((int(a), int(b)) for a, b in edges)


def enumerate_spanning_trees(num_vertices: int) -> list[tuple[tuple[int, int], ...]]:
    """All ``V^(V-2)`` spanning trees of the complete graph, each as sorted edges, in sorted order.

    :param num_vertices: the number of vertices.

    >>> enumerate_spanning_trees(3)
    [((0, 1), (0, 2)), ((0, 1), (1, 2)), ((0, 2), (1, 2))]
    """
    if num_vertices <= 1:
        return [()]
    if num_vertices == 2:
        return [((0, 1),)]
    trees = {
        _prufer_to_edges(seq, num_vertices)
        for seq in itertools.product(range(num_vertices), repeat=num_vertices - 2)
    }
    return sorted(trees)


class SpanningTree(TorchDistribution):
    """Spanning trees of the complete graph on ``V`` vertices, ``p(T)`` proportional to ``exp(sum_(e in T) logit_e)``.

    A tree is an ``(V - 1, 2)`` tensor of edges ``(v1, v2)`` with ``v1 < v2``, sorted by edge
    id (``v1 + v2 (v2 - 1) / 2``). ``log_prob`` is exact: the partition function is a
    determinant of the weighted graph Laplacian (Kirchhoff's matrix-tree theorem). ``sample``
    uses Wilson's exact algorithm, then ``mcmc_steps`` Gibbs sweeps.

    :param edge_logits: one logit per edge, shape ``(V (V - 1) / 2,)``.
    :param sampler_options: keyword arguments of :func:`sample_tree` (``mcmc_steps``,
        ``init_edges``, ``backend``).
    :param validate_args: whether to validate arguments and samples.
    :raises NotImplementedError: for CUDA tensors, as in Pyro.
    :raises ValueError: if ``edge_logits`` is not a vector of a triangular number of entries.

    >>> d = SpanningTree(torch.zeros(3))
    >>> d.log_prob(torch.tensor([[0, 1], [0, 2]])).exp()  # three equally likely trees
    tensor(0.3333)
    """

    arg_constraints = {"edge_logits": constraints.real}
    support = constraints.nonnegative_integer
    has_enumerate_support = True

    def __init__(
        self,
        edge_logits: torch.Tensor,
        sampler_options: dict[str, Any] | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if edge_logits.is_cuda:
            raise NotImplementedError("SpanningTree does not support cuda tensors")
        num_edges = len(edge_logits)
        num_vertices = _num_vertices(num_edges)
        if edge_logits.dim() != 1 or num_edges != num_vertices * (num_vertices - 1) // 2:
            raise ValueError(
                f"Expected edge_logits of shape (V * (V - 1) / 2,) for some V, but got shape "
                f"{tuple(edge_logits.shape)}"
            )
        self.edge_logits = edge_logits
        self.num_vertices = num_vertices
        self.sampler_options = {} if sampler_options is None else sampler_options
        super().__init__(torch.Size(), torch.Size((num_vertices - 1, 2)), validate_args=validate_args)

    def validate_edges(self, edges: torch.Tensor) -> None:
        """Check that ``edges`` are sorted spanning trees.

        :param edges: a batch of ``(V - 1, 2)`` edge lists.
        :raises ValueError: naming the first failed condition.
        """
        if edges.shape[-2:] != self.event_shape:
            raise ValueError(f"Invalid edges shape: {edges.shape}")
        if not bool(((edges >= 0) & (edges < self.num_vertices)).all()):
            raise ValueError(f"Invalid vertex ids:\n{edges}")
        if not bool((edges[..., 0] < edges[..., 1]).all()):
            raise ValueError(f"Vertices are not sorted in each edge:\n{edges}")
        ids = edges[..., 0] + edges[..., 1] * (edges[..., 1] - 1) // 2
        if not bool((ids[..., :-1] < ids[..., 1:]).all()):
            raise ValueError(f"Edges are not sorted colexicographically:\n{edges}")
        for tree in edges.reshape((-1,) + self.event_shape):
            adjacency = torch.eye(self.num_vertices)
            adjacency[tree[:, 0], tree[:, 1]] = 1
            adjacency[tree[:, 1], tree[:, 0]] = 1
            reach = torch.linalg.matrix_power(adjacency, max(1, self.num_vertices - 1))
            if not bool((reach > 0).all()):
                raise ValueError(f"Edges do not constitute a tree:\n{tree}")

    def _weights(self, logits: torch.Tensor) -> torch.Tensor:
        grid = make_complete_graph(self.num_vertices)
        weights = logits.new_full((self.num_vertices, self.num_vertices), -math.inf)
        weights[grid[0], grid[1]] = logits
        weights[grid[1], grid[0]] = logits
        return weights

    @lazy_property
    def log_partition_function(self) -> torch.Tensor:
        """``log sum_T exp(sum_(e in T) logit_e)``, a Laplacian determinant."""
        if self.num_vertices == 1:
            return self.edge_logits.new_zeros(())
        logits = self._weights(self.edge_logits)
        log_degree = logits.logsumexp(-1)
        # Symmetric degree normalization keeps the Laplacian well conditioned.
        half = 0.5 * log_degree
        laplacian = torch.eye(self.num_vertices, dtype=logits.dtype) - (logits - half - half[:, None]).exp()
        minor: torch.Tensor = torch.linalg.cholesky(laplacian[:-1, :-1])
        return 2 * minor.diagonal().log().sum() + log_degree[:-1].sum()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of the tree's edge logits minus the log partition function.

        :param value: a batch of ``(V - 1, 2)`` edge lists.
        """
        if self._validate_args:
            self.validate_edges(value)
        ids = value[..., 0] + value[..., 1] * (value[..., 1] - 1) // 2
        return self.edge_logits[ids].sum(-1) - self.log_partition_function

    def sample(self, sample_shape: _size = torch.Size()) -> torch.Tensor:
        """Draw trees with :func:`sample_tree` and ``sampler_options``.

        :param sample_shape: the shape of independent draws.
        """
        shape = torch.Size(sample_shape)
        draws = [sample_tree(self.edge_logits, **self.sampler_options) for _ in range(shape.numel())]
        return torch.stack(draws).reshape(shape + self.event_shape)

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """Every spanning tree, in sorted order.

        :param expand: unused: the batch shape is empty.
        """
        trees = enumerate_spanning_trees(self.num_vertices)
        return torch.tensor(trees, dtype=torch.long).reshape((len(trees),) + self.event_shape)

    @property
    def mode(self) -> torch.Tensor:
        """The maximum-weight spanning tree."""
        return find_best_tree(self.edge_logits, backend=self.sampler_options.get("backend", "python"))

    @property
    def edge_mean(self) -> torch.Tensor:
        """``(V, V)`` marginal probabilities that each edge is in the tree.

        Each is the edge's weight times the effective resistance between its ends.
        """
        weights = self._weights(self.edge_logits - self.edge_logits.max()).exp()
        laplacian = weights.sum(-1).diag_embed() - weights
        inverse: torch.Tensor = torch.linalg.pinv(laplacian + 1 / self.num_vertices)
        diagonal = inverse.diagonal()
        resistance = diagonal + diagonal[:, None] - 2 * inverse
        return resistance * weights
