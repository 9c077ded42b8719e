"""Revival of dead atoms by resampling them from poorly reconstructed samples."""

import numpy as np
import torch

from .._pursuit._train_pass import recompute_residual, select_atoms

__all__ = ["revive_atoms"]


def revive_atoms(state, X, dead, *, k, positive, batch_size, rng):
    """Point the ``dead`` atoms at residuals of samples drawn by squared error.

    Samples with large residuals are the ones the dictionary explains worst;
    their normalised residuals are directions worth an atom. Adam's moments of
    the revived rows are reset.
    """
    D, b = state.params["components"], state.params["bias"]
    n_draw = min(X.shape[0], max(batch_size, dead.size))
    rows = np.sort(rng.choice(X.shape[0], n_draw, replace=False))
    with torch.no_grad():
        xb = torch.from_numpy(np.ascontiguousarray(X[rows])).to(D.device)
        idx, _ = select_atoms(D, b, xb, k, positive)
        residual, _ = recompute_residual(D, b, xb, idx.to(D.device), positive)
        err = (residual * residual).sum(dim=1).double().cpu().numpy()
        if not np.isfinite(err).all() or err.sum() <= 0:
            return
        n_new = min(dead.size, n_draw)
        picked = rng.choice(n_draw, n_new, replace=False, p=err / err.sum())
        new = residual[torch.from_numpy(picked).to(D.device)]
        new = new / new.norm(dim=1, keepdim=True).clamp_min(1e-12)
        target = torch.from_numpy(dead[:n_new]).to(D.device)
        D[target] = new.to(D.dtype)
    state.reset_moments("components", target)
