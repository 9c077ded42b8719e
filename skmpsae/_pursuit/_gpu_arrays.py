"""``mp_encode`` on GPU arrays: CuPy arrays and torch CUDA tensors, validated on their device.

Host validation (scikit-learn's ``check_array``) would copy such arrays to
the host, or fail; here shapes, dtypes and finiteness are checked with CuPy
on the GPU that holds ``X``, with the messages of the host path. torch
tensors enter CuPy through DLPack (no copy) and the codes leave the same way.
"""

import sys

import numpy as np

from .._validation import FLOATS
from . import _cupy
from ._checks import check_dictionary_shape, check_gram_shape, check_unit_norms, check_vector_shape
from ._core import run_plan
from ._plan import plan_pursuit

__all__ = ["device_array_kind", "encode_device_arrays"]


def device_array_kind(X):
    """``"cupy"`` for a CuPy array, ``"torch"`` for a torch CUDA tensor, else None.

    Looks only at modules already imported: an object of a module that was
    never imported cannot be one of its arrays.
    """
    cupy = sys.modules.get("cupy")
    cupy_array = getattr(cupy, "ndarray", None)
    if isinstance(cupy_array, type) and isinstance(X, cupy_array):
        return "cupy"
    torch = sys.modules.get("torch")
    tensor = getattr(torch, "Tensor", None)
    if isinstance(tensor, type) and isinstance(X, tensor) and X.is_cuda:
        return "torch"
    return None


def _to_cupy(cp, value):
    if device_array_kind(value) == "torch":
        return cp.from_dlpack(value.detach())
    return cp.asarray(value)


def _float_array(cp, value, name, dtype, ndim):
    """``value`` on the current GPU as a finite ``ndim``-D float array of ``dtype``.

    ``dtype`` None keeps float32 and float64 and turns other real types into
    float64, as the host path does.
    """
    A = _to_cupy(cp, value)
    if A.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {A.dtype}.")
    if A.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got {A.ndim} dimension(s) "
                         f"with shape {A.shape}.")
    if ndim == 2 and (A.shape[0] < 1 or A.shape[1] < 1):
        raise ValueError(f"{name} must have at least one row and one column, got shape "
                         f"{A.shape}.")
    if dtype is None:
        dtype = A.dtype if A.dtype in FLOATS else np.float64
    A = cp.ascontiguousarray(A, dtype=dtype)
    if not bool(cp.isfinite(A).all()):
        what = "NaN" if bool(cp.isnan(A).any()) else "infinity"
        raise ValueError(f"{name} contains {what}; encode finite values only (impute or "
                         "drop them first).")
    return A


def _gpu_of(kind, X):
    if kind == "torch":
        return X.device.index
    return X.device.id


def encode_device_arrays(X, dictionary, *, n_steps, bias, positive, tol, gram, backend,
                         memory_budget, residual_threshold=None, coef_threshold=None):
    """``mp_encode`` for a CuPy or torch CUDA ``X``: codes of the same type, on its GPU.

    Raises ValueError when ``backend`` names a host engine, and the error of
    ``_cupy.require_cupy`` when CuPy cannot run.
    """
    kind = device_array_kind(X)
    if backend not in ("auto", "cupy"):
        raise ValueError(
            f"X is a {'CuPy array' if kind == 'cupy' else 'torch CUDA tensor'} but "
            f"backend={backend!r} encodes host arrays; use backend='cupy' (or 'auto'), or "
            "pass X as a NumPy array."
        )
    cp = _cupy.require_cupy()
    with cp.cuda.Device(_gpu_of(kind, X)):
        Xd = _float_array(cp, X, "X", None, 2)
        D = _float_array(cp, dictionary, "dictionary", Xd.dtype, 2)
        check_dictionary_shape(D.shape, Xd.shape[1])
        check_unit_norms(cp.asnumpy(cp.sqrt((D * D).sum(axis=1))))
        b = None
        if bias is not None:
            check_vector_shape(_to_cupy(cp, bias).shape, "bias", Xd.shape[1])
            b = _float_array(cp, bias, "bias", Xd.dtype, 1)
        G = None
        if gram is not None:
            G = _float_array(cp, gram, "gram", Xd.dtype, 2)
            check_gram_shape(G.shape, D.shape[0])
        plan = plan_pursuit(Xd.shape[0], D.shape[0], Xd.shape[1], n_steps, Xd.dtype.itemsize,
                            gram_given=G is not None, backend="cupy",
                            memory_budget=memory_budget, dense=True, gpu_input=True)
        Z = run_plan(Xd, D, plan, n_steps=n_steps, bias=b, positive=positive, tol=tol, gram=G,
                     residual_threshold=residual_threshold, coef_threshold=coef_threshold)
    if kind == "torch":
        import torch

        return torch.from_dlpack(Z)
    return Z
