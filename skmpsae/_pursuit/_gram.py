"""The Gram matrix ``D @ D.T`` in half the flops: BLAS ``syrk`` plus a blocked mirror."""

import numba as nb
import numpy as np
from scipy.linalg import blas

from .._threads import blas_threads, kernel_threads

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


def gram_matrix(D, out=None):
    """``D @ D.T`` as a C-contiguous symmetric array, for float32 or float64 ``D``.

    Applies the thread policy of ``_threads`` to its product and its mirror.
    ``out``: a C-contiguous (n_components, n_components) array of ``D``'s dtype
    to write into (a training step's Gram matrix reuses the last one's memory:
    a fresh 3072-atom float32 result costs about 6 ms of page faults on its
    first write); returned.
    """
    syrk = blas.ssyrk if D.dtype == np.float32 else blas.dsyrk
    # syrk fills the upper triangle of a Fortran-ordered result, which read in
    # C order is the lower triangle of the transpose (the same matrix).
    with blas_threads(D.shape[0] * D.shape[0] * D.shape[1] // 2, alone=True):
        if out is None:
            G = syrk(1.0, np.ascontiguousarray(D)).T
        else:
            G = syrk(1.0, np.ascontiguousarray(D), c=out.T, overwrite_c=1).T
    with kernel_threads(G.size):
        _mirror_lower(G)
    return G
