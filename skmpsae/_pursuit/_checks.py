"""Input checks of ``mp_encode``, shared by the host path and the GPU-array path.

The shape and norm checks take shapes and NumPy norms, so that the GPU path
(``_gpu_arrays``) raises the same messages without copying arrays to the host.
"""

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.extmath import row_norms

from .._validation import FLOATS, naming

__all__ = ["as_float_array", "check_dictionary", "check_dictionary_shape", "check_gram",
           "check_gram_shape", "check_unit_norms", "check_vector", "check_vector_shape"]

_UNIT_NORM_RTOL = 1e-3


def as_float_array(value, name, dtype=FLOATS):
    """``value`` as a finite, C-ordered 2-D float array of ``dtype``, errors naming it."""
    with naming(name):
        return check_array(value, dtype=dtype, input_name=name, ensure_min_samples=1,
                           ensure_min_features=1, copy=False, order="C")


def check_dictionary_shape(shape, n_features):
    """Raise unless a dictionary of ``shape`` has ``n_features`` columns."""
    if shape[1] != n_features:
        raise ValueError(
            f"dictionary has {shape[1]} features but X has {n_features}; pass a "
            f"dictionary of shape (n_components, {n_features})."
        )


def check_unit_norms(norms):
    """Raise unless every row norm in ``norms`` (a NumPy array) is 1 within 1e-3."""
    bad = np.abs(norms - 1) > _UNIT_NORM_RTOL
    if bad.any():
        raise ValueError(
            f"dictionary rows must have unit L2 norm; {int(bad.sum())} rows do not "
            f"(norms from {norms.min():.4g} to {norms.max():.4g}). Normalise with "
            "D / np.linalg.norm(D, axis=1, keepdims=True)."
        )


def check_vector_shape(shape, name, size):
    """Raise unless ``shape`` is ``(size,)``."""
    if len(shape) != 1 or shape[0] != size:
        raise ValueError(f"{name} must have shape ({size},), got {tuple(shape)}.")


def check_gram_shape(shape, n_components):
    """Raise unless ``shape`` is that of the Gram matrix of ``n_components`` atoms."""
    if tuple(shape) != (n_components, n_components):
        raise ValueError(
            f"gram must be dictionary @ dictionary.T of shape ({n_components}, "
            f"{n_components}), got {tuple(shape)}."
        )


def check_dictionary(dictionary, dtype, n_features):
    """Validate a dictionary: 2-D, finite, ``n_features`` columns, unit rows."""
    D = as_float_array(dictionary, "dictionary", dtype)
    check_dictionary_shape(D.shape, n_features)
    check_unit_norms(row_norms(D))  # no (n_components, n_features) temporary
    return D


def check_vector(value, name, dtype, size):
    """Validate a finite vector of shape ``(size,)`` (the bias)."""
    v = np.asarray(value)
    check_vector_shape(v.shape, name, size)
    return as_float_array(v[None, :], name, dtype)[0]


_GRAM_PAIRS = 256


def check_gram(gram, dtype, D):
    """Validate the Gram matrix of ``D``: finite, square, unit diagonal, sampled entries.

    O(n_components + 256 * n_features): the diagonal in full, and 256 fixed
    pairs ``(i, j)`` for which ``G[i, j]`` and ``G[j, i]`` must both equal
    ``D[i] @ D[j]`` (symmetry and the right dictionary at once).
    """
    G = as_float_array(gram, "gram", dtype)
    n_components = D.shape[0]
    check_gram_shape(G.shape, n_components)
    diagonal = np.diagonal(G)
    bad = np.flatnonzero(np.abs(diagonal - 1) > _UNIT_NORM_RTOL)
    if bad.size:
        raise ValueError(
            f"gram must have a unit diagonal (unit-norm atoms); gram[{bad[0]}, {bad[0]}] = "
            f"{diagonal[bad[0]]:.6g}. Pass gram=dictionary @ dictionary.T, or gram=None.")
    i, j = np.random.default_rng(0).integers(0, n_components, size=(2, _GRAM_PAIRS))
    expected = np.einsum("ij,ij->i", D[i], D[j])
    for name, got in (("gram[i, j]", G[i, j]), ("gram[j, i]", G[j, i])):
        off = np.flatnonzero(np.abs(got - expected) > _UNIT_NORM_RTOL)
        if off.size:
            a, b = int(i[off[0]]), int(j[off[0]])
            raise ValueError(
                f"gram is not dictionary @ dictionary.T: {name} at i={a}, j={b} is "
                f"{float(got[off[0]]):.6g}, but dictionary[{a}] @ dictionary[{b}] = "
                f"{float(expected[off[0]]):.6g}. Pass the Gram matrix of this dictionary "
                "(symmetric), or gram=None.")
    return G
