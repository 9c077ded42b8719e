"""The whole coherence profile of a dictionary: Babel curve, per-atom Babel, near-duplicates.

:func:`~skmpsae.metrics.babel_score` gives one number, the worst atom at one
``p``. Two dictionaries with the same score can differ everywhere else: one
pair of duplicated atoms and an otherwise incoherent dictionary, or uniformly
coherent atoms. These functions read the rest of the profile from the same
blocks of the Gram matrix (never held whole), in the dictionary's dtype.
"""

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from .._validation import check_atoms
from ._coherence import _BLOCK_BYTES, _check_p

__all__ = ["babel_curve", "babel_per_atom", "near_duplicate_count"]


def _abs_gram_blocks(D):
    """Yield ``(start, |G|)`` for row blocks of ``G = D @ D.T`` with a zero diagonal."""
    n_atoms = D.shape[0]
    rows = max(1, _BLOCK_BYTES // (n_atoms * D.itemsize))
    for start in range(0, n_atoms, rows):
        G = D[start:start + rows] @ D.T  # (rows, n_atoms)
        np.abs(G, out=G)
        local = np.arange(G.shape[0])
        # A zero never displaces one of the p largest (non-negative) entries.
        G[local, start + local] = 0.0
        yield start, G


def _cumulative_top(G, p_max):
    """Per row, the cumulative sums of the ``p_max`` largest entries, largest first: float64."""
    n = G.shape[1]
    top = np.partition(G, n - p_max, axis=1)[:, n - p_max:].astype(np.float64)
    top.sort(axis=1)
    return np.cumsum(top[:, ::-1], axis=1)  # (rows, p_max)


def babel_curve(dictionary: "ArrayLike | BaseEstimator", p_max: int) -> np.ndarray:
    """Babel function ``mu_1(p)`` for every ``p`` from 1 to ``p_max``, in one pass.

    ``curve[p - 1]`` equals ``babel_score(dictionary, p)``: for each atom the
    sum of its ``p`` largest absolute cosines with the other atoms, maximised
    over atoms. The curve is non-decreasing and lies below ``p`` (each atom's
    own curve is also concave, but the atom that attains the maximum may change
    with ``p``, so their maximum need not be). Its shape tells
    apart a dictionary with a few duplicated atoms (a jump to about 1 at
    ``p = 1``, flat after) from one whose atoms all interfere a little (a
    slow steady rise).

    Each block of Gram rows is partitioned once at ``p_max`` and its top
    entries sorted, so every ``p`` costs what the largest one does.

    Parameters
    ----------
    dictionary : array-like of shape (n_atoms, n_features) or fitted SAE
        Atoms as rows (an estimator's ``components_`` is used); rows are
        scaled to unit norm, zero rows rejected.
    p_max : int
        Largest number of partners, ``1 <= p_max <= n_atoms - 1``.

    Returns
    -------
    curve : ndarray of shape (p_max,), float64
        ``curve[p - 1] = mu_1(p)``.

    See Also
    --------
    babel_score : One point of the curve.
    babel_per_atom : The per-atom values that the curve maximises.

    Examples
    --------
    >>> from skmpsae.metrics import babel_curve
    >>> D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    >>> babel_curve(D, 2).round(4)  # cos 45 deg, then twice it
    array([0.7071, 1.4142])
    """
    D = check_atoms(dictionary)
    p_max = _check_p(p_max, D.shape[0])
    curve = np.zeros(p_max)
    for _, G in _abs_gram_blocks(D):
        np.maximum(curve, _cumulative_top(G, p_max).max(axis=0), out=curve)
    return curve


def babel_per_atom(dictionary: "ArrayLike | BaseEstimator", p: int) -> np.ndarray:
    """Each atom's cumulative coherence: the sum of its ``p`` largest absolute cosines.

    The Babel score ``mu_1(p)`` is the maximum of these values; their
    distribution (median, quantiles, histogram) says whether the worst atom
    is typical or an outlier.

    Parameters
    ----------
    dictionary : array-like of shape (n_atoms, n_features) or fitted SAE
        Atoms as rows (an estimator's ``components_`` is used); rows are
        scaled to unit norm.
    p : int
        Number of other atoms summed, ``1 <= p <= n_atoms - 1``.

    Returns
    -------
    values : ndarray of shape (n_atoms,), float64
        ``values[j] = sum of the p largest |<d_i, d_j>|, i != j``; between 0
        and ``p``; ``values.max() == babel_score(dictionary, p)``.

    See Also
    --------
    babel_score : The maximum of these values.

    Examples
    --------
    >>> from skmpsae.metrics import babel_per_atom
    >>> D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    >>> babel_per_atom(D, 1).round(4)  # every atom's closest neighbour is at 45 degrees
    array([0.7071, 0.7071, 0.7071])
    >>> babel_per_atom(D, 2).round(4)
    array([0.7071, 0.7071, 1.4142])
    """
    D = check_atoms(dictionary)
    p = _check_p(p, D.shape[0])
    out = np.empty(D.shape[0])
    for start, G in _abs_gram_blocks(D):
        out[start:start + G.shape[0]] = _cumulative_top(G, p)[:, -1]
    return out


def near_duplicate_count(dictionary: "ArrayLike | BaseEstimator", threshold: float = 0.9) -> int:
    """Number of pairs of atoms whose absolute cosine exceeds ``threshold``.

    Pairs ``i < j`` with ``|<d_i, d_j>| > threshold`` after scaling rows to
    unit norm. Near-duplicated atoms split one concept's activation between
    two latents; an SAE with many of them wastes dictionary size and has an
    inflated Babel score at small ``p``. Each pair is counted once, from one
    Gram entry, so rounding cannot count it twice or not at all.

    Parameters
    ----------
    dictionary : array-like of shape (n_atoms, n_features) or fitted SAE
        Atoms as rows (an estimator's ``components_`` is used).
    threshold : float, default=0.9
        Cosine above which two atoms count as near-duplicates, in [0, 1).

    Returns
    -------
    count : int
        Between 0 and ``n_atoms * (n_atoms - 1) / 2``.

    Examples
    --------
    >>> from skmpsae.metrics import near_duplicate_count
    >>> D = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [-1.0, 0.05]]
    >>> near_duplicate_count(D)  # atoms 0, 2 and 3 point (anti-)parallel: 3 pairs
    3
    >>> near_duplicate_count(D, threshold=0.998)  # only atoms 0 and 3 (cosine 0.9988)
    1
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a float in [0, 1), got {threshold!r}; it is the "
                         "absolute cosine above which two atoms count as near-duplicates.")
    D = check_atoms(dictionary)
    cols = np.arange(D.shape[0])
    count = 0
    for start, G in _abs_gram_blocks(D):
        above = G > threshold
        above &= cols[None, :] > (start + np.arange(G.shape[0]))[:, None]  # i < j once
        count += int(np.count_nonzero(above))
    return count
