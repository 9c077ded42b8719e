"""The unvalidated, chunked pursuit core: plan once, then run the planned engine.

Samples are split into chunks so that working memory stays bounded for any
number of samples; each chunk goes to the engine of the plan (NumPy
reference, numba kernel, torch, the CUDA kernel through CuPy).
"""

import numpy as np

from .._products import product_nt
from .._threads import _SERIAL_KERNEL_BELOW, blas_threads, thread_pool
from . import _numpy
from ._gram import gram_matrix
from ._plan import DEFAULT_MEMORY_BUDGET, plan_pursuit

__all__ = ["densify", "encode", "pursue", "residual_stops", "run_plan"]


def _numpy_engine(backend):
    if backend == "numba":
        from . import _numba

        return _numba.gram_pursuit
    return _numpy.gram_pursuit


def residual_stops(R, tol, residual_threshold, xp=np):
    """``(thresh, rsq)``: each sample's stopping level of ``||r||^2`` and ``||r||^2``.

    The relative stop is ``tol * ||r||^2``; the absolute stop is the same
    array filled with ``residual_threshold`` (one level for every sample, so
    budget moves between samples); with both, whichever is reached first.
    Empty arrays when neither is given (the engines then run every step).
    ``xp`` is NumPy or CuPy.
    """
    if tol is None and residual_threshold is None:
        empty = xp.empty(0, dtype=R.dtype)
        return empty, empty
    rsq = xp.einsum("ij,ij->i", R, R) if xp is np else (R * R).sum(axis=1)
    if tol is None:
        return xp.full(R.shape[0], residual_threshold, dtype=R.dtype), rsq
    thresh = (tol * rsq).astype(R.dtype)
    if residual_threshold is not None:
        thresh = xp.maximum(thresh, R.dtype.type(residual_threshold))
    return thresh, rsq


def _centred_chunks(X, bias, tol, chunk_rows, writable=False, residual_threshold=None):
    """Yield ``(start, stop, R, thresh, rsq)`` for each chunk of rows.

    ``R = X - bias`` (a copy when ``writable``); ``thresh, rsq`` from
    ``residual_stops``.
    """
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        yield (start, stop, *_centred(X[start:stop], bias, tol, writable, residual_threshold))


def _centred(X, bias, tol, writable, residual_threshold):
    """``(R, thresh, rsq)`` of the rows ``X``: ``R = X - bias`` (a copy when ``writable``)."""
    R = X - bias if bias is not None else (X.copy() if writable else X)
    return (R, *residual_stops(R, tol, residual_threshold))


def _selections(X, D, plan, *, n_steps, bias, positive, tol, gram, device,
                residual_threshold=None, coef_threshold=None):
    """``(idx, coef)`` on the host for the NumPy, numba and torch engines."""
    n, n_features = X.shape
    n_components = D.shape[0]
    idx = np.zeros((n, n_steps), dtype=np.int64)
    coef = np.zeros((n, n_steps), dtype=X.dtype)
    if n_steps == 0 or n == 0:
        return idx, coef
    if plan.backend == "torch":
        from ._torch import pursue_torch

        return pursue_torch(X, D, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                            gram=gram, plan=plan, device=device,
                            residual_threshold=residual_threshold,
                            coef_threshold=coef_threshold)
    if plan.use_gram and gram is None:
        gram = gram_matrix(D)
    engine = _numpy_engine(plan.backend)
    min_coef = coef_threshold or 0.0
    for start, stop, R, thresh, rsq in _centred_chunks(X, bias, tol, plan.chunk_rows, True,
                                                        residual_threshold):
        if plan.use_gram:
            with blas_threads((stop - start) * n_components * n_features):
                # The numba engines' product (``_products``): the same bits.
                C = product_nt(R, D)
            engine(C, gram, n_steps, positive, thresh, rsq, idx[start:stop], coef[start:stop],
                   min_coef=min_coef)
        else:
            _numpy.product_pursuit(R, D, n_steps, positive, thresh, idx[start:stop],
                                   coef[start:stop], min_coef)
    return idx, coef


def _fused_codes(X, D, plan, *, n_steps, bias, positive, tol, gram, residual_threshold=None,
                 coef_threshold=None):
    """Dense codes by the numba kernel written over correlations computed into the output."""
    from ._numba import gram_pursuit

    n_components, n_features = D.shape
    if gram is None:
        gram = gram_matrix(D)
    Z = np.empty((X.shape[0], n_components), dtype=X.dtype)
    workers = _pipeline_workers(X.shape[0], n_components, n_steps)
    if workers > 1:
        _pipelined_codes(X, D, Z, workers, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                         gram=gram, residual_threshold=residual_threshold,
                         coef_threshold=coef_threshold)
        return Z
    for start, stop, R, thresh, rsq in _centred_chunks(X, bias, tol, plan.chunk_rows, False,
                                                        residual_threshold):
        with blas_threads((stop - start) * n_components * n_features):
            product_nt(R, D, Z[start:stop])
        idx = np.empty((stop - start, n_steps), dtype=np.int64)
        coef = np.empty((stop - start, n_steps), dtype=X.dtype)
        gram_pursuit(Z[start:stop], gram, n_steps, positive, thresh, rsq, idx, coef,
                     write_codes=True, min_coef=coef_threshold or 0.0)
    return Z


# Rows per piece of the pipelined encoding: each piece's product and pursuit
# run on one thread. About four pieces per thread balance the threads; fewer
# rows than 128 repack the dictionary for too little product, more than 1024
# add workspace for nothing.
_PIECE_ROWS = (128, 1024)


def _piece_rows(n_samples, workers):
    return int(np.clip(-(-n_samples // (4 * workers)), *_PIECE_ROWS))


def _pipeline_workers(n_samples, n_components, n_steps):
    """Threads for ``_pipelined_codes``: numba's thread count, 1 for small problems."""
    import numba

    if n_samples * n_components * n_steps < _SERIAL_KERNEL_BELOW:
        return 1
    return min(numba.get_num_threads(), -(-n_samples // _PIECE_ROWS[0]))


def _pipelined_codes(X, D, Z, workers, *, n_steps, bias, positive, tol, gram,
                     residual_threshold, coef_threshold):
    """Fill ``Z`` with dense codes, pieces of rows shared by ``workers`` Python threads.

    Each thread computes its piece's correlations by a one-thread product and
    runs the serial kernel on them (both release the GIL). A product on all
    BLAS threads followed by the parallel kernel loses the cores to OpenBLAS
    workers that keep spinning after the product: measured on 2 cores, the
    kernel then took 0.076 s against 0.039 s after a pause (2048 x 4096, k=32).
    """
    from ._numba import gram_pursuit_serial

    n = X.shape[0]
    rows = _piece_rows(n, workers)
    min_coef = coef_threshold or 0.0

    def piece(start):
        stop = min(start + rows, n)
        R, thresh, rsq = _centred(X[start:stop], bias, tol, False, residual_threshold)
        product_nt(R, D, Z[start:stop])
        idx = np.empty((stop - start, n_steps), dtype=np.int64)
        coef = np.empty((stop - start, n_steps), dtype=X.dtype)
        gram_pursuit_serial(Z[start:stop], gram, n_steps, positive, thresh, rsq, idx, coef,
                            write_codes=True, min_coef=min_coef)

    with blas_threads(0):
        for _ in thread_pool(workers).map(piece, range(0, n, rows)):
            pass


def run_plan(X, D, plan, *, n_steps, bias=None, positive=True, tol=None, gram=None,
             device=None, dense=True, residual_threshold=None, coef_threshold=None):
    """Run ``plan``: dense codes when ``dense``, else the selections ``(idx, coef)``.

    Budget modes: ``tol`` (relative) and ``residual_threshold`` (absolute)
    stop a sample once its squared residual norm reaches them;
    ``coef_threshold`` stops it before a coefficient of smaller magnitude.

    ``X``, ``D``, ``bias`` and ``gram`` are validated arrays of one float
    dtype (CuPy arrays for the CUDA kernel on GPU input); ``device`` is the
    torch or CuPy engine's device (the GPU when one is present, by default).
    """
    kw = dict(n_steps=n_steps, bias=bias, positive=positive, tol=tol, gram=gram,
              residual_threshold=residual_threshold, coef_threshold=coef_threshold)
    if plan.backend == "cupy":
        from . import _cupy

        run = _cupy.encode_cupy if dense else _cupy.pursue_cupy
        return run(X, D, rows=plan.chunk_rows, device=device, **kw)
    if dense and plan.fused:
        return _fused_codes(X, D, plan, **kw)
    idx, coef = _selections(X, D, plan, device=device, **kw)
    return densify(idx, coef, D.shape[0]) if dense else (idx, coef)


def _plan_for(X, D, n_steps, gram, backend, memory_budget, dense):
    return plan_pursuit(X.shape[0], D.shape[0], X.shape[1], n_steps, X.dtype.itemsize,
                        gram_given=gram is not None, backend=backend,
                        memory_budget=memory_budget, dense=dense)


def pursue(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None,
           backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET, device=None,
           residual_threshold=None, coef_threshold=None):
    """Selections of every sample: ``(idx, coef)``, each (n_samples, n_steps).

    Unvalidated core: ``X`` and ``D`` are float arrays of one dtype, ``D`` has
    unit rows, ``backend`` is concrete.
    """
    plan = _plan_for(X, D, n_steps, gram, backend, memory_budget, dense=False)
    return run_plan(X, D, plan, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                    gram=gram, device=device, dense=False,
                    residual_threshold=residual_threshold, coef_threshold=coef_threshold)


def encode(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None,
           backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET, device=None,
           residual_threshold=None, coef_threshold=None):
    """Dense codes (n_samples, n_components); same arguments as ``pursue``.

    On the numba Gram path, correlations are computed straight into the output
    and the kernel overwrites each row with its codes: no other buffer. The
    CuPy engine does the same on the GPU.
    """
    plan = _plan_for(X, D, n_steps, gram, backend, memory_budget, dense=True)
    return run_plan(X, D, plan, n_steps=n_steps, bias=bias, positive=positive, tol=tol,
                    gram=gram, device=device, dense=True,
                    residual_threshold=residual_threshold, coef_threshold=coef_threshold)


def densify(idx, coef, n_components):
    """Dense codes (n_samples, n_components) from per-step selections."""
    Z = np.zeros((idx.shape[0], n_components), dtype=coef.dtype)
    if idx.size:
        from ._numba import scatter_codes

        scatter_codes(idx, coef, Z)
    return Z
