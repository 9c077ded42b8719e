"""scikit-learn's own estimator checks over every SAE estimator, at any k.

k > n_components is allowed (several checks set n_components=1): matching
pursuit may select an atom again (its code then adds up), a top-k of all the
latents keeps them all (TopK, BatchTopK, Matryoshka), and ReLUSAE's target L0
is out of reach (its L1 weight falls to its floor). So the checks run at each
estimator's default parameters and at k = 1, 4 and 32.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmpsae import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatchingPursuitSAE,
    MatryoshkaSAE,
    ReLUSAE,
    TopKSAE,
)

# Fast parameters: the checks fit dozens of times on tiny data.
# (The two skipped checks are scikit-learn's array-API checks, which it skips
# itself when SCIPY_ARRAY_API is unset; skmpsae does not claim array-API support.)
FAST = dict(max_iter=2, batch_size=16)
CLASSES = [MatchingPursuitSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE, JumpReLUSAE]
ESTIMATORS = [
    MatchingPursuitSAE(k=1, **FAST, positive_code=False, atom_dropout=0.5, init="random",
                       bias_init="mean"),
    *[cls(k=k, **FAST) for k in (1, 4, 32) for cls in CLASSES],
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_sklearn_compatible_at_default_parameters(cls):
    from sklearn.utils.estimator_checks import check_estimator

    # Every check of scikit-learn at the defaults (max_iter=50: a few seconds each).
    check_estimator(cls(), on_fail="raise")
