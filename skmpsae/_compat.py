"""The one place that imports scikit-learn internals.

An upstream rename breaks this file only.
"""

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval as _SklearnInterval
from sklearn.utils._param_validation import StrOptions, validate_params
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "StrOptions", "_fit_context", "validate_data", "validate_params"]


class Interval(_SklearnInterval):
    """scikit-learn's ``Interval``, except that a numeric interval refuses bools.

    ``True`` is an ``Integral`` in Python, so ``k=True`` would pass as ``k=1``
    and then fail deep inside transform; no skmpsae parameter means a bool
    as a count or a rate.
    """

    def is_satisfied_by(self, val):
        if isinstance(val, (bool, np.bool_)):
            return False
        return super().is_satisfied_by(val)

    def __str__(self):
        return super().__str__() + " (not a bool)"
