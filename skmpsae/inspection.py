"""Per-latent summaries of a fitted SAE, for reading its features."""

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

from ._validation import check_int, check_n_steps
from .metrics._coactivation import image_mask, modality_ratio

__all__ = ["feature_report"]


def _rows(X, start, stop):
    return X.iloc[start:stop] if hasattr(X, "iloc") else X[start:stop]


class _Accumulator:
    """Running sums and top activations of each latent over chunks of codes."""

    def __init__(self, n_components, n_top, images):
        self.count = np.zeros(n_components, dtype=np.int64)
        self.total = np.zeros(n_components)
        self.by_modality = np.zeros((2, n_components))  # image, text sums of |z|
        self.top_value = np.full((n_top, n_components), -np.inf)
        self.top_index = np.full((n_top, n_components), -1, dtype=np.int64)
        self.images = images

    def add(self, Z, start):
        A = np.abs(Z)
        self.count += np.count_nonzero(A, axis=0)
        self.total += A.sum(axis=0, dtype=np.float64)
        if self.images is not None:
            images = self.images[start:start + len(A)]
            self.by_modality += [A[images].sum(axis=0, dtype=np.float64),
                                 A[~images].sum(axis=0, dtype=np.float64)]
        self._merge_top(np.where(A > 0, A, -np.inf), start)

    def _merge_top(self, values, start):
        n_top = self.top_value.shape[0]
        rows = np.repeat(start + np.arange(len(values))[:, None], values.shape[1], axis=1)
        values = np.concatenate([self.top_value, values])
        index = np.concatenate([self.top_index, rows])
        best = np.argpartition(-values, n_top - 1, axis=0)[:n_top]
        self.top_value = np.take_along_axis(values, best, axis=0)
        self.top_index = np.take_along_axis(index, best, axis=0)

    def top_samples(self):
        order = np.lexsort((self.top_index, -self.top_value), axis=0)  # ties: first sample first
        values = np.take_along_axis(self.top_value, order, axis=0)
        index = np.take_along_axis(self.top_index, order, axis=0)
        return [index[np.isfinite(values[:, j]), j] for j in range(index.shape[1])]


def feature_report(estimator: BaseEstimator, X: ArrayLike, modality: ArrayLike | None = None, *,
                   image_label: object = None, n_top: int = 10, n_steps: int | None = None,
                   batch_size: int = 4096) -> "pandas.DataFrame":  # noqa: F821 - imported lazily
    """One row per latent: how often and how strongly it fires, and on which samples.

    ``X`` is encoded in chunks of ``batch_size`` samples, so the codes of the
    whole data set are never held at once. With ``z_i`` the code of latent
    ``i`` (absolute values, so signed codes work too) over the ``n`` samples:

    - ``frequency``: share of samples where ``z_i != 0``;
    - ``mean_activation``: mean of ``|z_i|`` over the samples where it fires
      (NaN for a latent that never fires);
    - ``energy``: mean of ``|z_i|`` over all samples, ``frequency *
      mean_activation`` (the energy of Papadimitriou et al. 2025);
    - ``modality_score`` (when ``modality`` is given): see
      :func:`skmpsae.metrics.modality_score`;
    - ``top_samples``: positions in ``X`` (0-based, whatever its index) of
      the up to ``n_top`` samples with the largest ``|z_i|``, largest first;
      only samples where the latent fires.

    Parameters
    ----------
    estimator : fitted SAE or transformer
        Anything with ``transform`` giving codes of shape
        (n_samples, n_components).
    X : array-like of shape (n_samples, n_features)
        Samples to encode (a DataFrame keeps its feature names).
    modality : array-like of shape (n_samples,), default=None
        Modality label of each sample (two distinct values), for the
        ``modality_score`` column.
    image_label : object, default=None
        Which label is the image modality (None accepts ``"image"`` and
        ``"text"``).
    n_top : int, default=10
        Top-activating samples listed per latent.
    n_steps : int, default=None
        Sparsity at inference, passed as ``transform(X, n_steps=n_steps)``.
    batch_size : int, default=4096
        Samples encoded at a time.

    Returns
    -------
    report : pandas.DataFrame
        Indexed by latent (``"latent"``, 0 to n_components - 1); sort it,
        e.g. ``report.sort_values("energy", ascending=False)``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.inspection import feature_report
    >>> X = load_digits().data / 16.0
    >>> sae = MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0).fit(X)
    >>> report = feature_report(sae, X, n_top=3)
    >>> list(report.columns)
    ['frequency', 'mean_activation', 'energy', 'top_samples']
    >>> len(report), bool(report["frequency"].between(0, 1).all())
    (32, True)
    """
    import pandas as pd

    n_top = check_int(n_top, "n_top", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    check_n_steps(n_steps)
    n_samples = len(X)
    images = None if modality is None else image_mask(modality, n_samples, image_label)
    acc = None
    for start in range(0, max(n_samples, 1), batch_size):
        chunk = _rows(X, start, start + batch_size)
        Z = (estimator.transform(chunk) if n_steps is None
             else estimator.transform(chunk, n_steps=n_steps))
        # A chunk's codes are bounded by batch_size: sparse ones are densified here.
        Z = Z.toarray() if hasattr(Z, "toarray") else np.asarray(Z)
        if acc is None:
            acc = _Accumulator(Z.shape[1], n_top, images)
        acc.add(Z, start)
    columns = {"frequency": acc.count / n_samples}
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["mean_activation"] = np.where(acc.count > 0, acc.total / acc.count, np.nan)
    columns["energy"] = acc.total / n_samples
    if images is not None:
        means = acc.by_modality / [[images.sum()], [(~images).sum()]]
        columns["modality_score"] = modality_ratio(means[0], means[1])
    columns["top_samples"] = acc.top_samples()
    return pd.DataFrame(columns, index=pd.RangeIndex(len(acc.count), name="latent"))
