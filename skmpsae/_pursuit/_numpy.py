"""Matching pursuit in plain NumPy: the reference every fast path is tested against.

Two engines share one contract (see ``skmpsae._pursuit._numba.gram_pursuit``):
``gram_pursuit`` updates precomputed correlations with rows of the Gram matrix,
``product_pursuit`` recomputes correlations with one matrix product per step and
is used when the Gram matrix would not fit the memory budget. ``naive_pursuit``
is the specification's loop written literally, one sample at a time.
"""

import numpy as np

__all__ = ["gram_pursuit", "naive_pursuit", "product_pursuit"]


def _select(C, rows, positive, stopped, last_j, min_coef):
    j = np.argmax(C if positive else np.abs(C), axis=1)
    j = np.where(stopped, last_j, j)
    a = C[rows, j]
    if positive:
        a = np.maximum(a, 0)
    if min_coef > 0:
        # The coefficient stop: a coefficient below the threshold is not added
        # and, being zero, stops the sample as a non-positive one does.
        stopped = stopped | (np.abs(a) < min_coef)
    a = np.where(stopped, np.zeros_like(a), a)
    return j, a


def _step_loop(n, n_steps, positive, correlations, update, below_tol, idx_out, coef_out,
               min_coef=0.0):
    """The steps shared by both engines; they differ in where correlations come from.

    ``correlations(stopped)`` gives the current correlations (n, n_components),
    ``update(C, j, a, stopped)`` removes the picked atoms, ``below_tol()`` (or
    None) says which samples reached the tolerance. Stopped samples repeat
    their last index with a zero coefficient, as the numba kernel records them.
    ``min_coef`` (the coefficient stop) stops a sample instead of adding a
    coefficient of magnitude below it; 0 never stops.
    """
    rows = np.arange(n)
    stopped = np.zeros(n, dtype=bool)
    last_j = np.zeros(n, dtype=np.int64)
    for t in range(n_steps):
        if below_tol is not None:
            stopped |= below_tol()
        C = correlations(stopped)
        j, a = _select(C, rows, positive, stopped, last_j, min_coef)
        idx_out[:, t] = j
        coef_out[:, t] = a
        last_j = j
        stopped |= a == 0
        update(C, j, a, stopped)
        if stopped.all():
            idx_out[:, t + 1:] = j[:, None]
            coef_out[:, t + 1:] = 0
            return


def gram_pursuit(C, G, n_steps, positive, thresh, rsq, idx_out, coef_out, min_coef=0.0):
    """Vectorised reference of the fused kernel; same arguments, same results."""
    rows = np.arange(C.shape[0])
    use_tol = thresh.shape[0] > 0

    def update(C, j, a, stopped):
        if use_tol:
            cj = C[rows, j]
            rsq[:] -= a * ((cj + cj) - a * G[j, j])
        live = np.flatnonzero(~stopped)
        C[live] -= a[live, None] * G[j[live]]

    _step_loop(C.shape[0], n_steps, positive, lambda stopped: C, update,
               (lambda: rsq <= thresh) if use_tol else None, idx_out, coef_out, min_coef)


def product_pursuit(R, D, n_steps, positive, thresh, idx_out, coef_out, min_coef=0.0):
    """Pursuit with one product ``R @ D.T`` per step; ``R`` is the residual, in place."""
    n = R.shape[0]

    def correlations(stopped):
        live = np.flatnonzero(~stopped)
        C = np.zeros((n, D.shape[0]), dtype=R.dtype)
        C[live] = R[live] @ D.T
        return C

    def update(C, j, a, stopped):
        R[:] -= a[:, None] * D[j]

    below_tol = (lambda: np.einsum("ij,ij->i", R, R) <= thresh) if thresh.shape[0] else None
    _step_loop(n, n_steps, positive, correlations, update, below_tol, idx_out, coef_out,
               min_coef)


def naive_pursuit(X, D, n_steps, bias=None, positive=True, tol=None,
                  residual_threshold=None, coef_threshold=None):
    """The specification's loop, literally: one sample and one full product per step.

    Stops a sample when ``||r||^2 <= tol * ||x - b||^2``, when ``||r||^2 <=
    residual_threshold``, or before adding a coefficient whose magnitude is
    below ``coef_threshold``. Returns dense codes (n_samples, n_components).
    Slow; for tests only.
    """
    Z = np.zeros((X.shape[0], D.shape[0]), dtype=X.dtype)
    b = np.zeros(X.shape[1], dtype=X.dtype) if bias is None else bias
    for s in range(X.shape[0]):
        r = X[s] - b
        r0 = r @ r
        for _ in range(n_steps):
            if tol is not None and r @ r <= tol * r0:
                break
            if residual_threshold is not None and r @ r <= residual_threshold:
                break
            c = D @ r
            j = int(np.argmax(c if positive else np.abs(c)))
            a = max(c[j], 0) if positive else c[j]
            if a == 0 or (coef_threshold is not None and abs(a) < coef_threshold):
                break
            Z[s, j] += a
            r = r - a * D[j]
    return Z
