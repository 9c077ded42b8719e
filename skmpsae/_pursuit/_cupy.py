"""Matching pursuit on NVIDIA GPUs with the CUDA kernel ``kernels/mp_gram.cu``, through CuPy.

CuPy is optional: this module imports without it, ``is_available()`` says
whether it can run, and ``require_cupy()`` raises an error that carries the
original reason (CuPy missing, or no usable GPU or driver). The kernel is
compiled by NVRTC once per device and kept (``_MODULES``).

The engine takes NumPy or CuPy arrays of one float dtype, already validated.
It computes the correlations with one product per chunk of rows on the GPU,
then runs the kernel, which updates them with rows of the Gram matrix (always
on the device; there is no per-step-product fallback). Results come back as
NumPy arrays for NumPy ``X`` and stay on the GPU, as CuPy arrays, for CuPy
``X``.
"""

import functools
from contextlib import nullcontext
from pathlib import Path

import numpy as np

__all__ = ["chunk_rows", "encode_cupy", "is_available", "kernel_source", "pursue_cupy",
           "require_cupy", "upload"]

KERNEL_FILE = Path(__file__).with_name("kernels") / "mp_gram.cu"
_KERNEL_NAMES = {np.dtype(np.float32): "mp_gram_f32", np.dtype(np.float64): "mp_gram_f64"}
# Threads per block (one block per sample); a multiple of 32, at most 1024.
_BLOCK = 256
_MODULES = {}  # device id -> compiled RawModule


@functools.cache
def _probe():
    """``(cupy, None)`` when CuPy can run kernels here, else ``(None, reason)``."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken install (OSError, ...)
        return None, exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        return None, exc
    if n_devices < 1:
        return None, RuntimeError("cudaGetDeviceCount() found no CUDA device")
    return cupy, None


def is_available():
    """Whether CuPy is installed and sees at least one CUDA device."""
    return _probe()[0] is not None


def require_cupy():
    """The ``cupy`` module, or an error saying why ``backend="cupy"`` cannot run here.

    Returns
    -------
    cupy : module
        CuPy, with at least one CUDA device.

    Raises
    ------
    ImportError
        CuPy cannot be imported; the message says which extra installs it.
    RuntimeError
        CuPy is installed but finds no usable GPU or driver.

    Both carry the original exception as ``__cause__`` and in the message.
    """
    cupy, reason = _probe()
    if cupy is not None:
        return cupy
    why = f"{type(reason).__name__}: {reason}"
    if isinstance(reason, ImportError):
        raise ImportError(
            f"backend='cupy' needs CuPy, which cannot be imported ({why}). Install it with "
            "pip install 'skmpsae[gpu]' (CUDA 12; 'skmpsae[gpu-cuda13]' for CUDA 13), or use "
            "backend='auto'."
        ) from reason
    raise RuntimeError(
        f"backend='cupy' cannot run: CuPy is installed but finds no usable CUDA device "
        f"({why}). Use backend='auto' (CPU here) or run on a machine with an NVIDIA GPU."
    ) from reason


def kernel_source():
    """The CUDA C source of the kernels."""
    return KERNEL_FILE.read_text()


def _kernel(cp, dtype):
    device_id = cp.cuda.Device().id
    module = _MODULES.get(device_id)
    if module is None:
        module = _MODULES[device_id] = cp.RawModule(code=kernel_source())
    return module.get_function(_KERNEL_NAMES[np.dtype(dtype)])


def _block_size(n_components):
    """Threads per block: enough warps for the row, at most ``_BLOCK``."""
    return int(min(_BLOCK, max(32, -(-n_components // 32) * 32)))


def _device_context(cp, device):
    """Context selecting ``device`` (None: current; an int or a torch device)."""
    index = getattr(device, "index", device)
    return nullcontext() if index is None else cp.cuda.Device(int(index))


def chunk_rows(n_samples, n_components, n_features, n_steps, itemsize, workspace):
    """Rows per chunk so that a chunk's buffers take about ``workspace`` bytes."""
    per_row = (n_components + n_features + 2 * n_steps) * itemsize
    return int(np.clip(workspace // per_row, 1, max(n_samples, 1)))


def _chunks(cp, X, D, G, bias, *, n_steps, positive, tol, rows, out=None,
            residual_threshold=None, coef_threshold=None):
    """Run the kernel chunk by chunk; yield ``(start, stop, C, idx, coef)`` on the device.

    ``C`` is the chunk's correlations, overwritten by its dense codes when
    ``out`` (the array of codes, NumPy or CuPy) is given: then ``C`` is a view
    of a CuPy ``out``, or a buffer to copy into a NumPy one.
    """
    n, n_components = X.shape[0], D.shape[0]
    dtype = D.dtype
    kernel = _kernel(cp, dtype)
    block = _block_size(n_components)
    Dt = D.T
    empty = cp.empty(0, dtype=dtype)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        m = stop - start
        R = cp.asarray(X[start:stop])
        R = R - bias if bias is not None else R
        C = out[start:stop] if isinstance(out, cp.ndarray) else cp.empty((m, n_components), dtype)
        cp.matmul(R, Dt, out=C)
        thresh, rsq = empty, empty
        if tol is not None or residual_threshold is not None:
            rsq = (R * R).sum(axis=1)
            if tol is None:
                thresh = cp.full(m, residual_threshold, dtype=dtype)
            else:
                thresh = (rsq * dtype.type(tol)).astype(dtype)
                if residual_threshold is not None:
                    thresh = cp.maximum(thresh, dtype.type(residual_threshold))
        idx = cp.empty((m, n_steps), dtype=np.int64)
        coef = cp.empty((m, n_steps), dtype=dtype)
        i32 = np.int32
        kernel((m,), (block,), (C, G, i32(m), i32(n_components), i32(n_steps), i32(positive),
                                i32(thresh.size > 0), thresh, rsq, idx, coef,
                                i32(out is not None), dtype.type(coef_threshold or 0)))
        yield start, stop, C, idx, coef


def _on_device(cp, D, bias, gram):
    D = cp.ascontiguousarray(cp.asarray(D))
    bias = None if bias is None else cp.asarray(bias)
    G = cp.matmul(D, D.T) if gram is None else cp.ascontiguousarray(cp.asarray(gram))
    return D, bias, G


def upload(D, bias, device=None):
    """``(D, bias, G)`` as CuPy arrays on ``device``, the Gram matrix computed there.

    For callers that encode many times with one dictionary (a fitted
    estimator keeps them between calls).
    """
    cp = require_cupy()
    with _device_context(cp, device):
        return _on_device(cp, D, bias, None)


def pursue_cupy(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None, rows,
                device=None, residual_threshold=None, coef_threshold=None):
    """Selections ``(idx, coef)``, each (n_samples, n_steps), as NumPy arrays.

    ``X``, ``D``, ``bias`` and ``gram`` are NumPy or CuPy arrays of one float
    dtype (validated); ``rows`` is the chunk length; ``device`` a CUDA device
    index or torch device (None: CuPy's current device).
    """
    cp = require_cupy()
    n = X.shape[0]
    idx = np.zeros((n, n_steps), dtype=np.int64)
    coef = np.zeros((n, n_steps), dtype=D.dtype)
    if n == 0 or n_steps == 0:
        return idx, coef
    with _device_context(cp, device):
        Dd, bd, Gd = _on_device(cp, D, bias, gram)
        for start, stop, _, idx_d, coef_d in _chunks(
                cp, X, Dd, Gd, bd, n_steps=n_steps, positive=positive, tol=tol, rows=rows,
                residual_threshold=residual_threshold, coef_threshold=coef_threshold):
            idx[start:stop] = cp.asnumpy(idx_d)
            coef[start:stop] = cp.asnumpy(coef_d)
    return idx, coef


def encode_cupy(X, D, *, n_steps, bias=None, positive=True, tol=None, gram=None, rows,
                device=None, residual_threshold=None, coef_threshold=None):
    """Dense codes (n_samples, n_components): CuPy for CuPy ``X``, else NumPy.

    Same arguments as ``pursue_cupy``. The kernel writes each sample's codes
    over its correlations, so that no buffer beyond the chunk is needed.
    """
    cp = require_cupy()
    n, n_components = X.shape[0], D.shape[0]
    with _device_context(cp, device):
        on_device = isinstance(X, cp.ndarray)
        Z = (cp.zeros if on_device else np.zeros)((n, n_components), dtype=D.dtype)
        if n == 0 or n_steps == 0:
            return Z
        Dd, bd, Gd = _on_device(cp, D, bias, gram)
        for start, stop, C, _, _ in _chunks(cp, X, Dd, Gd, bd, n_steps=n_steps,
                                            positive=positive, tol=tol, rows=rows, out=Z,
                                            residual_threshold=residual_threshold,
                                            coef_threshold=coef_threshold):
            if not on_device:
                Z[start:stop] = cp.asnumpy(C)
    return Z
