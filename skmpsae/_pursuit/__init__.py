"""Matching-pursuit engines and their planner, below the estimators.

``_plan`` decides the engine, Gram use and chunking once per call;
``_core`` runs the plan in chunks over the engines ``_numpy`` (reference),
``_numba``, ``_torch`` and ``_cupy`` (CUDA kernel); ``_checks`` and
``_gpu_arrays`` validate host and GPU input for ``_mp_encode``, the public
function. ``_train_pass`` (with ``_train_pass_numba``) is the pursuit of the
MP-SAE training step.
"""

from ._mp_encode import mp_encode
from ._plan import DEFAULT_MEMORY_BUDGET

__all__ = ["DEFAULT_MEMORY_BUDGET", "mp_encode"]
