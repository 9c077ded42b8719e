"""The pursuit planner: which engine runs, with a Gram matrix or not, in chunks of how many rows.

Every caller asks here: ``mp_encode``, ``MatchingPursuitSAE`` at inference and
the training selection (``_train_pass.select_atoms``). ``choose_backend`` is
the one engine-choice rule; ``plan_pursuit`` turns a concrete engine and a
problem's shape into a ``PursuitPlan`` once per call.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["DEFAULT_MEMORY_BUDGET", "PursuitPlan", "choose_backend", "gram_fits",
           "plan_pursuit"]

#: Bytes the Gram matrix and the per-chunk workspace may take (1 GiB).
DEFAULT_MEMORY_BUDGET = 1 << 30

# Bytes of correlations per chunk: the numba kernel streams rows and only needs
# the GEMM to be efficient; the NumPy reference makes several passes per step
# and is kept nearer the cache.
_CHUNK_BYTES = {"numba": 64 << 20, "numpy": 16 << 20, "torch": 256 << 20, "cupy": 256 << 20}


class PursuitPlan(NamedTuple):
    """How a pursuit runs.

    ``backend`` is the concrete engine; ``use_gram`` says Gram updates (else
    per-step products); ``chunk_rows`` is the number of samples per chunk;
    ``fused`` says the numba kernel writes dense codes over the correlations
    in the output itself (no other buffer).
    """

    use_gram: bool
    chunk_rows: int
    backend: str = "numba"
    fused: bool = False


def _gpu_available():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def choose_backend(backend="auto", *, device=None, tensors=False):
    """The engine for ``backend``: itself when concrete, else the rule for ``"auto"``.

    On a GPU: the CUDA kernel when CuPy runs here, else torch; ``tensors``
    (the data are torch tensors, as in training) keeps torch on the GPU. On
    the CPU: the numba kernel. ``device`` (a torch device) says where to run;
    None means on a GPU when CuPy or torch sees one.
    """
    if backend != "auto":
        return backend
    from . import _cupy

    if device is None:
        on_gpu = _cupy.is_available() or _gpu_available()
    else:
        on_gpu = device.type == "cuda"
    if not on_gpu:
        return "numba"
    return "cupy" if not tensors and _cupy.is_available() else "torch"


def gram_fits(n_components, itemsize, memory_budget=DEFAULT_MEMORY_BUDGET):
    """Whether the Gram matrix of ``n_components`` atoms fits ``memory_budget`` bytes."""
    return n_components * n_components * itemsize <= memory_budget


def _rows(workspace, per_row, n_samples):
    return int(np.clip(workspace // per_row, 1, max(n_samples, 1)))


def plan_pursuit(n_samples, n_components, n_features, n_steps, itemsize, *, gram_given,
                 backend, memory_budget, dense=False, gpu_input=False):
    """The ``PursuitPlan`` of one call; ``backend`` is concrete.

    ``dense``: the caller wants dense codes (the numba Gram path then fuses
    them into the correlations). ``gpu_input``: ``X`` is already on the GPU,
    so the CUDA kernel runs whatever the Gram matrix's size. ``"cupy"`` must
    be usable: asking for it where it cannot run is an error.
    """
    if backend == "cupy":
        from ._cupy import chunk_rows, require_cupy

        require_cupy()
        # The CUDA kernel always works from the Gram matrix; past the budget the
        # torch engine's per-step products on the GPU take over (host input).
        if gpu_input or gram_given or gram_fits(n_components, itemsize, memory_budget):
            workspace = min(_CHUNK_BYTES["cupy"], max(memory_budget // 2, 1))
            rows = chunk_rows(n_samples, n_components, n_features, n_steps, itemsize,
                              workspace)
            return PursuitPlan(True, rows, "cupy")
        backend = "torch"
    gram_bytes = n_components * n_components * itemsize
    if gram_given:
        use_gram = True
    elif gram_bytes > memory_budget:
        use_gram = False
    else:
        # Building G costs n_components^2 * n_features; per-step products cost
        # (n_steps - 1) * n_samples * n_components * n_features more than one GEMM.
        use_gram = n_components < max(n_steps - 1, 0) * n_samples
    if dense and backend == "numba" and use_gram and n_steps > 0 and n_samples > 0:
        # The correlations live in the output, so a chunk's workspace is only its
        # centred samples and selections: chunks can be long (fewer, larger GEMMs).
        rows = _rows(_CHUNK_BYTES["numba"], (n_features + 2 * n_steps) * 8, n_samples)
        return PursuitPlan(True, rows, backend, fused=True)
    # A Gram matrix passed in already exists: it does not shrink the workspace
    # (a cached 16k-atom Gram of 1 GiB would otherwise leave chunks of one row).
    built = use_gram and not gram_given
    workspace = min(_CHUNK_BYTES[backend], max(memory_budget - gram_bytes * built, 1) // 2)
    rows = _rows(workspace, (n_components + n_features) * itemsize, n_samples)
    return PursuitPlan(use_gram, rows, backend)
