"""scikit-learn's own estimator checks over every SAE estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmpsae import MatchingPursuitSAE

# Fast parameters: the checks fit dozens of times on tiny data. k=1 because
# several checks set n_components=1 and k > n_components is rejected.
FAST = [
    MatchingPursuitSAE(k=1, max_iter=2, batch_size=16),
    MatchingPursuitSAE(k=1, max_iter=2, batch_size=16, positive_code=False, atom_dropout=0.5,
                       init="random", bias_init="mean"),
]


@parametrize_with_checks(FAST)
def test_sklearn_compatible(estimator, check):
    check(estimator)
