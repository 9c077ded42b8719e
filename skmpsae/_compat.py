"""The one place that imports scikit-learn internals.

An upstream rename breaks this file only.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "StrOptions", "_fit_context", "validate_data", "validate_params"]
