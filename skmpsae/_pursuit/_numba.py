"""Fused matching-pursuit kernel compiled with numba (the CPU fast path).

One sample per task (``prange``): its row of correlations ``c`` (n_components,)
stays in L1/L2 cache for all steps while the selected rows of the Gram matrix
stream from memory. Each step is one vectorised pass that updates
``c -= a * G[j]`` and tracks the maximum of the new values in the same loop,
so ``c`` is read once per step (one argmax-only pass finds the first atom).
The maximum is searched on integer keys of the float bits (monotone in the
float value) because LLVM vectorises integer max reductions but not float
select chains; the key also gives the *first* index of the maximum, the
tie-breaking of ``numpy.argmax``. Partial maxima per block of ``_BLOCK``
elements let the search for that first index skip to its block.

No contraction to FMA is allowed (``fastmath`` without ``contract``), so
``c - a * g`` rounds exactly as NumPy does and codes match the NumPy reference
bit for bit.
"""

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .._threads import kernel_threads

__all__ = ["gram_pursuit", "gram_pursuit_serial", "scatter_codes"]

_INT_OF = {4: np.int32, 8: np.int64}

_FASTMATH = {"nnan", "ninf", "nsz"}
_BLOCK = 64  # elements per partial maximum; one AVX-512 cache line x 4


def _key_intrinsic(signed):
    # Order-preserving map from a float to the signed integer of its width,
    # written in LLVM IR so that it stays at that width (numba's own integer
    # arithmetic widens int32 to int64, which halves the vector lanes).
    # Signed key (positive codes): negative floats have their magnitude bits
    # flipped, and -0.0 (whose bits are the integer minimum) is mapped to +0.0,
    # which NumPy treats as equal. Magnitude key: the sign bit is dropped, so
    # the key orders |c|.

    def key(typingctx, x):
        if not isinstance(x, types.Float):
            return None
        int_type = types.int32 if x.bitwidth == 32 else types.int64

        def codegen(context, builder, signature, args):
            ir_type = context.get_value_type(int_type)
            width = x.bitwidth
            bits = builder.bitcast(args[0], ir_type)
            mag = ir.Constant(ir_type, (1 << (width - 1)) - 1)
            if not signed:
                return builder.and_(bits, mag)
            lowest = ir.Constant(ir_type, -(1 << (width - 1)))
            bits = builder.select(builder.icmp_signed("==", bits, lowest),
                                  ir.Constant(ir_type, 0), bits)
            flip = builder.and_(builder.ashr(bits, ir.Constant(ir_type, width - 1)), mag)
            return builder.xor(bits, flip)

        return int_type(x), codegen

    key.__name__ = "_signed_key" if signed else "_magnitude_key"
    return intrinsic(key)


_signed_key = _key_intrinsic(True)
_magnitude_key = _key_intrinsic(False)


@nb.njit(inline="always")
def _key(x, positive):
    # The argmax key of float ``x``: it orders ``x`` when ``positive``, else ``|x|``.
    return _signed_key(x) if positive else _magnitude_key(x)


@nb.njit(inline="always")
def _first_of(c, best, positive, lowest, block_max):
    # First index whose key is ``best``, looking only inside blocks that hold it.
    n = c.shape[0]
    n_blocks = n // _BLOCK
    for b in range(n_blocks):
        if block_max[b] == best:
            for i in range(b * _BLOCK, (b + 1) * _BLOCK):
                if _key(c[i], positive) == best:
                    return i
    for i in range(n_blocks * _BLOCK, n):
        if _key(c[i], positive) == best:
            return i
    return 0


@nb.njit(inline="always")
def _argmax_first(c, positive, lowest, block_max):
    n = c.shape[0]
    n_blocks = n // _BLOCK
    best = lowest
    for b in range(n_blocks):
        m = lowest
        for i in range(b * _BLOCK, (b + 1) * _BLOCK):
            m = max(m, _key(c[i], positive))
        block_max[b] = m
        best = max(best, m)
    for i in range(n_blocks * _BLOCK, n):
        best = max(best, _key(c[i], positive))
    return _first_of(c, best, positive, lowest, block_max)


@nb.njit(inline="always")
def _update_argmax_first(c, a, g, positive, lowest, block_max):
    # ``c -= a * g`` and the argmax of the result, in one pass over ``c``.
    n = c.shape[0]
    n_blocks = n // _BLOCK
    best = lowest
    for b in range(n_blocks):
        m = lowest
        for i in range(b * _BLOCK, (b + 1) * _BLOCK):
            v = c[i] - a * g[i]
            c[i] = v
            m = max(m, _key(v, positive))
        block_max[b] = m
        best = max(best, m)
    for i in range(n_blocks * _BLOCK, n):
        v = c[i] - a * g[i]
        c[i] = v
        best = max(best, _key(v, positive))
    return _first_of(c, best, positive, lowest, block_max)


@nb.njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _gram_pursuit(C, lowest, G, n_steps, positive, thresh, rsq,
                  idx_out, coef_out, write_codes, min_coef):
    """Run matching pursuit on precomputed correlations, in place.

    Parameters
    ----------
    C : ndarray (n_samples, n_components), C-contiguous
        ``(X - b) @ D.T``; overwritten with the final residual correlations.
    lowest
        The smallest signed integer of ``C``'s width (below every argmax key).
    G : ndarray (n_components, n_components)
        Gram matrix ``D @ D.T``.
    n_steps : int
    positive : bool
    thresh : ndarray (n_samples,) or (0,)
        Per-sample stopping level of the squared residual norm
        (``tol * ||x - b||^2``); empty to run all steps.
    rsq : ndarray (n_samples,) or (0,)
        Squared residual norms ``||x - b||^2``; updated in place when
        ``thresh`` is given.
    idx_out : ndarray (n_samples, n_steps) int64
        Selected atom per step. After a sample stops, its remaining entries
        repeat the last argmax (with a zero coefficient), exactly what an
        unrolled loop would select again.
    coef_out : ndarray (n_samples, n_steps)
        Coefficient added per step.
    write_codes : bool
        Overwrite each row of ``C`` with the sample's dense codes once its
        pursuit ends (while the row is still in cache), so that encoding needs
        no buffer beyond the output.
    min_coef : float
        The coefficient stop: a sample stops instead of adding a coefficient
        of magnitude below it (recorded as a zero, as a non-positive one is);
        0 never stops.
    """
    n, n_components = C.shape
    use_tol = thresh.shape[0] > 0
    for s in nb.prange(n):
        c = C[s]
        block_max = np.full(n_components // _BLOCK + 1, lowest)
        j = _argmax_first(c, positive, lowest, block_max)
        last = 0
        t = 0
        while t < n_steps:
            if use_tol and rsq[s] <= thresh[s]:
                break
            a = c[j]
            if positive and a <= 0:
                a = a - a
            if abs(a) < min_coef:
                a = a - a
            idx_out[s, t] = j
            coef_out[s, t] = a
            last = j
            t += 1
            if a == 0:
                break
            g = G[j]
            if use_tol:
                rsq[s] = rsq[s] - a * ((c[j] + c[j]) - a * g[j])
            if t < n_steps:
                j = _update_argmax_first(c, a, g, positive, lowest, block_max)
            else:
                for i in range(n_components):
                    c[i] = c[i] - a * g[i]
        for u in range(t, n_steps):
            idx_out[s, u] = last
            coef_out[s, u] = 0
        if write_codes:
            for i in range(n_components):
                c[i] = 0
            for u in range(t):
                c[idx_out[s, u]] += coef_out[s, u]


# The same kernel on the calling thread, without the GIL: ``_core`` runs it from
# a pool of Python threads, each after its own one-thread product (no numba or
# BLAS thread pool to wake, nor BLAS workers left spinning on the cores).
_gram_pursuit_serial = nb.njit(fastmath=_FASTMATH, cache=True, nogil=True)(
    _gram_pursuit.py_func)


@nb.njit(parallel=True, cache=True)
def scatter_codes(idx, coef, out):
    """Accumulate ``coef`` into the dense codes ``out`` at ``idx``, per row."""
    for s in nb.prange(idx.shape[0]):
        for t in range(idx.shape[1]):
            out[s, idx[s, t]] += coef[s, t]


def gram_pursuit(C, G, n_steps, positive, thresh, rsq, idx_out, coef_out, write_codes=False,
                 min_coef=0.0):
    """Matching pursuit on correlations ``C`` with Gram matrix ``G``, in place.

    See ``_gram_pursuit`` for the arguments; this wrapper supplies the
    smallest integer of ``C``'s width, below every argmax key.
    """
    with kernel_threads(C.shape[0] * C.shape[1] * n_steps):
        _gram_pursuit(C, _lowest_key(C), G, n_steps, positive, thresh, rsq, idx_out,
                      coef_out, write_codes, C.dtype.type(min_coef))


def gram_pursuit_serial(C, G, n_steps, positive, thresh, rsq, idx_out, coef_out,
                        write_codes=False, min_coef=0.0):
    """``gram_pursuit`` on the calling thread, releasing the GIL."""
    _gram_pursuit_serial(C, _lowest_key(C), G, n_steps, positive, thresh, rsq, idx_out,
                         coef_out, write_codes, C.dtype.type(min_coef))


def _lowest_key(C):
    """The smallest signed integer of ``C``'s float width, below every argmax key."""
    int_type = _INT_OF[C.dtype.itemsize]
    return int_type(np.iinfo(int_type).min)
