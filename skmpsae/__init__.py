"""skmpsae: sparse autoencoders as scikit-learn estimators, built around MP-SAE."""

from ._pursuit import mp_encode

__version__ = "0.1.0"

__all__ = [
    "BatchTopKSAE",
    "MatchingPursuitSAE",
    "MatryoshkaSAE",
    "ReLUSAE",
    "TopKSAE",
    "__version__",
    "load",
    "mp_encode",
]

_ESTIMATORS = {
    "MatchingPursuitSAE": "._mp_sae",
    "TopKSAE": "._topk_sae",
    "BatchTopKSAE": "._topk_sae",
    "MatryoshkaSAE": "._matryoshka_sae",
    "ReLUSAE": "._relu_sae",
}


def load(path):
    """Load any skmpsae estimator saved with ``estimator.save(path)``.

    Parameters
    ----------
    path : str or path-like
        Folder written by ``save``.

    Returns
    -------
    estimator : BaseSAE
        The fitted estimator; a model saved for CUDA loads on the CPU (with a
        warning) where CUDA is not available.
    """
    from ._persistence import load as _load

    return _load(path)


def __getattr__(name):
    # Estimators import torch; keep ``import skmpsae`` light until one is used.
    if name in _ESTIMATORS:
        import importlib

        return getattr(importlib.import_module(_ESTIMATORS[name], __name__), name)
    raise AttributeError(f"module 'skmpsae' has no attribute {name!r}")
