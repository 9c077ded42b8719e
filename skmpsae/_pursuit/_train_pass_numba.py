"""Differentiable pursuit along fixed selections, as numba kernels (the CPU training path).

``pursuit_residual_sq(D, bias, X, idx, positive)`` gives each sample's squared
residual norm after pursuing the atoms ``idx`` (batch, k), with the gradient
of an unrolled autograd loop. Autograd on CPU would gather a (batch, k,
n_features) tensor of atoms and run small batched products; these kernels walk
each sample's k atoms in place instead, in parallel over samples:

- forward: ``a_t = <r_{t-1}, d_t>`` (clamped at 0 when positive), ``r_t = r_{t-1} - a_t d_t``;
- backward, from ``g = dL/dr_k`` down to the first step: ``dL/da_t = -<g, d_t>``,
  ``dL/dd_t += -a_t g + dL/da_t r_{t-1}``, ``g += dL/da_t d_t`` (the last two only
  where the clamp passes gradient, ``c_t >= 0``, as torch's ``clamp_min``);
  ``dL/db = -g``. Each thread accumulates into its own copy of ``dL/dD``.
"""

import numba as nb
import numpy as np
import torch

from .._threads import kernel_threads, step_threads

__all__ = ["pursuit_residual_sq"]


@nb.njit(inline="always", fastmath=True)
def _dot(u, v):
    total = u[0] - u[0]
    for f in range(u.shape[0]):
        total += u[f] * v[f]
    return total


@nb.njit(parallel=True, fastmath=True, cache=True)
def _forward(X, bias, D, idx, steps, positive, resid_sq, corr):
    n, n_features = X.shape
    for s in nb.prange(n):
        r = X[s] - bias
        # Steps past a budget stop (steps[s] < k) add nothing: zero correlation.
        for t in range(steps[s], idx.shape[1]):
            corr[s, t] = 0
        for t in range(steps[s]):
            d = D[idx[s, t]]
            c = _dot(r, d)
            corr[s, t] = c
            a = max(c, 0) if positive else c
            for f in range(n_features):
                r[f] -= a * d[f]
        resid_sq[s] = _dot(r, r)


@nb.njit(parallel=True, fastmath=True, cache=True)
def _backward(X, bias, D, idx, steps, corr, positive, grad_out, dD_parts, db_parts):
    n, n_features = X.shape
    n_parts = dD_parts.shape[0]
    for p in nb.prange(n_parts):
        history = np.empty((idx.shape[1] + 1, n_features), X.dtype)
        dD, db = dD_parts[p], db_parts[p]
        for s in range(p * n // n_parts, (p + 1) * n // n_parts):
            n_steps = steps[s]
            history[0] = X[s] - bias
            for t in range(n_steps):
                c = corr[s, t]
                a = max(c, 0) if positive else c
                d = D[idx[s, t]]
                for f in range(n_features):
                    history[t + 1, f] = history[t, f] - a * d[f]
            g = history[n_steps] * (grad_out[s] + grad_out[s])
            for t in range(n_steps - 1, -1, -1):
                c = corr[s, t]
                a = max(c, 0) if positive else c
                j = idx[s, t]
                d = D[j]
                grad_a = -_dot(g, d)
                passes = (not positive) or c >= 0
                for f in range(n_features):
                    dD[j, f] -= a * g[f]
                    if passes:
                        dD[j, f] += grad_a * history[t, f]
                if passes:
                    for f in range(n_features):
                        g[f] += grad_a * d[f]
            for f in range(n_features):
                db[f] -= g[f]


class _PursuitResidualSq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, D, bias, X, idx, positive, steps):
        D_np, b_np, X_np = (t.detach().contiguous().numpy() for t in (D, bias, X))
        idx_np = idx.contiguous().numpy()
        if steps is None:
            steps_np = np.full(idx_np.shape[0], idx_np.shape[1], dtype=np.int64)
        else:
            steps_np = np.ascontiguousarray(steps.numpy(), dtype=np.int64)
        resid_sq = np.empty(X_np.shape[0], dtype=X_np.dtype)
        corr = np.empty(idx_np.shape, dtype=X_np.dtype)
        with step_threads(X_np.shape[0] * D_np.size), \
                kernel_threads(idx_np.size * X_np.shape[1] * 2):
            _forward(X_np, b_np, D_np, idx_np, steps_np, positive, resid_sq, corr)
        coef = np.maximum(corr, 0) if positive else corr.copy()
        ctx.arrays = (D_np, b_np, X_np, idx_np, steps_np, corr)
        ctx.positive = positive
        coef_t = torch.from_numpy(coef)
        ctx.mark_non_differentiable(coef_t)
        return torch.from_numpy(resid_sq), coef_t

    @staticmethod
    def backward(ctx, grad_resid_sq, grad_coef):
        D_np, b_np, X_np, idx_np, steps_np, corr = ctx.arrays
        grad_out = np.ascontiguousarray(grad_resid_sq.detach().numpy(), dtype=X_np.dtype)
        with step_threads(X_np.shape[0] * D_np.size), \
                kernel_threads(idx_np.size * X_np.shape[1] * 6):
            n_parts = max(1, min(nb.get_num_threads(), X_np.shape[0]))
            dD_parts = np.zeros((n_parts,) + D_np.shape, dtype=D_np.dtype)
            db_parts = np.zeros((n_parts, D_np.shape[1]), dtype=D_np.dtype)
            _backward(X_np, b_np, D_np, idx_np, steps_np, corr, ctx.positive, grad_out,
                      dD_parts, db_parts)
        # One part (a serial kernel): it is the gradient, with no 4.7 MB reduction
        # (3072 x 384 float32) to copy it.
        dD, db = ((dD_parts[0], db_parts[0]) if n_parts == 1 else
                  (dD_parts.sum(axis=0), db_parts.sum(axis=0)))
        return torch.from_numpy(dD), torch.from_numpy(db), None, None, None, None


def pursuit_residual_sq(D, bias, X, idx, positive, steps=None):
    """Squared residual norms (batch,) and coefficients (batch, k) along fixed selections.

    CPU tensors only. Differentiable with respect to ``D`` and ``bias``; the
    coefficients carry no gradient. ``steps`` (batch,) int, when given, is
    each sample's number of steps before a budget stop: later steps add
    nothing (zero coefficient).
    """
    return _PursuitResidualSq.apply(D, bias, X, idx, positive, steps)
