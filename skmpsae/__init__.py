"""skmpsae: sparse autoencoders as scikit-learn estimators, built around MP-SAE."""

from ._pursuit import mp_encode

__version__ = "0.1.0"

__all__ = ["MatchingPursuitSAE", "__version__", "load", "mp_encode"]


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
    if name == "MatchingPursuitSAE":
        from ._mp_sae import MatchingPursuitSAE

        return MatchingPursuitSAE
    raise AttributeError(f"module 'skmpsae' has no attribute {name!r}")
