"""Float32 matrix products ``A @ B.T`` on the CPU through oneDNN where torch has it.

Torch's CPU wheel carries two GEMMs: MKL's, which ``torch.mm`` and
``addmm`` call, and oneDNN's, which its compiled graphs call. MKL picks its
kernels by the processor's maker, oneDNN by the instruction sets it finds,
so on an AMD processor with AVX-512 oneDNN's float32 product is about twice
MKL's and NumPy's (measured on this project's 2-core AMD EPYC machine, whose
OpenBLAS runs its Haswell kernel: 1024 x 784 by 6144 atoms, one thread, 114
against 52 GMAC/s for MKL; 3072 x 384 Gram pieces, one thread, 105-116
against 54-62 for OpenBLAS, 100-110 counting the copy into the result).
Its result does not depend on the thread count, the rows taken, or the
operands' alignment (``tests/training/test_products.py``).

Only float32 on x86-64 (oneDNN has no float64 GEMM on the CPU; elsewhere its
gain is unmeasured); ``SKMPSAE_ONEDNN=0`` in the environment, or torch's
``torch.backends.mkldnn.flags(enabled=False)``, turns it off.
"""

import functools
import os
import platform

import numpy as np

__all__ = ["linear", "onednn_active", "product_nt"]

ENV = "SKMPSAE_ONEDNN"


@functools.cache
def _onednn_op():
    """Torch's oneDNN linear op, or None where it is missing or fails a first product."""
    if os.environ.get(ENV, "1") == "0" or \
            platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        import torch

        if not torch.backends.mkldnn.is_available():
            return None
        op = torch.ops.mkldnn._linear_pointwise
        a = torch.ones(2, 3)
        if not torch.equal(op(a, a, None, "none", [], ""), torch.full((2, 2), 3.0)):
            return None
    except (ImportError, AttributeError, RuntimeError):
        return None
    return op


def onednn_active(dtype, device="cpu"):
    """Whether products of ``dtype`` on ``device`` go through oneDNN."""
    float32 = str(dtype) == "torch.float32" if type(dtype).__module__ == "torch" else \
        np.dtype(dtype) == np.float32
    if not float32 or str(device) != "cpu":
        return False
    op = _onednn_op()
    if op is None:
        return False
    import torch

    return bool(torch.backends.mkldnn.enabled)


def linear(x, W, b=None, *, out=None):
    """``x @ W.T + b`` (torch): oneDNN's product for float32 on the CPU, without gradient.

    Parameters
    ----------
    x : torch.Tensor of shape (n_rows, n_features)
    W : torch.Tensor of shape (n_out, n_features)
    b : torch.Tensor of shape (n_out,) or None
    out : torch.Tensor of shape (n_rows, n_out) or None
        A buffer for torch's own product (``addmm``), reused from call to
        call; oneDNN's product is a new tensor and leaves it alone.

    Returns
    -------
    pre : torch.Tensor of shape (n_rows, n_out), C-contiguous
        Differentiable (torch's product) where gradients are recorded and an
        operand requires one.
    """
    import torch

    if onednn_active(x.dtype, x.device) and W.dtype == x.dtype and \
            (b is None or b.dtype == x.dtype) and not (torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (x, W, b))):
        return _onednn_op()(x.contiguous(), W.contiguous(), b, "none", [], "")
    if b is None:
        return torch.mm(x, W.T, out=out)
    return torch.addmm(b, x, W.T, out=out)


def product_nt(A, B, out=None):
    """``A @ B.T`` for NumPy arrays, into ``out`` (which may be a strided view) when given.

    oneDNN's product for float32 (a new C-contiguous array, copied into
    ``out``), NumPy's BLAS otherwise. oneDNN runs on the calling thread's
    OpenMP thread count: torch's on the main thread, one on the threads of
    ``_threads.thread_pool``.
    """
    if onednn_active(A.dtype):
        import torch

        result = linear(torch.from_numpy(np.ascontiguousarray(A)),
                        torch.from_numpy(np.ascontiguousarray(B))).numpy()
        if out is None:
            return result
        np.copyto(out, result)
        return out
    return np.matmul(A, B.T, out=out)
