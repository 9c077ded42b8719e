"""Scorers for model selection of SAEs (``GridSearchCV(scoring=...)``).

scikit-learn's ``make_scorer`` wraps a metric of ``(y_true, y_pred)`` around
``predict``; an SAE is a transformer, scored by encoding and decoding ``X``.
These scorers follow scikit-learn's contract ``scorer(estimator, X, y=None)
-> float``, greater is better, and work for any fitted transformer with
``transform`` and ``inverse_transform`` (an SAE, or a Pipeline ending in one). A grid search
over ``k`` scored by the fraction of variance unexplained, then by two metrics
at once:

>>> from sklearn.datasets import load_digits
>>> from sklearn.model_selection import GridSearchCV
>>> from skmpsae import MatchingPursuitSAE
>>> from skmpsae.scorers import get_scorer, multimetric_scorer
>>> X = load_digits().data[:300] / 16.0
>>> sae = MatchingPursuitSAE(n_components=32, max_iter=2, random_state=0)
>>> search = GridSearchCV(sae, {"k": [2, 8]}, cv=2, scoring=get_scorer("neg_fvu")).fit(X)
>>> search.best_params_
{'k': 8}
>>> scoring = multimetric_scorer(["r2", "neg_l0"])  # one transform per split
>>> search = GridSearchCV(sae, {"k": [2, 8]}, cv=2, scoring=scoring, refit="r2").fit(X)
>>> search.cv_results_["mean_test_neg_l0"].round()
array([-2., -8.])
"""

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from . import metrics
from ._validation import check_n_steps

__all__ = ["get_scorer", "get_scorer_names", "multimetric_scorer"]


def _mse(X, Z, X_hat):
    X = np.asarray(X, dtype=np.float64)
    return float(((X - np.asarray(X_hat, dtype=np.float64)) ** 2).mean())


# name: (metric(X, Z, X_hat), sign that makes greater better, needs the reconstruction)
_SCORERS = {
    "r2": (lambda X, Z, X_hat: metrics.r2_score(X, X_hat), 1.0, True),
    "neg_fvu": (lambda X, Z, X_hat: metrics.fvu(X, X_hat), -1.0, True),
    "neg_mean_squared_error": (_mse, -1.0, True),
    "neg_l0": (lambda X, Z, X_hat: metrics.l0(Z), -1.0, False),
    "neg_dead_fraction": (lambda X, Z, X_hat: metrics.dead_fraction(Z), -1.0, False),
    "effective_rank": (lambda X, Z, X_hat: metrics.effective_rank(Z), 1.0, False),
}


def get_scorer_names() -> list[str]:
    """Return the names accepted by :func:`get_scorer` and :func:`multimetric_scorer`.

    Returns
    -------
    names : list of str
        ``"r2"`` (explained variance), ``"neg_fvu"``,
        ``"neg_mean_squared_error"`` (mean over all entries of
        ``(X - X_hat)^2``, as scikit-learn's metric), ``"neg_l0"`` (mean
        active latents), ``"neg_dead_fraction"`` (share of latents that never
        fire on the scored split) and ``"effective_rank"`` (of the latents'
        co-activation).

    Examples
    --------
    >>> from skmpsae.scorers import get_scorer_names
    >>> get_scorer_names()[:3]
    ['effective_rank', 'neg_dead_fraction', 'neg_fvu']
    """
    return sorted(_SCORERS)


def _check_names(names):
    unknown = [name for name in names if name not in _SCORERS]
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not an skmpsae scorer; choose from {get_scorer_names()}. "
            "scikit-learn's own scorer names call predict, which SAEs do not have."
        )


def _encode(estimator, X, n_steps):
    """Codes and a function giving the reconstruction (computed once, when needed)."""
    Z = estimator.transform(X) if n_steps is None else estimator.transform(X, n_steps=n_steps)
    if not sp.issparse(Z):  # sparse_output=True codes stay sparse
        Z = np.asarray(Z)  # set_output(transform="pandas") gives a DataFrame
    return Z, lambda: estimator.inverse_transform(Z)


class _SAEScorer:
    """Scores ``estimator`` on ``X`` with the metrics ``names``; a dict when ``multi``."""

    def __init__(self, names, n_steps, multi):
        self.names = list(names)
        self.n_steps = n_steps
        self.multi = multi

    def __call__(self, estimator, X, y=None):
        Z, reconstruct = _encode(estimator, X, self.n_steps)
        X_hat = None
        scores = {}
        for name in self.names:
            metric, sign, needs_reconstruction = _SCORERS[name]
            if needs_reconstruction and X_hat is None:
                X_hat = reconstruct()
            scores[name] = sign * metric(X, Z, X_hat)
        return scores if self.multi else scores[self.names[0]]

    def __repr__(self):
        n_steps = "" if self.n_steps is None else f", n_steps={self.n_steps}"
        if self.multi:
            return f"multimetric_scorer({self.names!r}{n_steps})"
        return f"get_scorer({self.names[0]!r}{n_steps})"


def get_scorer(name: str, *, n_steps: int | None = None) -> Callable[..., float]:
    """The scorer called ``name``: ``scorer(estimator, X, y=None) -> float``, greater is better.

    The scorer encodes ``X`` with ``estimator.transform``, decodes with
    ``estimator.inverse_transform`` when the metric needs the reconstruction,
    and returns the metric, negated for the ``neg_`` names so that greater is
    better. Use it as ``GridSearchCV(scoring=get_scorer("neg_fvu"))``; for
    several metrics pass a dict ``{name: get_scorer(name) for name in names}``,
    or :func:`multimetric_scorer`, which encodes once for all of them.

    Parameters
    ----------
    name : str
        One of :func:`get_scorer_names`.
    n_steps : int, default=None
        Sparsity at inference, passed as ``transform(X, n_steps=n_steps)``;
        None keeps the estimator's trained ``k`` (and works for a Pipeline).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.scorers import get_scorer
    >>> X = load_digits().data / 16.0
    >>> sae = MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0).fit(X)
    >>> get_scorer("r2")(sae, X) == sae.score(X)
    True
    >>> -6 <= get_scorer("neg_l0", n_steps=6)(sae, X) < -5  # an atom may be picked twice
    True
    """
    _check_names([name])
    check_n_steps(n_steps)
    return _SAEScorer([name], n_steps, multi=False)


def multimetric_scorer(names: Sequence[str], *, n_steps: int | None = None
                       ) -> Callable[..., dict[str, float]]:
    """One scorer for several metrics: ``scorer(estimator, X, y=None) -> dict``.

    ``GridSearchCV(scoring=multimetric_scorer(["r2", "neg_l0"]), refit="r2")``
    records ``mean_test_r2`` and ``mean_test_neg_l0``; ``X`` is encoded (and
    decoded) once per split for all the metrics, where a dict of separate
    scorers would encode once per metric.

    Parameters
    ----------
    names : list of str
        Names from :func:`get_scorer_names`, without repeats.
    n_steps : int, default=None
        Sparsity at inference (see :func:`get_scorer`).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> dict`` mapping each name to its
        score (greater is better).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.scorers import multimetric_scorer
    >>> X = load_digits().data / 16.0
    >>> sae = MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0).fit(X)
    >>> scores = multimetric_scorer(["r2", "neg_l0"])(sae, X)
    >>> sorted(scores), round(scores["neg_l0"])
    (['neg_l0', 'r2'], -4)
    """
    if isinstance(names, str) or not names:
        raise ValueError(f"names must be a non-empty list of scorer names, got {names!r}; "
                         "use get_scorer for one metric.")
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"names has repeats: {names}; give each metric once.")
    _check_names(names)
    check_n_steps(n_steps)
    return _SAEScorer(names, n_steps, multi=True)
