"""scikit-learn's own estimator checks over every SAE estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmpsae import BatchTopKSAE, MatchingPursuitSAE, MatryoshkaSAE, ReLUSAE, TopKSAE

# Fast parameters: the checks fit dozens of times on tiny data. k=1 because
# several checks set n_components=1 and k > n_components is rejected.
# (The two skipped checks are scikit-learn's array-API checks, which it skips
# itself when SCIPY_ARRAY_API is unset; skmpsae does not claim array-API support.)
FAST = dict(k=1, max_iter=2, batch_size=16)
ESTIMATORS = [
    MatchingPursuitSAE(**FAST),
    MatchingPursuitSAE(**FAST, positive_code=False, atom_dropout=0.5, init="random",
                       bias_init="mean"),
    TopKSAE(**FAST),
    BatchTopKSAE(**FAST),
    MatryoshkaSAE(**FAST),
    ReLUSAE(**FAST),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
