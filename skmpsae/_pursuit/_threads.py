"""BLAS thread policy around the products that precede numba kernels.

OpenBLAS worker threads keep spinning for a while after a product; on a
machine with few cores they then compete with the numba (and torch) threads
that run next. Below about 2e9 multiply-adds a product is faster on one BLAS
thread than the contention costs (measured: a 256 x 64 x 512 training step is
13x faster, 1024 x 256 x 2048 is 2.4x faster; 4096 x 768 x 6144 is 1.4x slower).
"""

import functools
from contextlib import nullcontext

__all__ = ["blas_threads"]

_SERIAL_BELOW = 2e9


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads(multiply_adds):
    """Context limiting BLAS to one thread for products of fewer ``multiply_adds``."""
    if multiply_adds >= _SERIAL_BELOW:
        return nullcontext()
    return _controller().limit(limits=1, user_api="blas")
