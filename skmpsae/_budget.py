"""Budget modes of MatchingPursuitSAE: checks, and calibration of a stop to a target mean L0.

``calibrate`` runs the pursuit once with no stop to collect the levels at
which each sample would stop (its coefficients' magnitudes, or its squared
residual norms after each step), then bisects over them: the mean L0 is a
non-increasing step function of either threshold (a stopped pursuit is the
full one cut short), so a threshold between two consecutive levels is as
good as any in that gap, and bisection finds the gap nearest the target.
"""

import math
from numbers import Real

import numpy as np

from ._validation import check_int, is_int

__all__ = ["BUDGET_ATTRIBUTES", "budget_state", "calibrate", "calibrated_stop",
           "check_budget_state", "check_threshold"]

#: What ``calibrate`` sets, saved and loaded with the model.
BUDGET_ATTRIBUTES = ("budget_mode_", "budget_threshold_", "budget_n_steps_", "budget_l0_",
                     "budget_n_iter_")

_MODES = {"coef": "coef_threshold", "residual": "residual_threshold"}


def check_threshold(value, name):
    """Raise unless ``value`` is None or a finite, non-negative real number."""
    if value is None:
        return
    if (not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value)
            or value < 0):
        raise ValueError(f"{name} must be a non-negative float or None, got {value!r}.")


def calibrated_stop(est, budget, tol, residual_threshold, coef_threshold):
    """The ``transform`` keyword of the calibrated stop, after checking it may be used."""
    if budget != "calibrated":
        raise ValueError(f"budget must be None or 'calibrated', got {budget!r}.")
    given = [name for name, value in (("tol", tol), ("residual_threshold", residual_threshold),
                                      ("coef_threshold", coef_threshold)) if value is not None]
    if given:
        raise ValueError(f"budget='calibrated' sets the stop itself; pass {given[0]}=None "
                         "(or budget=None to use your own stop).")
    if not hasattr(est, "budget_threshold_"):
        raise ValueError("budget='calibrated' needs a calibrated threshold; call "
                         "calibrate_budget(X_val, target_l0=...) on held-out rows first.")
    if est.budget_n_iter_ != est.n_iter_:
        raise ValueError(
            f"the budget was calibrated after {est.budget_n_iter_} epochs but the estimator "
            f"has trained {est.n_iter_}; call calibrate_budget again."
        )
    return {_MODES[est.budget_mode_]: est.budget_threshold_}


def _levels(est, X, n_steps, mode):
    """Each sample's stopping levels under an unstopped pursuit of ``n_steps`` (float64)."""
    from ._pursuit._core import pursue

    arrays = est._cast(X.dtype)
    D, b = arrays["components"], arrays["bias"]
    idx, coef = pursue(X, D, n_steps=n_steps, bias=b, positive=est.positive_code,
                       gram=arrays.get("gram"), backend="numba")
    if mode == "coef":
        return np.abs(coef[coef != 0]).astype(np.float64)
    # Squared residual norms before each step and after the last one.
    R = X.astype(np.float64) - b
    D = D.astype(np.float64)
    levels = [np.einsum("ij,ij->i", R, R)]
    for t in range(n_steps):
        R -= coef[:, t, None] * D[idx[:, t]]
        levels.append(np.einsum("ij,ij->i", R, R))
    return np.concatenate(levels)


def calibrate(est, X, target_l0, mode, n_steps):
    """Set ``est.budget_*_`` for the threshold of ``mode`` nearest ``target_l0`` on ``X``."""
    from .metrics import l0

    if mode not in _MODES:
        raise ValueError(f"mode must be 'coef' or 'residual', got {mode!r}.")
    if (not isinstance(target_l0, Real) or isinstance(target_l0, bool)
            or not math.isfinite(target_l0) or target_l0 <= 0):
        raise ValueError(f"target_l0 must be a positive number, got {target_l0!r}.")
    if n_steps is None:
        n_steps = max(2 * est.k, math.ceil(2 * target_l0))
    else:
        n_steps = check_int(n_steps, "n_steps", 1)
    if target_l0 > n_steps:
        raise ValueError(f"target_l0={target_l0} exceeds the step cap n_steps={n_steps}; "
                         "raise n_steps or lower target_l0.")
    levels = np.unique(_levels(est, X, n_steps, mode))
    # Candidates: no stop, a threshold in each gap between levels, above them all.
    top = levels[-1] * 2 + 1 if levels.size else 1.0
    candidates = np.concatenate([[0.0], (levels[:-1] + levels[1:]) / 2, [top]])
    seen = {}

    def mean_l0(i):
        if i not in seen:
            Z = est._encode(X, n_steps, defaults=False, **{_MODES[mode]: float(candidates[i])})
            seen[i] = l0(Z)
        return seen[i]

    # Smallest i with mean L0 <= target (L0 does not increase with i).
    lo, hi = 0, candidates.size - 1
    if mean_l0(lo) <= target_l0:
        hi = lo
    while lo < hi:
        mid = (lo + hi) // 2
        if mean_l0(mid) <= target_l0:
            hi = mid
        else:
            lo = mid + 1
    best = hi
    if best > 0 and abs(mean_l0(best - 1) - target_l0) < abs(mean_l0(best) - target_l0):
        best -= 1
    est.budget_mode_ = mode
    est.budget_threshold_ = float(candidates[best])
    est.budget_n_steps_ = int(n_steps)
    est.budget_l0_ = float(mean_l0(best))
    est.budget_n_iter_ = est.n_iter_


def budget_state(est):
    """The calibrated budget of ``est`` as JSON-ready values by attribute, or {} when none."""
    if not hasattr(est, "budget_threshold_"):
        return {}
    return {"budget_mode_": str(est.budget_mode_),
            "budget_threshold_": float(est.budget_threshold_),
            "budget_n_steps_": int(est.budget_n_steps_),
            "budget_l0_": float(est.budget_l0_),
            "budget_n_iter_": int(est.budget_n_iter_)}


def check_budget_state(fitted):
    """Why the budget entries of a loaded ``fitted`` dict are malformed, or None when they are fine.

    Either none of ``BUDGET_ATTRIBUTES`` or all of them, each of its type:
    a mode of ``_MODES``, finite non-negative threshold and L0, a positive
    step cap and a non-negative epoch count.
    """
    present = [key for key in BUDGET_ATTRIBUTES if key in fitted]
    if not present:
        return None
    if len(present) != len(BUDGET_ATTRIBUTES):
        missing = sorted(set(BUDGET_ATTRIBUTES) - set(present))
        return f"a calibrated budget needs all of {list(BUDGET_ATTRIBUTES)}; missing {missing}"

    def real(v):
        return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v >= 0

    def integer(v, low):
        return is_int(v) and v >= low

    checks = {"budget_mode_": fitted["budget_mode_"] in _MODES,
              "budget_threshold_": real(fitted["budget_threshold_"]),
              "budget_n_steps_": integer(fitted["budget_n_steps_"], 1),
              "budget_l0_": real(fitted["budget_l0_"]),
              "budget_n_iter_": integer(fitted["budget_n_iter_"], 0)}
    rules = {"budget_mode_": "'coef' or 'residual'",
             "budget_threshold_": "a finite non-negative number",
             "budget_n_steps_": "a positive integer", "budget_l0_": "a finite non-negative number",
             "budget_n_iter_": "a non-negative integer"}
    for key, ok in checks.items():
        if not ok:
            return f"fitted {key} must be {rules[key]}, got {fitted[key]!r:.80}"
    return None
