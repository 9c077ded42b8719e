"""Chunked pursuit of NumPy inputs on a torch device (the GPU inference path)."""

import numpy as np
import torch

from . import _torch

__all__ = ["pursue_torch"]


def _tensor(array, device):
    # torch.from_numpy warns on read-only arrays; those are copied instead.
    if not array.flags.writeable:
        return torch.tensor(array, device=device)
    return torch.from_numpy(array).to(device)


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pursue_torch(X, D, *, n_steps, bias, positive, tol, gram, plan, device=None):
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
        thresh = rsq = None
        if tol is not None:
            rsq = (R * R).sum(dim=1)
            thresh = tol * rsq
        if plan.use_gram:
            idx, coef = _torch.gram_pursuit(R @ Dt.T, Gt, n_steps, positive, thresh, rsq)
        else:
            idx, coef = _torch.product_pursuit(R, Dt, n_steps, positive, thresh)
        idx_parts.append(idx.cpu().numpy())
        coef_parts.append(coef.cpu().numpy())
    return np.concatenate(idx_parts), np.concatenate(coef_parts)
