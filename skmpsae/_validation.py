"""Input checks shared by the whole package; errors always say which argument is at fault.

The estimators, ``mp_encode``, the metrics, the scorers, ``inspection`` and
``datasets`` all import from here: the float dtypes kept as they are
(``FLOATS``), integer parameters (``check_int``, ``check_n_steps``),
dictionaries given as arrays or fitted SAEs (``check_atoms``) and codes
(``check_codes``).
"""

from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.extmath import row_norms
from sklearn.utils.validation import check_is_fitted

__all__ = ["FLOATS", "check_atoms", "check_codes", "check_int", "is_int", "check_magnitude",
           "check_n_steps", "check_rows", "naming"]

#: Float dtypes kept as given; other numeric input becomes the first, float64.
FLOATS = (np.float64, np.float32)


@contextmanager
def naming(name):
    """Prefix ``name: `` to ValueError/TypeError messages raised inside the block.

    scikit-learn's validation names the input in some messages ("Input X
    contains NaN") but not in others ("Found array with 0 sample(s)",
    "could not convert string to float").
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if message.startswith(f"{name}:"):
            raise
        raise type(exc)(f"{name}: {message}") from exc


def is_int(value):
    """Whether ``value`` is an integer (bools are Integral in Python, but not counts)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_int(value, name, low, high=None):
    """``value`` as an int in ``[low, high]``, else a ValueError naming it."""
    if is_int(value) and value >= low and (high is None or value <= high):
        return int(value)
    bounds = f">= {low}" if high is None else f"between {low} and {high}"
    raise ValueError(f"{name} must be an integer {bounds}, got {value!r}.")


def check_n_steps(n_steps):
    """``n_steps`` as given when it is a non-negative integer or None, else a ValueError."""
    if n_steps is not None and (not is_int(n_steps) or n_steps < 0):
        raise ValueError(f"n_steps must be a non-negative integer or None, got {n_steps!r}.")
    return n_steps


def check_atoms(dictionary, name="dictionary"):
    """Rows of ``dictionary`` (an array or a fitted SAE) scaled to unit norm.

    float32 stays float32. Zero rows have no direction and are rejected.
    """
    if hasattr(dictionary, "get_params"):
        check_is_fitted(dictionary, "components_")
        dictionary = dictionary.components_
    with naming(name):
        D = check_array(dictionary, dtype=FLOATS, input_name=name)
    norms = row_norms(D)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} row(s) of zero norm (first: {zero[:5].tolist()}); an atom "
            f"needs a direction: drop them, e.g. {name}[np.linalg.norm({name}, axis=1) > 0]."
        )
    return D / norms[:, None].astype(D.dtype, copy=False)


def check_codes(Z, n_components=None, name="Z"):
    """Codes as a 2-D numeric array, optionally with ``n_components`` columns.

    SciPy sparse codes (``sparse_output=True``) come back as a CSR matrix
    with sorted indices and no stored zeros (a copy when they had any).
    """
    import scipy.sparse as sp

    with naming(name):
        Z = check_array(Z, dtype="numeric", input_name=name, accept_sparse="csr")
    if sp.issparse(Z):
        Z = sp.csr_matrix(Z)
        if Z.nnz and (not Z.has_sorted_indices or (Z.data == 0).any()):
            Z = Z.copy()
            Z.eliminate_zeros()
            Z.sort_indices()
    if n_components is not None and Z.shape[1] != n_components:
        raise ValueError(
            f"{name} has {Z.shape[1]} columns but the dictionary has {n_components} atoms; "
            "pass codes of this dictionary (estimator.transform(X))."
        )
    return Z


def _magnitude_bound(dtype, n_features):
    return float(np.sqrt(np.finfo(dtype).max)) / (64 * np.sqrt(n_features))


def check_rows(block, where, first_row=None):
    """Raise unless the float ``block`` of a stream is finite and of safe magnitude.

    The same rules as for in-memory arrays (finite, ``check_magnitude``'s
    bound), applied to one chunk of a stream; the error names ``where`` (e.g.
    ``"chunk 7"``), the row inside it and, with ``first_row`` (the rows before
    it), the row of the whole ``X`` (only that when ``where`` is None).
    """
    if block.size == 0:
        return block
    finite = np.isfinite(block).all(axis=1)
    bound = _magnitude_bound(block.dtype, block.shape[1])
    largest = np.abs(np.where(np.isfinite(block), block, 0)).max(axis=1)
    if finite.all() and not (largest > bound).any():
        return block
    row = int(np.flatnonzero(~finite | (largest > bound))[0])
    if where is None:  # a memory-mapped X: its rows are X's rows
        at = f"row {first_row + row}"
    else:
        at = f"{where}, row {row}" + (f" (row {first_row + row} of X)"
                                      if first_row is not None else "")
    if not finite[row]:
        raise ValueError(f"X: {at} contains NaN or infinity; clean the data first.")
    raise ValueError(
        f"X: {at} holds a value of magnitude {largest[row]:.3g}, beyond {bound:.3g}: its "
        f"square overflows {block.dtype} in training and encoding. Scale X (e.g. "
        "sklearn.preprocessing.StandardScaler) or pass float64.")


def check_magnitude(X):
    """Refuse ``X`` whose squared norms would overflow its dtype in training or encoding.

    float32 squares overflow from about 1.8e19; sums over features and over a
    batch (losses, Gram products, MP's ``tol`` threshold) need headroom, so
    the bound is ``sqrt(finfo.max) / (64 * sqrt(n_features))``: 3.6e16 for
    float32 with 64 features, 2.6e151 for float64.
    """
    if X.size == 0:
        return X
    largest = max(float(X.max()), -float(X.min()))
    bound = _magnitude_bound(X.dtype, X.shape[1])
    if largest > bound:
        raise ValueError(
            f"X holds values of magnitude up to {largest:.3g}, beyond {bound:.3g}: their squares "
            f"overflow {X.dtype} in training and encoding. Scale X (e.g. X / {largest:.3g}, or "
            "sklearn.preprocessing.StandardScaler) or pass float64."
        )
    return X
