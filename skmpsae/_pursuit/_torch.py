"""Matching pursuit on torch tensors (GPU inference and the training selection).

Same contract as the NumPy engines, vectorised over the batch; selections run
under ``torch.no_grad`` because pursuit indices carry no gradient.
"""

import torch

__all__ = ["gram_pursuit", "product_pursuit"]


def _select(C, rows, positive, stopped, last_j):
    j = torch.argmax(C if positive else C.abs(), dim=1)
    j = torch.where(stopped, last_j, j)
    a = C[rows, j]
    if positive:
        a = a.clamp_min(0)
    return j, torch.where(stopped, torch.zeros_like(a), a)


@torch.no_grad()
def gram_pursuit(C, G, n_steps, positive, thresh=None, rsq=None):
    """Pursuit by Gram updates on correlations ``C`` (modified in place).

    Returns ``(idx, coef)``, each (n_samples, n_steps).
    """
    n = C.shape[0]
    rows = torch.arange(n, device=C.device)
    idx = torch.zeros((n, n_steps), dtype=torch.int64, device=C.device)
    coef = torch.zeros((n, n_steps), dtype=C.dtype, device=C.device)
    stopped = torch.zeros(n, dtype=torch.bool, device=C.device)
    last_j = torch.zeros(n, dtype=torch.int64, device=C.device)
    for t in range(n_steps):
        if thresh is not None:
            stopped |= rsq <= thresh
        j, a = _select(C, rows, positive, stopped, last_j)
        idx[:, t] = j
        coef[:, t] = a
        last_j = j
        stopped |= a == 0
        if thresh is not None:
            cj = C[rows, j]
            rsq -= a * ((cj + cj) - a * G[j, j])
        C.sub_(a[:, None] * G[j])
    return idx, coef


@torch.no_grad()
def product_pursuit(R, D, n_steps, positive, thresh=None):
    """Pursuit with one product ``R @ D.T`` per step (``R`` modified in place)."""
    n = R.shape[0]
    rows = torch.arange(n, device=R.device)
    idx = torch.zeros((n, n_steps), dtype=torch.int64, device=R.device)
    coef = torch.zeros((n, n_steps), dtype=R.dtype, device=R.device)
    stopped = torch.zeros(n, dtype=torch.bool, device=R.device)
    last_j = torch.zeros(n, dtype=torch.int64, device=R.device)
    for t in range(n_steps):
        if thresh is not None:
            stopped |= (R * R).sum(dim=1) <= thresh
        j, a = _select(R @ D.T, rows, positive, stopped, last_j)
        idx[:, t] = j
        coef[:, t] = a
        last_j = j
        stopped |= a == 0
        R.sub_(a[:, None] * D[j])
    return idx, coef
