"""Normal likelihoods that skip missing (NaN or infinite) observations."""

from __future__ import annotations

import torch

from ember.distributions._params import broadcast_tensors
from ember.distributions.torch import MultivariateNormal, Normal

__all__ = ["NanMaskedMultivariateNormal", "NanMaskedNormal"]


class NanMaskedNormal(Normal):
    """A :class:`~ember.distributions.Normal` whose ``log_prob`` is zero at non-finite values.

    Gradients stay finite: the masked entries never enter the density.

    >>> NanMaskedNormal(0.0, 1.0).log_prob(torch.tensor([0.0, float("nan")]))
    tensor([-0.9189,  0.0000])
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The normal log density at finite entries of ``value``, zero elsewhere."""
        observed = value.isfinite()
        if observed.all():
            return super().log_prob(value)
        value, observed, loc, scale = broadcast_tensors(value, observed, self.loc, self.scale)
        result = value.new_zeros(value.shape)
        if observed.any():
            marginal = Normal(loc[observed], scale[observed], validate_args=False)
            result[observed] = marginal.log_prob(value[observed])
        return result


class NanMaskedMultivariateNormal(MultivariateNormal):
    """A :class:`~ember.distributions.MultivariateNormal` that marginalizes non-finite entries.

    Each value vector is scored under the marginal normal of its finite coordinates (zero if
    none is finite). Vectors are grouped by their pattern of missing coordinates, so the cost
    grows with the number of distinct patterns.

    >>> d = NanMaskedMultivariateNormal(torch.zeros(2), torch.eye(2))
    >>> d.log_prob(torch.tensor([0.0, float("nan")]))
    tensor(-0.9189)
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The marginal log density of the finite coordinates of each value vector."""
        observed = value.isfinite()
        if observed.all():
            return super().log_prob(value)
        value, observed, loc = broadcast_tensors(value, observed, self.loc)
        size = value.shape[-1]
        cov = self.covariance_matrix.expand(loc.shape + (size,))
        result_shape = value.shape[:-1]
        rows = result_shape.numel()
        value, observed = value.reshape(rows, size), observed.reshape(rows, size)
        loc, cov = loc.reshape(rows, size), cov.reshape(rows, size, size)
        result = value.new_zeros(rows)
        patterns, which = observed.unique(dim=0, return_inverse=True)  # type: ignore[no-untyped-call]  # torch: unannotated
        for index, pattern in enumerate(patterns):
            if not pattern.any():
                continue
            selected = which == index
            marginal = MultivariateNormal(
                loc[selected][:, pattern],
                cov[selected][:, pattern][:, :, pattern],
                validate_args=False,
            )
            result[selected] = marginal.log_prob(value[selected][:, pattern])
        return result.reshape(result_shape)
