"""The MP-SAE training forward pass: Gram selection, then a differentiable recompute.

Pursuit indices carry no gradient, so they are chosen without autograd by the
engine that ``_plan.choose_backend`` names for torch tensors (the numba kernel on
CPU, torch Gram updates on GPU). The
coefficients are then recomputed from the gathered atoms only:
``a_t = c0_t - sum_{s<t} a_s <d_s, d_t>`` with ``c0 = A (x - b)`` and the local
Gram ``A A^T`` of the k selected atoms, which costs O(batch * k^2 * n_features)
in batched products instead of k full products. It gives the same loss and
gradients as ``unrolled_loss``, the naive autograd loop.
"""

import numpy as np
import torch

from .._threads import spare_core_kernel, spare_core_threads, step_threads
from . import _numba, _torch
from ._core import residual_stops
from ._gram import gram_matrix
from ._plan import DEFAULT_MEMORY_BUDGET, choose_backend, plan_pursuit

__all__ = ["pursuit_loss", "recompute_residual", "select_atoms", "select_budgeted",
           "unrolled_loss"]


@torch.no_grad()
def select_atoms(D, bias, X, n_steps, positive, *, memory_budget=DEFAULT_MEMORY_BUDGET,
                 workspace=None):
    """Atom indices (batch, n_steps) of matching pursuit, with no autograd.

    Also returns the final residual correlations (batch, n_components) when
    the Gram path ran (``None`` otherwise). ``workspace``: a dict that keeps
    the numba path's Gram matrix and correlations between calls (a training
    run's steps), so that each step writes into the last one's memory; the
    correlations returned then live in it until the next call.
    """
    idx, _, C = _select(D, bias, X, n_steps, positive, memory_budget, None, None, workspace)
    return idx, C


@torch.no_grad()
def select_budgeted(D, bias, X, n_steps, positive, *, residual_threshold=None,
                    coef_threshold=None, memory_budget=DEFAULT_MEMORY_BUDGET, workspace=None):
    """Indices (batch, n_steps) and steps taken (batch,) under the budget stops.

    The stops are those of ``mp_encode`` (absolute residual, coefficient);
    ``n_steps`` is the cap. A stopped sample's later indices repeat its last
    one; ``pursuit_loss(..., steps=steps)`` gives them no coefficient.
    ``workspace`` as for ``select_atoms``.
    """
    idx, coef, _ = _select(D, bias, X, n_steps, positive, memory_budget, residual_threshold,
                           coef_threshold, workspace)
    # A step's coefficient is zero exactly when the sample stopped there.
    return idx, (coef != 0).sum(dim=1)


def _buffer(workspace, name, shape, dtype):
    """An uninitialised C-contiguous array of ``shape``, kept in ``workspace`` when given.

    A kept buffer with at least as many rows (an epoch's full batches before
    its last, shorter one) is reused through its first rows.
    """
    if workspace is None:
        return np.empty(shape, dtype=dtype)
    buf = workspace.get(name)
    if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] or \
            buf.dtype != dtype:
        buf = workspace[name] = np.empty(shape, dtype=dtype)
    return buf[:shape[0]]


def _select(D, bias, X, n_steps, positive, memory_budget, residual_threshold, coef_threshold,
            workspace=None):
    """``(idx, coef, C)`` of the selection; ``C`` as in ``select_atoms``."""
    min_coef = coef_threshold or 0.0
    R = X - bias
    n, n_features = R.shape
    backend = choose_backend("auto", device=R.device, tensors=True)
    # A batch is one chunk: of the plan, only the Gram-or-products choice applies
    # (per-step products run in torch on either device).
    plan = plan_pursuit(n, D.shape[0], n_features, n_steps, D.element_size(),
                        gram_given=False, backend=backend, memory_budget=memory_budget)
    if not plan.use_gram:
        R = R.clone()
        _, thresh = _torch.residual_stops(R, None, residual_threshold)
        idx, coef = _torch.product_pursuit(R, D, n_steps, positive, thresh, min_coef)
        return idx, coef, None
    if backend == "numba":
        # NumPy's BLAS for the products (gram_matrix's pieces or syrk) and the fused kernel.
        D_np = D.contiguous().numpy()
        n_components = D_np.shape[0]
        R_np = R.numpy()
        C = _buffer(workspace, "corr", (n, n_components), np.result_type(R_np, D_np))
        # step_threads puts the products and the kernel on one thread below 2e9
        # multiply-adds (blas_threads' own rule for the product); the Gram
        # matrix and the correlations, computed in the same pieces, take the
        # other core back while it is idle (the same bits either way).
        with step_threads(n * n_components * n_features):
            with spare_core_threads(n_components * n_components * n_features // 2):
                G = gram_matrix(D_np, out=None if workspace is None else
                                _buffer(workspace, "gram", (n_components, n_components),
                                        D_np.dtype), correlate=(R_np, C))
            idx = np.empty((n, n_steps), dtype=np.int64)
            coef = np.empty((n, n_steps), dtype=C.dtype)
            thresh, rsq = residual_stops(R_np, None, residual_threshold)
            with spare_core_kernel(n * n_components * n_steps):
                _numba.gram_pursuit(C, G, n_steps, positive, thresh, rsq, idx, coef,
                                    min_coef=min_coef)
        return torch.from_numpy(idx), torch.from_numpy(coef), torch.from_numpy(C)
    C = R @ D.T
    rsq, thresh = _torch.residual_stops(R, None, residual_threshold)
    idx, coef = _torch.gram_pursuit(C, D @ D.T, n_steps, positive, thresh, rsq, min_coef)
    return idx, coef, C


def recompute_residual(D, bias, X, idx, positive, steps=None):
    """Differentiable pursuit along fixed selections.

    Returns ``(residual, coef)``: the final residual (batch, n_features) and
    the coefficient of each step (batch, n_steps). With ``steps`` (batch,),
    steps past each sample's count add nothing.
    """
    A = D[idx]  # (batch, k, n_features)
    xc = X - bias  # (batch, n_features)
    c0 = torch.bmm(A, xc.unsqueeze(2)).squeeze(2)  # (batch, k)
    local_gram = torch.bmm(A, A.transpose(1, 2))  # (batch, k, k)
    explained = torch.zeros_like(c0)  # sum_{s<t} a_s <d_s, d_t>
    coefs = []
    for t in range(idx.shape[1]):
        a = c0[:, t] - explained[:, t]
        if positive:
            a = a.clamp_min(0)
        if steps is not None:
            a = torch.where(steps > t, a, torch.zeros_like(a))
        coefs.append(a)
        explained = explained + a.unsqueeze(1) * local_gram[:, t, :]
    coef = torch.stack(coefs, dim=1)
    residual = xc - torch.bmm(coef.unsqueeze(1), A).squeeze(1)
    return residual, coef


def unrolled_loss(D, bias, X, n_steps, positive):
    """Naive MP-SAE loss: one full product ``r @ D.T`` per step, all under autograd.

    The reference that ``recompute_residual`` is tested and benchmarked against.
    """
    r = X - bias
    rows = torch.arange(X.shape[0], device=X.device)
    for _ in range(n_steps):
        c = r @ D.T
        j = torch.argmax(c if positive else c.abs(), dim=1)
        a = c[rows, j]
        if positive:
            a = a.clamp_min(0)
        r = r - a.unsqueeze(1) * D[j]
    return (r * r).sum(dim=1).mean()


def pursuit_loss(D, bias, X, idx, positive, steps=None):
    """Mean squared residual along fixed selections, and the coefficients.

    On CPU the numba kernels of ``_train_pass_numba`` (no gathered atom tensor); on
    other devices ``recompute_residual`` under autograd. Same loss and gradients.
    ``steps`` (from ``select_budgeted``) cuts each sample's pursuit short.
    """
    if X.device.type == "cpu":
        from ._train_pass_numba import pursuit_residual_sq

        resid_sq, coef = pursuit_residual_sq(D, bias, X, idx, positive, steps)
        return resid_sq.mean(), coef
    residual, coef = recompute_residual(D, bias, X, idx, positive, steps)
    return (residual * residual).sum(dim=1).mean(), coef
