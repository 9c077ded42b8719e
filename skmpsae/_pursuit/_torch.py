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


def _step_loop(like, n_steps, positive, correlations, update, below_tol):
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
        j, a = _select(C, rows, positive, stopped, last_j)
        idx[:, t] = j
        coef[:, t] = a
        last_j = j
        stopped |= a == 0
        update(C, j, a)
    return idx, coef


@torch.no_grad()
def gram_pursuit(C, G, n_steps, positive, thresh=None, rsq=None):
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
    return _step_loop(C, n_steps, positive, lambda: C, update, below_tol)


@torch.no_grad()
def product_pursuit(R, D, n_steps, positive, thresh=None):
    """Pursuit with one product ``R @ D.T`` per step (``R`` modified in place)."""

    def update(C, j, a):
        R.sub_(a[:, None] * D[j])

    below_tol = (lambda: (R * R).sum(dim=1) <= thresh) if thresh is not None else None
    return _step_loop(R, n_steps, positive, lambda: R @ D.T, update, below_tol)
