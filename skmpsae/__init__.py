"""skmpsae: sparse autoencoders as scikit-learn estimators, built around MP-SAE."""

from ._pursuit import mp_encode

__version__ = "0.1.0"

__all__ = ["MatchingPursuitSAE", "__version__", "mp_encode"]


def __getattr__(name):
    # Estimators import torch; keep ``import skmpsae`` light until one is used.
    if name == "MatchingPursuitSAE":
        from ._mp_sae import MatchingPursuitSAE

        return MatchingPursuitSAE
    raise AttributeError(f"module 'skmpsae' has no attribute {name!r}")
