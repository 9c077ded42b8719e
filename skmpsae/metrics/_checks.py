"""Input checks shared by the metrics: dictionaries, codes, integer parameters."""

from numbers import Integral

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from .._validation import naming

__all__ = ["check_atoms", "check_codes", "check_int"]

_FLOATS = [np.float64, np.float32]


def check_atoms(dictionary, name="dictionary"):
    """Rows of ``dictionary`` (an array or a fitted SAE) scaled to unit norm.

    float32 stays float32. Zero rows have no direction and are rejected.
    """
    if hasattr(dictionary, "get_params"):
        check_is_fitted(dictionary, "components_")
        dictionary = dictionary.components_
    with naming(name):
        D = check_array(dictionary, dtype=_FLOATS, input_name=name)
    norms = np.linalg.norm(D, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} row(s) of zero norm (first: {zero[:5].tolist()}); an atom "
            f"needs a direction: drop them, e.g. {name}[np.linalg.norm({name}, axis=1) > 0]."
        )
    return D / norms[:, None].astype(D.dtype, copy=False)


def check_codes(Z, n_components=None, name="Z"):
    """Codes as a 2-D numeric array, optionally with ``n_components`` columns."""
    with naming(name):
        Z = check_array(Z, dtype="numeric", input_name=name)
    if n_components is not None and Z.shape[1] != n_components:
        raise ValueError(
            f"{name} has {Z.shape[1]} columns but the dictionary has {n_components} atoms; "
            "pass codes of this dictionary (estimator.transform(X))."
        )
    return Z


def check_int(value, name, low, high=None):
    """``value`` as an int in ``[low, high]``, else a ValueError naming it."""
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if ok and value >= low and (high is None or value <= high):
        return int(value)
    bounds = f">= {low}" if high is None else f"between {low} and {high}"
    raise ValueError(f"{name} must be an integer {bounds}, got {value!r}.")
