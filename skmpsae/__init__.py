"""skmpsae: sparse autoencoders as scikit-learn estimators, built around MP-SAE."""

from typing import TYPE_CHECKING

from ._codes_file import transform_to_npz
from ._model_card import push_to_hub
from ._pursuit import mp_encode
from ._registry import ESTIMATORS as _ESTIMATORS
from ._registry import __version__

if TYPE_CHECKING:  # annotations only
    from os import PathLike

    from sklearn.base import BaseEstimator

__all__ = [
    "BatchTopKSAE",
    "JumpReLUSAE",
    "MatchingPursuitSAE",
    "MatryoshkaSAE",
    "ReLUSAE",
    "TopKSAE",
    "__version__",
    "load",
    "mp_encode",
    "push_to_hub",
    "transform_to_npz",
]


def load(path: "str | PathLike") -> "BaseEstimator":
    """Load any skmpsae estimator saved with ``estimator.save(path)``.

    Parameters
    ----------
    path : str or path-like
        Folder written by ``save``.

    Returns
    -------
    estimator : BaseSAE
        The fitted estimator, of the class that saved it; a model saved for
        CUDA loads on the CPU (with a warning) where CUDA is not available.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> import skmpsae
    >>> X = load_digits().data / 16
    >>> sae = skmpsae.TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sae.save(tmp)
    ...     loaded = skmpsae.load(tmp)
    >>> type(loaded).__name__, bool(np.array_equal(loaded.transform(X), sae.transform(X)))
    ('TopKSAE', True)
    """
    from ._persistence import load as _load

    return _load(path)


def __getattr__(name):
    # Estimators import torch; keep ``import skmpsae`` light until one is used.
    if name in _ESTIMATORS:
        import importlib

        return getattr(importlib.import_module(_ESTIMATORS[name], __name__), name)
    raise AttributeError(f"module 'skmpsae' has no attribute {name!r}")
