"""Compare SAEs at an equal budget, in the two accountings of the literature.

SAEs spend their sparsity budget in two ways. A TopK or matching-pursuit SAE
gives every sample the same number of codes; a threshold SAE (BatchTopK,
Matryoshka, ReLU, JumpReLU) gives flat samples few and textured ones many,
and only their *mean* is controlled. Comparing the two fairly needs one of
two accountings, and this module computes both for any fitted SAE:

- ``"per_sample"``: every sample gets exactly ``l0`` codes (MP-SAE runs
  ``l0`` steps; a linear-encoder SAE keeps its ``l0`` largest activations,
  ``transform(X, n_steps=l0)``);
- ``"mean"``: the mean number of codes per sample is ``l0``, spread as each
  SAE likes. MP-SAE stops on a global coefficient threshold
  (:meth:`~skmpsae.MatchingPursuitSAE.calibrate_budget`, at most ``2 l0``
  steps); a linear-encoder SAE keeps the activations above one global
  threshold (BatchTopK's inference rule, applied to every linear-encoder
  SAE). Both thresholds are calibrated on ``X_calibration``, rows held out
  from training and from scoring, so that the budget is not tuned on the
  rows it is measured on.

>>> from sklearn.datasets import load_digits
>>> from skmpsae import MatchingPursuitSAE, TopKSAE
>>> from skmpsae.comparison import budget_codes, r2_at_l0
>>> X = load_digits().data / 16
>>> X_train, X_val, X_test = X[:1200], X[1200:1500], X[1500:]
>>> mp = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X_train)
>>> topk = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X_train)
>>> for sae in (mp, topk):
...     r2, mean_l0 = r2_at_l0(sae, X_test, 4, accounting="mean", X_calibration=X_val)
...     print(type(sae).__name__, bool(abs(mean_l0 - 4) < 0.5))
MatchingPursuitSAE True
TopKSAE True
"""

import copy
import math
from numbers import Real

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from ._docs import fill_shared
from ._validation import check_int, naming

__all__ = ["ACCOUNTINGS", "budget_codes", "pareto_curve", "r2_at_l0"]

ACCOUNTINGS = ("per_sample", "mean")

_CHUNK = 4096


def _check_l0(l0, accounting):
    if accounting not in ACCOUNTINGS:
        raise ValueError(f"accounting must be one of {ACCOUNTINGS}, got {accounting!r}.")
    if accounting == "per_sample":
        return check_int(l0, "l0 (codes per sample, accounting='per_sample')", 1)
    if (not isinstance(l0, Real) or isinstance(l0, bool) or not math.isfinite(l0)
            or l0 <= 0):
        raise ValueError(f"l0 must be a positive number for accounting='mean', got {l0!r}.")
    return float(l0)


def _dense(Z):
    return Z.toarray() if sp.issparse(Z) else np.asarray(Z)


def _activations(est, X):
    """Each chunk of ``X``'s codes with every positive activation kept (dense)."""
    return [_dense(est.transform(X[start:start + _CHUNK], n_steps=est.n_components_))
            for start in range(0, X.shape[0], _CHUNK)]


def _threshold(values, n_rows, l0):
    """The threshold keeping ``l0`` of ``values`` per row on average (the largest left out)."""
    keep = int(round(l0 * n_rows))
    if keep >= values.size:
        return 0.0  # every positive activation: the SAE cannot spend more
    return float(np.partition(values, values.size - keep - 1)[values.size - keep - 1])


def _mean_codes(estimator, X, l0s, X_calibration):
    """Yield the codes of ``X`` at each mean budget of ``l0s`` (inputs validated).

    A linear-encoder SAE's activations of both arrays are computed once for
    all the budgets; MP-SAE calibrates a copy of itself for each.
    """
    from ._mp_sae import MatchingPursuitSAE

    if isinstance(estimator, MatchingPursuitSAE):
        for l0 in l0s:
            # Calibrate a copy: the user's estimator keeps its own budget attributes.
            est = copy.copy(estimator)
            est.calibrate_budget(X_calibration, target_l0=l0, mode="coef",
                                 n_steps=max(1, math.ceil(2 * l0)))
            yield est.transform(X, budget="calibrated")
        return
    values = np.concatenate([Z[Z > 0] for Z in _activations(estimator, X_calibration)])
    full = _activations(estimator, X)
    sparse = getattr(estimator, "sparse_output", False)
    for l0 in l0s:
        threshold = _threshold(values, X_calibration.shape[0], l0)
        chunks = [np.where(Z > threshold, Z, 0) for Z in full]
        yield (sp.vstack([sp.csr_matrix(Z) for Z in chunks], format="csr") if sparse
               else np.vstack(chunks))


def _checked_calibration(estimator, X, X_calibration):
    if X_calibration is None:
        raise ValueError("accounting='mean' calibrates a threshold on held-out rows; pass "
                         "X_calibration (rows used neither in training nor in X).")
    with naming("X_calibration"):
        X_calibration = estimator._validate_input(X_calibration)
    return estimator._validate_input(X), X_calibration


def _score(estimator, X, Z):
    from .metrics import l0 as mean_l0
    from .metrics import r2_score

    return r2_score(X, estimator.inverse_transform(Z)), mean_l0(Z)


def _fragments(l0, accounting):
    return {"budget_parameters": f"""\
    estimator : fitted SAE
        A :class:`~skmpsae.MatchingPursuitSAE` or a linear-encoder SAE
        (TopK, BatchTopK, Matryoshka, ReLU, JumpReLU). Not modified.
    X : array-like of shape (n_samples, n_features)
        Rows to encode.
{l0}    accounting : {{"per_sample", "mean"}}, default={accounting}
        See the module's description.
    X_calibration : array-like of shape (n_calibration, n_features), default=None
        Rows on which the ``"mean"`` threshold is calibrated; required for
        ``"mean"``. Hold them out from training and from ``X``.
"""}


_L0 = """\
    l0 : int or float
        The budget: codes per sample (``"per_sample"``, an int) or their mean
        over the rows (``"mean"``).
"""


def _document(l0=_L0, accounting='"per_sample"'):
    def decorate(function):
        function.__doc__ = fill_shared(function.__doc__, **_fragments(l0, accounting))
        return function
    return decorate


@_document()
def budget_codes(estimator, X: ArrayLike, l0: float, *, accounting: str = "per_sample",
                 X_calibration: ArrayLike | None = None):
    """Encode ``X`` with a fitted SAE at budget ``l0`` in the given accounting.

    Parameters
    ----------
    {budget_parameters}

    Returns
    -------
    codes : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_components)
        Sparse when the estimator's ``sparse_output`` is set. Under
        ``"mean"`` a linear-encoder SAE whose positive activations on
        ``X_calibration`` number fewer than ``l0`` per row keeps them all:
        its mean L0 is then below ``l0`` (a ReLU SAE cannot spend more than
        it activates).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import BatchTopKSAE
    >>> from skmpsae.comparison import budget_codes
    >>> X = load_digits().data / 16
    >>> sae = BatchTopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X[:1200])
    >>> budget_codes(sae, X[1500:], 3).astype(bool).sum(axis=1).max()
    np.int64(3)
    """
    l0 = _check_l0(l0, accounting)
    if accounting == "per_sample":
        return estimator.transform(X, n_steps=min(l0, estimator.n_components_))
    X, X_calibration = _checked_calibration(estimator, X, X_calibration)
    return next(_mean_codes(estimator, X, [l0], X_calibration))


@_document()
def r2_at_l0(estimator, X: ArrayLike, l0: float, *, accounting: str = "per_sample",
             X_calibration: ArrayLike | None = None) -> tuple[float, float]:
    """Measure R² and mean L0 of ``X``'s reconstruction from :func:`budget_codes`.

    Parameters
    ----------
    {budget_parameters}

    Returns
    -------
    r2 : float
        :func:`skmpsae.metrics.r2_score` of ``X`` (per-feature centring).
    l0 : float
        Mean nonzero codes per row of ``X``: under ``"mean"`` near the
        budget, not equal to it.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.comparison import r2_at_l0
    >>> X = load_digits().data / 16
    >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> r2, l0 = r2_at_l0(sae, X, 4)
    >>> round(l0)  # a repeated atom can make a step's code zero
    4
    """
    Z = budget_codes(estimator, X, l0, accounting=accounting, X_calibration=X_calibration)
    return _score(estimator, X, Z)


@_document(l0="""\
    l0s : sequence of int or float
        The budgets, as ``l0`` of :func:`budget_codes`.
""", accounting='"mean"')
def pareto_curve(estimator, X: ArrayLike, l0s, *, accounting: str = "mean",
                 X_calibration: ArrayLike | None = None) -> np.ndarray:
    """Trace R² against L0 at each budget of ``l0s``: an SAE's Pareto front.

    Parameters
    ----------
    {budget_parameters}

    Returns
    -------
    curve : ndarray of shape (len(l0s), 2)
        Columns: the mean L0 measured on ``X``, the R² (up and left is
        better).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.comparison import pareto_curve
    >>> X = load_digits().data / 16
    >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X[:1200])
    >>> curve = pareto_curve(sae, X[1500:], [2, 4, 8], X_calibration=X[1200:1500])
    >>> l0s, r2 = curve.T
    >>> bool((l0s.round() == [2, 4, 8]).all() and (np.diff(r2) > 0).all())
    True
    """
    l0s = [_check_l0(l0, accounting) for l0 in l0s]
    if accounting == "per_sample":
        points = [r2_at_l0(estimator, X, l0) for l0 in l0s]
    else:
        X, X_calibration = _checked_calibration(estimator, X, X_calibration)
        points = [_score(estimator, X, Z) for Z in _mean_codes(estimator, X, l0s, X_calibration)]
    return np.array([(sparsity, r2) for r2, sparsity in points])
