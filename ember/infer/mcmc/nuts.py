"""The No-U-Turn Sampler: HMC whose trajectory doubles until it turns back on itself.

The tree is built iteratively, leaf by leaf, for every chain of the batch at once (chains that
have stopped are masked). Within a subtree the proposal is drawn by uniform progressive
multinomial sampling; each finished subtree replaces the proposal with probability
``min(1, w_subtree / w_tree)`` (biased progressive sampling). U-turns are checked on every
balanced sub-subtree as it completes, with a binary-counter stack of left momenta and prefix
momentum sums, so the loop holds at most ``max_tree_depth`` checkpoints.

Random numbers: at each doubling, each still-running chain draws ``2 + 2^depth`` uniforms from
its own generator (direction, subtree acceptance, one per leaf), so a chain's draws do not
depend on the other chains of its batch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch.distributions.transforms import Transform

from ember.infer.autoguide.initialization import init_to_uniform
from ember.infer.mcmc._chains import where
from ember.infer.mcmc.hmc import HMC

__all__ = ["NUTS"]

Params = dict[str, torch.Tensor]


class _LeafUpdate:
    """NUTS's per-leaf bookkeeping, recorded into the leapfrog graph: the leaf's energy error,
    uniform progressive sampling of the subtree's proposal, the subtree's momentum sum and log
    weight, the acceptance statistic and the leaf count. Works per chain (inside ``vmap``,
    scalars) and batched (``(C,)`` and ``(C, D)`` tensors)."""

    def __init__(self, max_delta: float) -> None:
        self.max_delta = max_delta

    def update(self, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        (z, r, pe, grad, kinetic, inverse, h0, sub_log_w, u, sub_z, sub_pe, sub_grad, sub_sum, running, sum_accept,
         count, diverging) = values
        velocity = inverse * r if inverse.dim() == r.dim() else (inverse @ r.unsqueeze(-1)).squeeze(-1)
        delta = pe + kinetic - h0
        delta = torch.where(torch.isnan(delta), torch.full_like(delta, math.inf), delta)
        new_log_w = torch.logaddexp(sub_log_w, -delta)
        take = (u < torch.exp(-delta - new_log_w)) & running
        row = take.unsqueeze(-1)
        return (
            delta,
            torch.where(row, z, sub_z),
            torch.where(take, pe, sub_pe),
            torch.where(row, grad, sub_grad),
            torch.where(running, new_log_w, sub_log_w),
            torch.where(running.unsqueeze(-1), sub_sum + r, sub_sum),
            sum_accept + torch.where(running, torch.exp(-delta).clamp(max=1.0), torch.zeros_like(delta)),
            count + running.to(count.dtype),
            running & (delta <= self.max_delta),
            diverging | (running & (delta > self.max_delta)),
            velocity,
        )

    def example(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        C = z.shape[0]

        def scalar() -> torch.Tensor:
            return torch.zeros(C, dtype=z.dtype)

        return (scalar(), scalar(), scalar(), torch.zeros_like(z), scalar(), torch.zeros_like(z), torch.zeros_like(z),
                torch.zeros(C, dtype=torch.bool), scalar(), scalar(), torch.zeros(C, dtype=torch.bool))


class NUTS(HMC):
    """No-U-Turn Sampler (Hoffman and Gelman; Betancourt's multinomial variant).

    Takes the arguments of :class:`~ember.infer.mcmc.hmc.HMC` except the trajectory length,
    plus:

    :param use_multinomial_sampling: draw the proposal from the whole trajectory in proportion
        to its density (``True``), or by slice sampling (``False``).
    :param max_tree_depth: at most ``2 ** max_tree_depth - 1`` leapfrog steps per sample.
    """

    def __init__(
        self,
        model: Callable[..., Any] | None = None,
        potential_fn: Callable[[Params], torch.Tensor] | None = None,
        step_size: float = 1,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        full_mass: bool | list[tuple[str, ...]] = False,
        use_multinomial_sampling: bool = True,
        transforms: Mapping[str, Transform] | None = None,
        max_plate_nesting: int | None = None,
        jit_compile: bool = False,
        jit_options: Mapping[str, Any] | None = None,
        ignore_jit_warnings: bool = False,
        target_accept_prob: float = 0.8,
        max_tree_depth: int = 10,
        init_strategy: Callable[[Any], torch.Tensor] = init_to_uniform,
    ) -> None:
        super().__init__(
            model,
            potential_fn,
            step_size,
            adapt_step_size=adapt_step_size,
            adapt_mass_matrix=adapt_mass_matrix,
            full_mass=full_mass,
            transforms=transforms,
            max_plate_nesting=max_plate_nesting,
            jit_compile=jit_compile,
            jit_options=jit_options,
            ignore_jit_warnings=ignore_jit_warnings,
            target_accept_prob=target_accept_prob,
            init_strategy=init_strategy,
        )
        if max_tree_depth < 1:
            raise ValueError(f"max_tree_depth must be >= 1, got {max_tree_depth}")
        self.use_multinomial_sampling = use_multinomial_sampling
        self._max_tree_depth = max_tree_depth

    def _step_extension(self) -> _LeafUpdate | None:
        return _LeafUpdate(self._max_sliced_energy) if self.use_multinomial_sampling else None

    def _turning(self, r_left: torch.Tensor, r_right: torch.Tensor, r_sum: torch.Tensor) -> torch.Tensor:
        velocity = self._adapter.mass_matrix_adapter.velocity
        v_left, v_right = velocity(r_left), velocity(r_right)
        return ((v_left * r_sum).sum(-1) <= 0) | ((v_right * r_sum).sum(-1) <= 0)

    def _transition(self) -> None:  # noqa: C901 - one loop, kept flat for speed
        assert self._z is not None
        C = self._num_chains
        single = C == 1
        metric = self._adapter.mass_matrix_adapter
        r0 = metric.momentum(self._normal())
        h0 = self._pe + self._kinetic(r0)
        step = self._adapter.step_sizes[:, None].to(self._pe.dtype)
        multinomial = self.use_multinomial_sampling
        if not multinomial:  # slice variable: log u = log(uniform) - h0, accept leaves above it
            log_slice = torch.log(self._uniform(1)[:, 0])
        # Tree ends (index 0: the left/backward end, 1: the right/forward end).
        ends = [[self._z, r0, self._grad], [self._z, r0, self._grad]]
        z_prop, pe_prop, grad_prop = self._z, self._pe, self._grad
        log_w = torch.zeros(C, dtype=h0.dtype)
        r_sum = r0
        active = torch.ones(C, dtype=torch.bool)
        diverging = torch.zeros(C, dtype=torch.bool)
        sum_accept = torch.zeros(C, dtype=h0.dtype)
        num_leaves = torch.zeros(C, dtype=h0.dtype)
        depth = torch.zeros(C, dtype=torch.long)
        neg_inf = torch.tensor(-math.inf, dtype=h0.dtype)
        fused = multinomial and self._flat is not None and self._flat.extension is not None
        inverse = metric.flat_inverse()
        for j in range(self._max_tree_depth):
            n_leaves = 1 << j
            u = self._uniform(2 + n_leaves, None if single else active)
            leaf_u = u[:, 2:].T.contiguous()  # one contiguous (C,) row per leaf
            forward = u[:, 0] < 0.5
            signed = torch.where(forward, 1.0, -1.0).to(h0.dtype)[:, None] * step
            if single:
                side = 1 if bool(forward) else 0
                z, r, grad = ends[side]
            else:
                z = torch.where(forward[:, None], ends[1][0], ends[0][0])
                r = torch.where(forward[:, None], ends[1][1], ends[0][1])
                grad = torch.where(forward[:, None], ends[1][2], ends[0][2])
            sub_log_w = neg_inf.expand(C).clone()
            sub_z, sub_pe, sub_grad = z_prop, pe_prop, grad_prop
            sub_sum = torch.zeros_like(r0)
            stack: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (left r, prefix sum before, size)
            running = active.clone()
            for n in range(n_leaves):
                if fused:
                    assert self._flat is not None
                    prefix = sub_sum
                    (z, r, _, grad, _, _, sub_z, sub_pe, sub_grad, sub_log_w, sub_sum, sum_accept, num_leaves,
                     running, diverging, velocity) = self._flat.extended_step(
                        z, r, grad, signed, inverse, h0, sub_log_w, leaf_u[n], sub_z, sub_pe, sub_grad, sub_sum,
                        running, sum_accept, num_leaves, diverging,
                    )
                    # Binary-counter merges; the stack holds left-end velocities (M^{-1} r).
                    stack.append((velocity, prefix, 1))
                    while len(stack) > 1 and stack[-1][2] == stack[-2][2]:
                        _, _, size = stack.pop()
                        left_v, left_prefix, _ = stack.pop()
                        rho = sub_sum - left_prefix
                        running = running & ((left_v * rho).sum(-1) > 0) & ((velocity * rho).sum(-1) > 0)
                        stack.append((left_v, left_prefix, 2 * size))
                    if not bool(running.any()):
                        break
                    continue
                z, r, pe, grad, kinetic = self._leapfrog(z, r, grad, signed)
                delta = pe + kinetic - h0
                delta = torch.where(torch.isnan(delta), math.inf, delta)
                if multinomial:
                    leaf_log_w = -delta
                    leaf_diverging = delta > self._max_sliced_energy
                else:
                    leaf_log_w = torch.where(log_slice <= -delta, 0.0, -math.inf).to(h0.dtype)
                    leaf_diverging = delta + log_slice > self._max_sliced_energy
                new_log_w = torch.logaddexp(sub_log_w, leaf_log_w)
                take = u[:, 2 + n] < (leaf_log_w - new_log_w).exp()
                sum_accept = sum_accept + torch.where(running, (-delta).exp().clamp(max=1.0), 0.0)
                num_leaves = num_leaves + running.to(h0.dtype)
                if single:
                    if bool(take):
                        sub_z, sub_pe, sub_grad = z, pe, grad
                    sub_log_w = new_log_w
                    prefix = sub_sum
                    sub_sum = sub_sum + r
                else:
                    take = take & running
                    sub_z, sub_pe, sub_grad = where(take, z, sub_z), where(take, pe, sub_pe), where(take, grad, sub_grad)
                    sub_log_w = torch.where(running, new_log_w, sub_log_w)
                    prefix = sub_sum
                    sub_sum = where(running, sub_sum + r, sub_sum)
                stop = leaf_diverging
                diverging = diverging | (leaf_diverging & running)
                stack.append((r, prefix, 1))
                while len(stack) > 1 and stack[-1][2] == stack[-2][2]:
                    _, _, size = stack.pop()
                    left_r, left_prefix, _ = stack.pop()
                    stop = stop | self._turning(left_r, r, sub_sum - left_prefix)
                    stack.append((left_r, left_prefix, 2 * size))
                running = running & ~stop
                if single:
                    if not bool(running):
                        break
                elif not bool(running.any()):
                    break
            # Chains whose subtree finished cleanly merge it; the others stop here.
            merged = running
            if single:
                if bool(merged):
                    ends[1 if bool(forward) else 0] = [z, r, grad]
                    if bool(u[0, 1] < (sub_log_w - log_w).exp()):
                        z_prop, pe_prop, grad_prop = sub_z, sub_pe, sub_grad
                    log_w = torch.logaddexp(log_w, sub_log_w)
                    r_sum = r_sum + sub_sum
                    depth = depth + 1
                    active = merged & ~self._turning(ends[0][1], ends[1][1], r_sum)
                else:
                    active = merged
            else:
                fwd = merged & forward
                bwd = merged & ~forward
                ends = [
                    [where(bwd, z, ends[0][0]), where(bwd, r, ends[0][1]), where(bwd, grad, ends[0][2])],
                    [where(fwd, z, ends[1][0]), where(fwd, r, ends[1][1]), where(fwd, grad, ends[1][2])],
                ]
                take = merged & (u[:, 1] < (sub_log_w - log_w).exp())
                z_prop, pe_prop, grad_prop = where(take, sub_z, z_prop), where(take, sub_pe, pe_prop), where(take, sub_grad, grad_prop)
                log_w = torch.where(merged, torch.logaddexp(log_w, sub_log_w), log_w)
                r_sum = where(merged, r_sum + sub_sum, r_sum)
                depth = depth + merged.to(depth.dtype)
                active = merged & ~self._turning(ends[0][1], ends[1][1], r_sum)
            if not bool(active.any()):
                break
        accept_prob = sum_accept / num_leaves.clamp(min=1.0)
        moved = ~torch.eq(pe_prop, self._pe) | torch.ne(z_prop, self._z).any(-1)
        self._z, self._pe, self._grad = z_prop, pe_prop, grad_prop
        stats = {
            "diverging": diverging.clone(),
            "energy": h0,
            "step_size": step[:, 0].clone(),
            "accept_prob": accept_prob,
            "tree_depth": depth,
            "num_steps": num_leaves.to(torch.long),
        }
        self._after_transition(accept_prob, moved, torch.where(diverging, math.inf, 0.0), stats)
