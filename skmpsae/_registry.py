"""The package version and the registry of estimator classes.

Kept apart from the package top so that persistence and the checkpoint code
can name the version and find a class by name without importing ``skmpsae``
itself (which would be a cycle: the estimators import those modules).
"""

import importlib

__all__ = ["ESTIMATORS", "__version__", "estimator_class"]

__version__ = "0.1.0"

#: Public estimator name -> module (relative to the package) defining it.
ESTIMATORS = {
    "MatchingPursuitSAE": "._mp_sae",
    "TopKSAE": "._topk_sae",
    "BatchTopKSAE": "._topk_sae",
    "MatryoshkaSAE": "._matryoshka_sae",
    "ReLUSAE": "._relu_sae",
    "JumpReLUSAE": "._jumprelu_sae",
}


def estimator_class(name):
    """The estimator class registered as ``name``, or None when there is none."""
    module = ESTIMATORS.get(name) if isinstance(name, str) else None
    if module is None:
        return None
    return getattr(importlib.import_module(module, __package__), name)
