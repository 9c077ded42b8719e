"""The Gram matrix ``D @ D.T``: row pieces on Python threads, or BLAS ``syrk`` and a mirror."""

import numba as nb
import numpy as np
from scipy.linalg import blas

from .._products import product_nt
from .._threads import blas_threads, gram_threads, kernel_threads, may_take_threads, thread_pool

__all__ = ["gram_matrix"]

_TILE = 128
_SHARES = 8


@nb.njit(parallel=True, cache=True)
def _mirror_lower(G):
    # Copy the lower triangle onto the upper one, tile by tile so that the
    # transposed reads stay in cache. Tile row i has n_tiles - i tiles: the
    # rows are dealt out in turn (0, 8, 16, ... to the first share) so that
    # the threads' shares are even.
    n = G.shape[0]
    n_tiles = (n + _TILE - 1) // _TILE
    for share in nb.prange(_SHARES):
        for bi in range(share, n_tiles, _SHARES):
            for bj in range(bi + 1, n_tiles):
                for i in range(bi * _TILE, min((bi + 1) * _TILE, n)):
                    for j in range(bj * _TILE, min((bj + 1) * _TILE, n)):
                        G[i, j] = G[j, i]
            for i in range(bi * _TILE, min((bi + 1) * _TILE, n)):
                for j in range(i + 1, min((bi + 1) * _TILE, n)):
                    G[i, j] = G[j, i]


@nb.njit(nogil=True, cache=True)
def _mirror_rows(G, r0, r1):
    # The lower triangle's part in rows [r0, r1) onto the upper one (the
    # transposed writes of another piece's rows never meet these), in tiles
    # of one cache line a side (measured on a 3072-atom float32 Gram matrix's
    # pieces: 5.7 ms in all against 10.7 ms with tiles of 128; float64 6.3 ms
    # against 8.5 ms with tiles of 16).
    tile = max(64 // G.itemsize, 1)
    for j0 in range(0, r1, tile):
        for i0 in range(max(r0, j0), r1, tile):
            for j in range(j0, min(j0 + tile, r1)):
                for i in range(max(i0, j + 1), min(i0 + tile, r1)):
                    G[j, i] = G[i, j]


#: Row pieces of a Gram matrix computed on Python threads: as many as make the
#: diagonal blocks' redundant half (each piece's product is a plain GEMM) cost
#: about 1/16 of the lower triangle.
_GRAM_PIECES = 16


def _piece_bounds(n, pieces):
    """Row bounds that give each piece an equal share of the lower triangle's area."""
    bounds = np.unique(np.rint(n * np.sqrt(np.arange(pieces + 1) / pieces)).astype(np.int64))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _product_pieces(R, D, C):
    """Row pieces of ``C = R @ D.T`` the size of a Gram piece (at least 128 rows)."""
    n = D.shape[0]
    rows = max(128, -(-n // (2 * _GRAM_PIECES)))
    return [(R[a:a + rows], C[a:a + rows]) for a in range(0, R.shape[0], rows)]


def _gram_in_pieces(D, G, workers, correlate=None):
    """Fill ``G`` with ``D @ D.T`` by row pieces, on ``workers`` Python threads.

    Each piece is a one-thread GEMM of its rows against the atoms up to its
    last row, then the mirror of those rows onto the upper triangle. The
    pieces do not depend on ``workers``, so neither do the bits: a fit whose
    Gram matrix takes the idle core gives the one-thread fit's result. A
    multithreaded product would instead leave OpenBLAS's workers spinning on
    the cores while the encoding that follows runs there (measured: 4096 x
    768 rows, 6144 atoms, k=32, Gram not given: 0.64 s against 0.24 s with the
    Gram given, of which 0.18 s for the Gram alone). ``correlate``: ``(R, C)``
    to fill ``C`` with ``R @ D.T`` in row pieces among the Gram's, on the same
    threads, so that the two products share the cores rather than one
    waiting for the other.
    """
    def gram_piece(bounds):
        r0, r1 = bounds
        product_nt(D[r0:r1], D[:r1], G[r0:r1, :r1])
        _mirror_rows(G, r0, r1)

    def product_piece(piece):
        product_nt(piece[0], D, piece[1])

    tasks = [(product_piece, piece) for piece in
             (_product_pieces(correlate[0], D, correlate[1]) if correlate else ())]
    tasks += [(gram_piece, bounds) for bounds in _piece_bounds(D.shape[0], _GRAM_PIECES)]
    with _one_blas_thread():
        if workers <= 1:
            for task, arg in tasks:
                task(arg)
            return
        for _ in thread_pool(workers).map(lambda t: t[0](t[1]), tasks):
            pass


def _one_blas_thread():
    return blas_threads(0)


def gram_matrix(D, out=None, *, correlate=None):
    """``D @ D.T`` as a C-contiguous symmetric array, for float32 or float64 ``D``.

    Applies the thread policy of ``_threads`` to its product: where it may
    take several threads (``may_take_threads``), it runs as the same row
    pieces whatever the thread count (``_gram_in_pieces``), on as many Python
    threads as ``gram_threads`` gives; below, as BLAS ``syrk`` (half the
    multiply-adds) and a mirror on one thread. ``out``: a C-contiguous
    (n_components, n_components) array of ``D``'s dtype to write into (a
    training step's Gram matrix reuses the last one's memory: a fresh
    3072-atom float32 result costs about 6 ms of page faults on its first
    write); returned. ``correlate``: ``(R, C)``, C-contiguous, to fill ``C``
    with ``R @ D.T`` as well: among the Gram's pieces where those run (its
    bits then do not depend on the threads either), before it otherwise.
    """
    D = np.ascontiguousarray(D)
    n = D.shape[0]
    multiply_adds = n * n * D.shape[1] // 2
    G = np.empty((n, n), dtype=D.dtype) if out is None else out
    if may_take_threads(multiply_adds):
        extra = 0 if correlate is None else correlate[0].shape[0] * n * D.shape[1]
        _gram_in_pieces(D, G, gram_threads(multiply_adds + extra), correlate)
        return G
    syrk = blas.ssyrk if D.dtype == np.float32 else blas.dsyrk
    # syrk fills the upper triangle of a Fortran-ordered result, which read in
    # C order is the lower triangle of the transpose (the same matrix).
    with _one_blas_thread():
        if correlate is not None:
            product_nt(correlate[0], D, correlate[1])
        G = syrk(1.0, D, c=G.T, overwrite_c=1).T
    with kernel_threads(G.size):
        _mirror_lower(G)
    return G
