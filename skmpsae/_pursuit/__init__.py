"""Matching-pursuit encoders: NumPy reference, numba kernel, torch."""

from ._mp_encode import DEFAULT_MEMORY_BUDGET, mp_encode

__all__ = ["DEFAULT_MEMORY_BUDGET", "mp_encode"]
