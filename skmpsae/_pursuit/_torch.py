"""Matching pursuit on torch tensors (GPU inference and the training selection).

Same contract as the NumPy engines, vectorised over the batch; selections run
under ``torch.no_grad`` because pursuit indices carry no gradient.
``pursue_torch`` is the chunked core's torch engine for NumPy inputs.
"""

import numpy as np
import torch

__all__ = ["gram_pursuit", "product_pursuit", "pursue_torch", "residual_stops"]


def _select(C, rows, positive, stopped, last_j, min_coef):
    j = torch.argmax(C if positive else C.abs(), dim=1)
    j = torch.where(stopped, last_j, j)
    a = C[rows, j]
    if positive:
        a = a.clamp_min(0)
    if min_coef > 0:
        stopped = stopped | (a.abs() < min_coef)
    return j, torch.where(stopped, torch.zeros_like(a), a)


def _step_loop(like, n_steps, positive, correlations, update, below_tol, min_coef):
    # Same steps as the NumPy engines' loop; returns (idx, coef).
    n, device = like.shape[0], like.device
    rows = torch.arange(n, device=device)
    idx = torch.zeros((n, n_steps), dtype=torch.int64, device=device)
    coef = torch.zeros((n, n_steps), dtype=like.dtype, device=device)
    stopped = torch.zeros(n, dtype=torch.bool, device=device)
    last_j = torch.zeros(n, dtype=torch.int64, device=device)
    for t in range(n_steps):
        if below_tol is not None:
            stopped |= below_tol()
        C = correlations()
        j, a = _select(C, rows, positive, stopped, last_j, min_coef)
        idx[:, t] = j
        coef[:, t] = a
        last_j = j
        stopped |= a == 0
        update(C, j, a)
    return idx, coef


@torch.no_grad()
def gram_pursuit(C, G, n_steps, positive, thresh=None, rsq=None, min_coef=0.0):
    """Pursuit by Gram updates on correlations ``C`` (modified in place).

    Returns ``(idx, coef)``, each (n_samples, n_steps).
    """
    rows = torch.arange(C.shape[0], device=C.device)

    def update(C, j, a):
        if thresh is not None:
            cj = C[rows, j]
            rsq.sub_(a * ((cj + cj) - a * G[j, j]))
        C.sub_(a[:, None] * G[j])

    below_tol = (lambda: rsq <= thresh) if thresh is not None else None
    return _step_loop(C, n_steps, positive, lambda: C, update, below_tol, min_coef)


@torch.no_grad()
def product_pursuit(R, D, n_steps, positive, thresh=None, min_coef=0.0):
    """Pursuit with one product ``R @ D.T`` per step (``R`` modified in place)."""

    def update(C, j, a):
        R.sub_(a[:, None] * D[j])

    below_tol = (lambda: (R * R).sum(dim=1) <= thresh) if thresh is not None else None
    return _step_loop(R, n_steps, positive, lambda: R @ D.T, update, below_tol, min_coef)


def residual_stops(R, tol, residual_threshold):
    """``(rsq, thresh)``: squared norms of ``R`` and each sample's stopping level, or Nones.

    The relative stop is ``tol * ||r||^2``, the absolute one the same array
    filled with ``residual_threshold``; with both, whichever is reached first.
    """
    if tol is None and residual_threshold is None:
        return None, None
    rsq = (R * R).sum(dim=1)
    thresh = tol * rsq if tol is not None else torch.full_like(rsq, residual_threshold)
    if tol is not None and residual_threshold is not None:
        thresh = thresh.clamp_min(residual_threshold)
    return rsq, thresh


def _tensor(array, device):
    # torch.from_numpy warns on read-only arrays; those are copied instead.
    if not array.flags.writeable:
        return torch.tensor(array, device=device)
    return torch.from_numpy(array).to(device)


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pursue_torch(X, D, *, n_steps, bias, positive, tol, gram, plan, device=None,
                 residual_threshold=None, coef_threshold=None):
    """Same results as the NumPy core, computed with torch on ``device``."""
    device = _device() if device is None else torch.device(device)
    Dt = _tensor(D, device)
    bt = None if bias is None else _tensor(bias, device)
    Gt = None
    if plan.use_gram:
        Gt = Dt @ Dt.T if gram is None else _tensor(gram, device)
    idx_parts, coef_parts = [], []
    for start in range(0, X.shape[0], plan.chunk_rows):
        R = _tensor(X[start:start + plan.chunk_rows], device)
        R = R - bt if bt is not None else R.clone()
        rsq, thresh = residual_stops(R, tol, residual_threshold)
        min_coef = coef_threshold or 0.0
        if plan.use_gram:
            idx, coef = gram_pursuit(R @ Dt.T, Gt, n_steps, positive, thresh, rsq, min_coef)
        else:
            idx, coef = product_pursuit(R, Dt, n_steps, positive, thresh, min_coef)
        idx_parts.append(idx.cpu().numpy())
        coef_parts.append(coef.cpu().numpy())
    return np.concatenate(idx_parts), np.concatenate(coef_parts)
