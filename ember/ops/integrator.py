"""The leapfrog (velocity Verlet) integrator and potential gradients, on dicts of tensors.

These are Pyro's site-keyed functions. The MCMC kernels run the same scheme on one flat
vector (see :mod:`ember.infer.mcmc.hmc`), which saves a dict walk per step.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch

__all__ = ["potential_grad", "register_exception_handler", "velocity_verlet"]

Params = dict[str, torch.Tensor]
PotentialFn = Callable[[Params], torch.Tensor]
KineticGrad = Callable[[Params], Params]

_EXCEPTION_HANDLERS: dict[str, Callable[[Exception], bool]] = {}


def register_exception_handler(name: str, handler: Callable[[Exception], bool]) -> None:
    """Register ``handler``: an exception it returns ``True`` for, raised while computing a
    potential, makes :func:`potential_grad` answer an infinite potential instead of raising.

    :param name: a key, so registering twice replaces the handler.
    """
    _EXCEPTION_HANDLERS[name] = handler


def _singular(exception: Exception) -> bool:
    text = str(exception)
    return isinstance(exception, RuntimeError) and ("singular" in text or "positive-definite" in text)


register_exception_handler("torch_singular", _singular)


def is_handled(exception: Exception) -> bool:
    """Whether a registered handler turns ``exception`` into an infinite potential."""
    return any(handler(exception) for handler in _EXCEPTION_HANDLERS.values())


def potential_grad(potential_fn: PotentialFn, z: Mapping[str, torch.Tensor]) -> tuple[Params, torch.Tensor]:
    """The potential energy at ``z`` and its gradient with respect to each entry.

    A singular matrix met on the way (or another registered exception) gives an infinite
    potential and NaN gradients, which the samplers reject.

    :param potential_fn: maps a dict of unconstrained values to a scalar potential.
    :param z: the point.

    >>> grads, pe = potential_grad(lambda z: (z["x"] ** 2).sum() / 2, {"x": torch.tensor([1.0, 2.0])})
    >>> grads["x"], pe
    (tensor([1., 2.]), tensor(2.5000))
    """
    names = list(z)
    leaves = [z[name].detach().requires_grad_() for name in names]
    with torch.enable_grad():
        try:
            potential = potential_fn(dict(zip(names, leaves)))
        except Exception as e:
            if is_handled(e):
                nan_grads = {name: torch.full_like(leaf, float("nan")) for name, leaf in zip(names, leaves)}
                return nan_grads, leaves[0].new_tensor(float("inf"))
            raise
        if not potential.requires_grad:  # the potential does not depend on z
            return {name: torch.zeros_like(leaf) for name, leaf in zip(names, leaves)}, potential.detach()
        grads = torch.autograd.grad(potential, leaves, allow_unused=True)
    out = {name: torch.zeros_like(leaf) if g is None else g for name, leaf, g in zip(names, leaves, grads)}
    return out, potential.detach()


def velocity_verlet(
    z: Mapping[str, torch.Tensor],
    r: Mapping[str, torch.Tensor],
    potential_fn: PotentialFn,
    kinetic_grad: KineticGrad,
    step_size: float,
    num_steps: int = 1,
    z_grads: Mapping[str, torch.Tensor] | None = None,
) -> tuple[Params, Params, Params, torch.Tensor]:
    """Run ``num_steps`` leapfrog steps of size ``step_size`` from position ``z``, momentum ``r``.

    :param kinetic_grad: maps the momentum to the velocity (the inverse mass matrix times ``r``).
    :param z_grads: the potential gradient at ``z``, if already known.
    :returns: the new position, momentum, potential gradient and potential energy.

    >>> z, r, g, pe = velocity_verlet({"x": torch.tensor(1.0)}, {"x": torch.tensor(0.0)},
    ...                               lambda z: z["x"] ** 2 / 2, lambda r: r, 0.1, 10)
    >>> round(float(z["x"]), 2)  # cos(1.0) = 0.5403, up to the integrator error
    0.54
    """
    z_next = dict(z)
    r_next = dict(r)
    grads: Params
    if z_grads is None:
        grads, potential = potential_grad(potential_fn, z_next)
    else:
        grads = dict(z_grads)
    potential = torch.tensor(float("nan"))
    for _ in range(num_steps):
        for name in r_next:
            r_next[name] = r_next[name] - 0.5 * step_size * grads[name]
        velocity = kinetic_grad(r_next)
        for name in z_next:
            z_next[name] = z_next[name] + step_size * velocity[name]
        grads, potential = potential_grad(potential_fn, z_next)
        for name in r_next:
            r_next[name] = r_next[name] - 0.5 * step_size * grads[name]
    return z_next, r_next, grads, potential
