"""``mp_encode``: validated public entry over the unvalidated, chunked core.

The core splits samples into chunks so that working memory stays bounded for
any number of samples, chooses Gram updates or per-step products by cost and
memory, and dispatches to an engine (NumPy reference, numba kernel, torch, the
CUDA kernel through CuPy). GPU arrays (CuPy, torch CUDA tensors) given to
``mp_encode`` are validated and encoded on their device (``_gpu_arrays``).
"""

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.utils import check_array

from .._compat import Interval, StrOptions, validate_params
from .._threads import blas_threads
from .._validation import naming
from . import _numpy
from ._gram import gram_matrix

__all__ = ["DEFAULT_MEMORY_BUDGET", "mp_encode"]

#: Bytes the Gram matrix and the per-chunk workspace may take (1 GiB).
DEFAULT_MEMORY_BUDGET = 1 << 30

# Bytes of correlations per chunk: the numba kernel streams rows and only needs
# the GEMM to be efficient; the NumPy reference makes several passes per step
# and is kept nearer the cache.
_CHUNK_BYTES = {"numba": 64 << 20, "numpy": 16 << 20, "torch": 256 << 20, "cupy": 256 << 20}
_UNIT_NORM_RTOL = 1e-3


class PursuitPlan(NamedTuple):
    """How a pursuit runs: with a Gram matrix or per-step products, in chunks of rows."""

    use_gram: bool
    chunk_rows: int


def plan_pursuit(n_samples, n_components, n_features, n_steps, itemsize, *,
                 gram_given, backend, memory_budget):
    """Choose Gram updates vs per-step products and the chunk size."""
    gram_bytes = n_components * n_components * itemsize
    if gram_given:
        use_gram = True
    elif gram_bytes > memory_budget:
        use_gram = False
    else:
        # Building G costs n_components^2 * n_features; per-step products cost
        # (n_steps - 1) * n_samples * n_components * n_features more than one GEMM.
        use_gram = n_components < max(n_steps - 1, 0) * n_samples
    workspace = min(_CHUNK_BYTES[backend], max(memory_budget - gram_bytes * use_gram, 1) // 2)
    per_row = (n_components + n_features) * itemsize
    chunk = int(np.clip(workspace // per_row, 1, max(n_samples, 1)))
    return PursuitPlan(use_gram, chunk)


def _gpu_available():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def resolve_backend(backend):
    """Map ``"auto"`` to a concrete engine for NumPy inputs.

    The CUDA kernel when CuPy runs here, else torch when it sees a GPU, else
    the numba kernel.
    """
    if backend != "auto":
        return backend
    from . import _cupy

    if _cupy.is_available():
        return "cupy"
    return "torch" if _gpu_available() else "numba"


def gpu_engine(backend, gram, n_components, itemsize, memory_budget):
    """``"torch"`` instead of ``"cupy"`` when the kernel's Gram matrix would not fit.

    The CUDA kernel always works from the Gram matrix; past ``memory_budget``
    the torch engine's per-step products on the GPU take over. CuPy must be
    usable either way: asking for it where it cannot run is an error.
    """
    if backend != "cupy":
        return backend
    from ._cupy import require_cupy

    require_cupy()
    if gram is None and n_components * n_components * itemsize > memory_budget:
        return "torch"
    return backend


def cupy_rows(n_samples, n_components, n_features, n_steps, itemsize, memory_budget):
    """Rows per chunk of the CuPy engine (its Gram matrix lives on the GPU, apart)."""
    from ._cupy import chunk_rows

    workspace = min(_CHUNK_BYTES["cupy"], max(memory_budget // 2, 1))
    return chunk_rows(n_samples, n_components, n_features, n_steps, itemsize, workspace)


def _numpy_engine(backend):
    if backend == "numba":
        from . import _numba

        return _numba.gram_pursuit
    return _numpy.gram_pursuit


def _centred_chunks(X, bias, tol, chunk_rows, writable=False):
    """Yield ``(start, stop, R, thresh, rsq)`` for each chunk of rows.

    ``R = X - bias`` (a copy when ``writable``); with ``tol``, the squared
    norms ``rsq`` and stopping levels ``thresh = tol * rsq``, else empty arrays.
    """
    empty = np.empty(0, dtype=X.dtype)
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        R = X[start:stop]
        R = R - bias if bias is not None else (R.copy() if writable else R)
        thresh, rsq = empty, empty
        if tol is not None:
            rsq = np.einsum("ij,ij->i", R, R)
            thresh = (tol * rsq).astype(X.dtype)
        yield start, stop, R, thresh, rsq


def pursue(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None,
           backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET, device=None):
    """Selections of every sample: ``(idx, coef)``, each (n_samples, n_steps).

    Unvalidated core: ``X`` and ``D`` are float arrays of one dtype, ``D`` has
    unit rows, ``backend`` is concrete; ``device`` is the torch or CuPy
    backend's device (the GPU when one is present, by default).
    """
    n, n_features = X.shape
    n_components = D.shape[0]
    backend = gpu_engine(backend, gram, n_components, X.dtype.itemsize, memory_budget)
    if backend == "cupy":
        from ._cupy import pursue_cupy

        rows = cupy_rows(n, n_components, n_features, n_steps, X.dtype.itemsize, memory_budget)
        return pursue_cupy(X, D, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                           gram=gram, rows=rows, device=device)
    idx = np.zeros((n, n_steps), dtype=np.int64)
    coef = np.zeros((n, n_steps), dtype=X.dtype)
    if n_steps == 0 or n == 0:
        return idx, coef
    plan = plan_pursuit(n, n_components, n_features, n_steps, X.dtype.itemsize,
                        gram_given=gram is not None, backend=backend,
                        memory_budget=memory_budget)
    if backend == "torch":
        from ._torch_encode import pursue_torch

        return pursue_torch(X, D, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                            gram=gram, plan=plan, device=device)
    if plan.use_gram and gram is None:
        gram = gram_matrix(D)
    engine = _numpy_engine(backend)
    for start, stop, R, thresh, rsq in _centred_chunks(X, bias, tol, plan.chunk_rows,
                                                        writable=True):
        if plan.use_gram:
            with blas_threads((stop - start) * n_components * n_features):
                C = np.ascontiguousarray(R @ D.T)
            engine(C, gram, n_steps, positive, thresh, rsq, idx[start:stop], coef[start:stop])
        else:
            _numpy.product_pursuit(R, D, n_steps, positive, thresh, idx[start:stop],
                                   coef[start:stop])
    return idx, coef


def encode(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None,
           backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET, device=None):
    """Dense codes (n_samples, n_components); same arguments as ``pursue``.

    On the numba Gram path, correlations are computed straight into the output
    and the kernel overwrites each row with its codes: no other buffer. The
    CuPy engine does the same on the GPU.
    """
    n, n_features = X.shape
    n_components = D.shape[0]
    backend = gpu_engine(backend, gram, n_components, X.dtype.itemsize, memory_budget)
    if backend == "cupy":
        from ._cupy import encode_cupy

        rows = cupy_rows(n, n_components, n_features, n_steps, X.dtype.itemsize, memory_budget)
        return encode_cupy(X, D, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                           gram=gram, rows=rows, device=device)
    plan = plan_pursuit(n, n_components, n_features, n_steps, X.dtype.itemsize,
                        gram_given=gram is not None, backend=backend,
                        memory_budget=memory_budget)
    if backend != "numba" or not plan.use_gram or n_steps == 0 or n == 0:
        idx, coef = pursue(X, D, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                           gram=gram, backend=backend, memory_budget=memory_budget,
                           device=device)
        return densify(idx, coef, n_components)
    from ._numba import gram_pursuit

    if gram is None:
        gram = gram_matrix(D)
    Z = np.empty((n, n_components), dtype=X.dtype)
    # The correlations live in the output, so a chunk's workspace is only its
    # centred samples and selections: chunks can be long (fewer, larger GEMMs).
    per_row = (n_features + 2 * n_steps) * 8
    chunk_rows = int(np.clip(_CHUNK_BYTES["numba"] // per_row, 1, n))
    for start, stop, R, thresh, rsq in _centred_chunks(X, bias, tol, chunk_rows):
        with blas_threads((stop - start) * n_components * n_features):
            np.matmul(R, D.T, out=Z[start:stop])
        idx = np.empty((stop - start, n_steps), dtype=np.int64)
        coef = np.empty((stop - start, n_steps), dtype=X.dtype)
        gram_pursuit(Z[start:stop], gram, n_steps, positive, thresh, rsq, idx, coef,
                     write_codes=True)
    return Z


def densify(idx, coef, n_components):
    """Dense codes (n_samples, n_components) from per-step selections."""
    Z = np.zeros((idx.shape[0], n_components), dtype=coef.dtype)
    if idx.size:
        from ._numba import scatter_codes

        scatter_codes(idx, coef, Z)
    return Z


def _as_float_array(value, name, dtype):
    with naming(name):
        return check_array(value, dtype=dtype, input_name=name, ensure_min_samples=1,
                           ensure_min_features=1, copy=False, order="C")


def check_dictionary_shape(shape, n_features):
    """Raise unless a dictionary of ``shape`` has ``n_features`` columns."""
    if shape[1] != n_features:
        raise ValueError(
            f"dictionary has {shape[1]} features but X has {n_features}; pass a "
            f"dictionary of shape (n_components, {n_features})."
        )


def check_unit_norms(norms):
    """Raise unless every row norm in ``norms`` (a NumPy array) is 1 within 1e-3."""
    bad = np.abs(norms - 1) > _UNIT_NORM_RTOL
    if bad.any():
        raise ValueError(
            f"dictionary rows must have unit L2 norm; {int(bad.sum())} rows do not "
            f"(norms from {norms.min():.4g} to {norms.max():.4g}). Normalise with "
            "D / np.linalg.norm(D, axis=1, keepdims=True)."
        )


def check_vector_shape(shape, name, size):
    """Raise unless ``shape`` is ``(size,)``."""
    if len(shape) != 1 or shape[0] != size:
        raise ValueError(f"{name} must have shape ({size},), got {tuple(shape)}.")


def check_gram_shape(shape, n_components):
    """Raise unless ``shape`` is that of the Gram matrix of ``n_components`` atoms."""
    if tuple(shape) != (n_components, n_components):
        raise ValueError(
            f"gram must be dictionary @ dictionary.T of shape ({n_components}, "
            f"{n_components}), got {tuple(shape)}."
        )


def check_dictionary(dictionary, dtype, n_features):
    """Validate a dictionary: 2-D, finite, ``n_features`` columns, unit rows."""
    D = _as_float_array(dictionary, "dictionary", dtype)
    check_dictionary_shape(D.shape, n_features)
    check_unit_norms(np.linalg.norm(D, axis=1))
    return D


def _check_vector(value, name, dtype, size):
    v = np.asarray(value)
    check_vector_shape(v.shape, name, size)
    return _as_float_array(v[None, :], name, dtype)[0]


def _check_gram(gram, dtype, n_components):
    G = _as_float_array(gram, "gram", dtype)
    check_gram_shape(G.shape, n_components)
    return G


@validate_params(
    {
        "X": ["array-like"],
        "dictionary": ["array-like"],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "bias": ["array-like", None],
        "positive": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "gram": ["array-like", None],
        "backend": [StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
        "memory_budget": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def mp_encode(X, dictionary, *, n_steps, bias=None, positive=True, tol=None, gram=None,
              backend="auto", memory_budget=DEFAULT_MEMORY_BUDGET):
    """Sparse codes of ``X`` by matching pursuit over a unit-norm dictionary.

    Each sample starts from the residual ``r = x - bias``; each step picks the
    atom most correlated with the residual (``argmax c`` with non-negative
    coefficients when ``positive``, ``argmax |c|`` otherwise; ties go to the
    lowest index), adds the correlation to its code and removes that atom's
    contribution from the residual. An atom may be picked again; its
    coefficients accumulate. Correlations are computed once, ``(X - bias) @
    dictionary.T``, and updated with rows of the Gram matrix, unless the Gram
    matrix would not fit ``memory_budget``, in which case each step recomputes
    them with a matrix product.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples to encode. float32 and float64 are preserved; other numeric
        types are converted to float64. A CuPy array or a torch CUDA tensor is
        encoded on its GPU by the CuPy backend and the codes stay there, in
        the same array type.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows, each of unit L2 norm (within 1e-3).
    n_steps : int
        Pursuit steps; each sample has at most ``n_steps`` nonzero codes.
    bias : array-like of shape (n_features,), default=None
        Pre-bias subtracted before encoding (the SAE's ``bias_``).
    positive : bool, default=True
        Non-negative codes: pick the largest correlation and stop a sample
        when it is not positive. ``False`` gives classic signed MP.
    tol : float, default=None
        Stop a sample once ``||r||^2 <= tol * ||x - bias||^2``.
    gram : array-like of shape (n_components, n_components), default=None
        Precomputed ``dictionary @ dictionary.T``; computed when needed.
    backend : {"auto", "numpy", "numba", "torch", "cupy"}, default="auto"
        ``"numpy"`` is the reference, ``"numba"`` the fused CPU kernel (same
        selections, same arithmetic), ``"torch"`` runs on a GPU when one is
        present, ``"cupy"`` runs a CUDA kernel (one thread block per sample,
        the Gram update and the next argmax fused; same arithmetic as the
        reference) and needs CuPy (``pip install 'skmpsae[gpu]'``) and an
        NVIDIA GPU; it works from the Gram matrix in GPU memory, and hands
        over to torch's per-step products when that matrix would exceed
        ``memory_budget`` (NumPy input). ``"auto"`` picks cupy for GPU arrays or when CuPy sees a
        GPU, else torch when torch sees one, else numba.
    memory_budget : int, default=1 GiB
        Bytes that the Gram matrix and the per-chunk workspace may use (on
        the GPU for the CuPy backend).

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)
        Sparse codes, same dtype as ``X``; ``codes @ dictionary + bias``
        reconstructs ``X``. A CuPy array (torch CUDA tensor) on ``X``'s GPU
        when ``X`` is one.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae import mp_encode
    >>> D = np.eye(3)
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=2)
    array([[3., 0., 2.]])
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=3, positive=False)
    array([[ 3., -1.,  2.]])
    """
    from ._gpu_arrays import device_array_kind, encode_device_arrays

    if device_array_kind(X) is not None:
        return encode_device_arrays(X, dictionary, n_steps=n_steps, bias=bias,
                                    positive=positive, tol=tol, gram=gram, backend=backend,
                                    memory_budget=memory_budget)
    X = _as_float_array(X, "X", [np.float64, np.float32])
    D = check_dictionary(dictionary, X.dtype, X.shape[1])
    b = None if bias is None else _check_vector(bias, "bias", X.dtype, X.shape[1])
    G = None if gram is None else _check_gram(gram, X.dtype, D.shape[0])
    return encode(X, D, n_steps=n_steps, bias=b, positive=positive, tol=tol, gram=G,
                  backend=resolve_backend(backend), memory_budget=memory_budget)
