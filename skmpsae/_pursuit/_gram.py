"""The Gram matrix ``D @ D.T``: row pieces on Python threads, or BLAS ``syrk`` and a mirror."""

import numba as nb
import numpy as np
from scipy.linalg import blas

from .._threads import blas_threads, gram_threads, kernel_threads

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
    # transposed writes of another piece's rows never meet these), tile by tile.
    for j0 in range(0, r1, _TILE):
        for i0 in range(max(r0, j0), r1, _TILE):
            for j in range(j0, min(j0 + _TILE, r1)):
                for i in range(max(i0, j + 1), min(i0 + _TILE, r1)):
                    G[j, i] = G[i, j]


#: Row pieces of a Gram matrix computed on Python threads: as many as make the
#: diagonal blocks' redundant half (each piece's product is a plain GEMM) cost
#: about 1/16 of the lower triangle.
_GRAM_PIECES = 16


def _piece_bounds(n, pieces):
    """Row bounds that give each piece an equal share of the lower triangle's area."""
    bounds = np.unique(np.rint(n * np.sqrt(np.arange(pieces + 1) / pieces)).astype(np.int64))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _gram_on_threads(D, G, workers):
    """Fill ``G`` with ``D @ D.T`` by row pieces on ``workers`` Python threads.

    Each piece is a one-thread GEMM of its rows against the atoms up to its
    last row, then the mirror of those rows onto the upper triangle. A
    multithreaded product would instead leave OpenBLAS's workers spinning on
    the cores while the encoding that follows runs there (measured: 4096 x
    768 rows, 6144 atoms, k=32, Gram not given: 0.64 s against 0.24 s with the
    Gram given, of which 0.18 s for the Gram alone).
    """
    from concurrent.futures import ThreadPoolExecutor

    def piece(bounds):
        r0, r1 = bounds
        np.matmul(D[r0:r1], D[:r1].T, out=G[r0:r1, :r1])
        _mirror_rows(G, r0, r1)

    with _one_blas_thread(), ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(piece, _piece_bounds(D.shape[0], _GRAM_PIECES)):
            pass


def _one_blas_thread():
    return blas_threads(0)


def gram_matrix(D, out=None):
    """``D @ D.T`` as a C-contiguous symmetric array, for float32 or float64 ``D``.

    Applies the thread policy of ``_threads`` to its product: where the
    product may take several BLAS threads, it runs as row pieces on as many
    Python threads instead (``_gram_on_threads``); on one thread, as BLAS
    ``syrk`` (half the multiply-adds) and a mirror. ``out``: a C-contiguous
    (n_components, n_components) array of ``D``'s dtype to write into (a
    training step's Gram matrix reuses the last one's memory: a fresh
    3072-atom float32 result costs about 6 ms of page faults on its first
    write); returned.
    """
    D = np.ascontiguousarray(D)
    n = D.shape[0]
    workers = gram_threads(n * n * D.shape[1] // 2)
    if workers > 1:
        G = np.empty((n, n), dtype=D.dtype) if out is None else out
        _gram_on_threads(D, G, workers)
        return G
    syrk = blas.ssyrk if D.dtype == np.float32 else blas.dsyrk
    # syrk fills the upper triangle of a Fortran-ordered result, which read in
    # C order is the lower triangle of the transpose (the same matrix).
    with _one_blas_thread():
        if out is None:
            G = syrk(1.0, D).T
        else:
            G = syrk(1.0, D, c=out.T, overwrite_c=1).T
    with kernel_threads(G.size):
        _mirror_lower(G)
    return G
