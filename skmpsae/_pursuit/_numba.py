"""Fused matching-pursuit kernel compiled with numba (the CPU fast path).

Four samples per task (``prange``): their rows of correlations ``c``
(n_components,) stay in L1/L2 cache for all steps while the selected rows of
the Gram matrix stream from memory. Each step is one vectorised pass that
updates ``c -= a * G[j]`` and tracks the maximum of the new values in the same
loop, so ``c`` is read once per step (one argmax-only pass finds the first
atom); the four samples' steps share that pass, so four Gram rows stream at
once (measured at 4096 x 768, 6144 atoms, k=32: the kernel in about 0.6x the
time of one sample after another). A sample that stops early, and every
sample's last step, finish one sample at a time.
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
_GROUP = 4  # samples whose steps run in one pass (``_update_argmax_first4``)


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


@nb.njit(inline="always")
def _update_at(c, a, g, i, best, positive):
    # ``c[i] -= a * g[i]``; the larger of ``best`` and the new value's key.
    v = c[i] - a * g[i]
    c[i] = v
    return max(best, _key(v, positive))


@nb.njit(inline="always")
def _update_argmax_first4(c0, c1, c2, c3, a0, a1, a2, a3, g0, g1, g2, g3, positive, lowest,
                          bm0, bm1, bm2, bm3):
    # ``_update_argmax_first`` of four samples in one pass: four rows of G
    # stream at once, which keeps more memory reads in flight than one
    # sample's row after another (same operations in the same order: the
    # same bits). Each running maximum is its own variable (a chained
    # assignment halved the speed).
    n = c0.shape[0]
    n_blocks = n // _BLOCK
    b0 = lowest
    b1 = lowest
    b2 = lowest
    b3 = lowest
    for b in range(n_blocks):
        m0 = lowest
        m1 = lowest
        m2 = lowest
        m3 = lowest
        for i in range(b * _BLOCK, (b + 1) * _BLOCK):
            m0 = _update_at(c0, a0, g0, i, m0, positive)
            m1 = _update_at(c1, a1, g1, i, m1, positive)
            m2 = _update_at(c2, a2, g2, i, m2, positive)
            m3 = _update_at(c3, a3, g3, i, m3, positive)
        bm0[b] = m0
        bm1[b] = m1
        bm2[b] = m2
        bm3[b] = m3
        b0 = max(b0, m0)
        b1 = max(b1, m1)
        b2 = max(b2, m2)
        b3 = max(b3, m3)
    for i in range(n_blocks * _BLOCK, n):
        b0 = _update_at(c0, a0, g0, i, b0, positive)
        b1 = _update_at(c1, a1, g1, i, b1, positive)
        b2 = _update_at(c2, a2, g2, i, b2, positive)
        b3 = _update_at(c3, a3, g3, i, b3, positive)
    return (_first_of(c0, b0, positive, lowest, bm0), _first_of(c1, b1, positive, lowest, bm1),
            _first_of(c2, b2, positive, lowest, bm2), _first_of(c3, b3, positive, lowest, bm3))


@nb.njit(inline="always")
def _step_coef(c, j, positive, min_coef):
    # The coefficient a step adds at atom ``j``: 0 where it stops the sample.
    a = c[j]
    if positive and a <= 0:
        a = a - a
    if abs(a) < min_coef:
        a = a - a
    return a


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
    n_groups = (n + _GROUP - 1) // _GROUP
    for group in nb.prange(n_groups):
        first = group * _GROUP
        size = min(_GROUP, n - first)
        block_max = np.full((_GROUP, n_components // _BLOCK + 1), lowest)
        j = np.zeros(_GROUP, dtype=np.int64)
        for w in range(size):
            j[w] = _argmax_first(C[first + w], positive, lowest, block_max[w])
        t = 0
        if size == _GROUP:
            # The four samples step together while none stops and a step with
            # an argmax after it remains; each finishes on its own below.
            c0, c1, c2, c3 = C[first], C[first + 1], C[first + 2], C[first + 3]
            while t + 1 < n_steps:
                a0 = _step_coef(c0, j[0], positive, min_coef)
                a1 = _step_coef(c1, j[1], positive, min_coef)
                a2 = _step_coef(c2, j[2], positive, min_coef)
                a3 = _step_coef(c3, j[3], positive, min_coef)
                if a0 == 0 or a1 == 0 or a2 == 0 or a3 == 0:
                    break
                if use_tol:
                    stop = False
                    for w in range(_GROUP):
                        stop = stop or rsq[first + w] <= thresh[first + w]
                    if stop:
                        break
                for w, a in ((0, a0), (1, a1), (2, a2), (3, a3)):
                    s = first + w
                    idx_out[s, t] = j[w]
                    coef_out[s, t] = a
                    if use_tol:
                        c = C[s]
                        rsq[s] = rsq[s] - a * ((c[j[w]] + c[j[w]]) - a * G[j[w], j[w]])
                t += 1
                j[0], j[1], j[2], j[3] = _update_argmax_first4(
                    c0, c1, c2, c3, a0, a1, a2, a3, G[j[0]], G[j[1]], G[j[2]], G[j[3]],
                    positive, lowest, block_max[0], block_max[1], block_max[2], block_max[3])
        for w in range(size):
            _pursue_from(first + w, C[first + w], j[w], t, G, n_steps, positive, use_tol,
                         thresh, rsq, idx_out, coef_out, write_codes, min_coef, lowest,
                         block_max[w])


@nb.njit(inline="always")
def _pursue_from(s, c, j, t, G, n_steps, positive, use_tol, thresh, rsq, idx_out, coef_out,
                 write_codes, min_coef, lowest, block_max):
    # Sample ``s``'s pursuit from step ``t`` on (atom ``j`` its argmax), to its end.
    n_components = c.shape[0]
    last = idx_out[s, t - 1] if t > 0 else 0
    while t < n_steps:
        if use_tol and rsq[s] <= thresh[s]:
            break
        a = _step_coef(c, j, positive, min_coef)
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
