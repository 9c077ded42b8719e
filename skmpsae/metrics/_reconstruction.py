"""Reconstruction and sparsity metrics: R^2, FVU, L0, dead latents."""

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.utils import check_array

from .._validation import FLOATS, naming

__all__ = ["dead_fraction", "fvu", "l0", "r2_score"]


def _pair(X, X_hat):
    with naming("X"):
        X = check_array(X, dtype=FLOATS, input_name="X")
    with naming("X_hat"):
        X_hat = check_array(X_hat, dtype=FLOATS, input_name="X_hat")
    if X.shape != X_hat.shape:
        raise ValueError(f"X and X_hat must have the same shape, got {X.shape} and {X_hat.shape}.")
    return X.astype(np.float64, copy=False), X_hat.astype(np.float64, copy=False)


_CENTERINGS = ("per_feature", "global")


def _total(X, centering):
    """``sum ||x - mean||^2`` with the mean of each feature or of every entry."""
    if centering not in _CENTERINGS:
        raise ValueError(f"centering must be one of {list(_CENTERINGS)}, got {centering!r}.")
    mean = X.mean(axis=0) if centering == "per_feature" else X.mean()
    return float(((X - mean) ** 2).sum())


def fvu(X: ArrayLike, X_hat: ArrayLike, *, centering: str = "per_feature") -> float:
    """Fraction of variance unexplained, ``sum ||x - x_hat||^2 / sum ||x - mean(X)||^2``.

    With ``centering="per_feature"`` the mean is taken per feature (over
    samples), ``mean(X, axis=0)``; with ``"global"`` it is the single mean of
    every entry of ``X``. When ``X`` has no variance the result is 0.0 for a
    perfect reconstruction and 1.0 otherwise, as in scikit-learn's
    ``r2_score(force_finite=True)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Original samples.
    X_hat : array-like of shape (n_samples, n_features)
        Their reconstructions, e.g. ``sae.inverse_transform(sae.transform(X))``.
    centering : {"per_feature", "global"}, default="per_feature"
        What the total variance is measured around (see :func:`r2_score`).

    Returns
    -------
    fvu : float
        Squared reconstruction error over the total variance of ``X``: 0 for
        a perfect reconstruction, 1 for predicting the mean of every feature.

    See Also
    --------
    r2_score : ``1 - fvu``.

    Examples
    --------
    >>> from skmpsae.metrics import fvu
    >>> fvu([[0.0, 0.0], [2.0, 2.0]], [[0.0, 0.0], [1.0, 1.0]])  # 2 / 4
    0.5
    """
    X, X_hat = _pair(X, X_hat)
    total = _total(X, centering)
    err = float(((X - X_hat) ** 2).sum())
    if total == 0.0:
        return 0.0 if err == 0.0 else 1.0
    return err / total


def r2_score(X: ArrayLike, X_hat: ArrayLike, *, centering: str = "per_feature") -> float:
    """Explained variance ``R^2 = 1 - fvu(X, X_hat)``, per-feature centring by default.

    ::

        per_feature:  R^2 = 1 - sum_nf (x_nf - xhat_nf)^2 / sum_nf (x_nf - mean_n x_nf)^2
        global:       R^2 = 1 - sum_nf (x_nf - xhat_nf)^2 / sum_nf (x_nf - mean_nf x_nf)^2

    The default (SPEC section 5) measures the variance around the mean
    embedding, each feature centred on its own mean. It equals scikit-learn's
    ``r2_score(X, X_hat, multioutput="variance_weighted")`` (the per-feature
    R² averaged with weights the features' variances) and is what every SAE's
    ``score(X)`` returns. ``centering="global"`` centres every entry on the
    one mean of all of ``X``, as some public SAE code computes it (a variance
    over the flattened batch); that total is larger by
    ``n_samples * sum_f (mean_f - mean)^2`` (the spread of the feature means
    around the grand mean), so the R² is higher whenever the features' means
    differ (for example embeddings with a common offset).
    It equals scikit-learn's ``r2_score(X.ravel(), X_hat.ravel())``. Say
    which one a number uses before comparing it with another library's.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Original samples.
    X_hat : array-like of shape (n_samples, n_features)
        Their reconstructions.
    centering : {"per_feature", "global"}, default="per_feature"
        Mean of each feature (over samples), or one mean of every entry.

    Returns
    -------
    r2 : float
        At most 1 (perfect reconstruction); 0 for predicting the mean of
        every feature; negative for worse than that.

    See Also
    --------
    fvu : The fraction of variance left unexplained.

    Examples
    --------
    >>> from skmpsae.metrics import r2_score
    >>> r2_score([[0.0, 0.0], [2.0, 2.0]], [[0.0, 0.0], [2.0, 1.0]])  # 1 - 1 / 4
    0.75
    >>> r2_score([[0.0, 2.0], [2.0, 4.0]], [[0.0, 2.0], [2.0, 3.0]])  # 1 - 1 / 4
    0.75
    >>> r2_score([[0.0, 2.0], [2.0, 4.0]], [[0.0, 2.0], [2.0, 3.0]], centering="global")
    0.875
    """
    return 1.0 - fvu(X, X_hat, centering=centering)


def _codes(Z):
    from .._validation import check_codes

    return check_codes(Z)  # dense, or CSR without stored zeros


def l0(Z: ArrayLike) -> float:
    """Mean number of nonzero codes per sample.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes, as returned by an SAE's ``transform``.

    Returns
    -------
    l0 : float
        The average over samples of the count of nonzero entries of each row.

    Examples
    --------
    >>> from skmpsae.metrics import l0
    >>> l0([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    1.5
    """
    Z = _codes(Z)
    if sp.issparse(Z):
        return float(np.diff(Z.indptr).mean())
    return float(np.count_nonzero(Z, axis=1).mean())


def dead_fraction(Z: ArrayLike) -> float:
    """Share of latents (columns of ``Z``) that are zero for every sample.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        Codes, as returned by an SAE's ``transform``.

    Returns
    -------
    fraction : float
        Between 0 (every latent fires at least once) and 1.

    Examples
    --------
    >>> from skmpsae.metrics import dead_fraction
    >>> dead_fraction([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    0.3333333333333333
    """
    Z = _codes(Z)
    if sp.issparse(Z):
        return float(1 - np.unique(Z.indices).size / Z.shape[1])
    return float(np.count_nonzero(~Z.any(axis=0)) / Z.shape[1])
