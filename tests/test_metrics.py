"""Hand-computed cases of the metrics, and agreement with scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import r2_score as sk_r2

from skmpsae.metrics import dead_fraction, fvu, l0, r2_score


def test_hand_computed():
    X = [[0.0, 0.0], [2.0, 2.0]]
    assert fvu(X, [[0.0, 0.0], [1.0, 1.0]]) == 0.5  # error 2, variance 4
    assert r2_score(X, X) == 1.0
    assert r2_score(X, [[1.0, 1.0], [1.0, 1.0]]) == 0.0  # predicting the mean
    assert l0([[1.0, 0.0, 0.0], [1.0, 2.0, 3.0]]) == 2.0
    assert dead_fraction([[1.0, 0.0, 0.0], [1.0, 0.0, 3.0]]) == 1 / 3


def test_r2_matches_scikit_learn_variance_weighted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 7)) * np.arange(1, 8)
    X_hat = X + 0.3 * rng.standard_normal(X.shape)
    expected = sk_r2(X, X_hat, multioutput="variance_weighted")
    assert r2_score(X, X_hat) == pytest.approx(expected, rel=1e-12)
    assert r2_score(X.astype(np.float32), X_hat.astype(np.float32)) == pytest.approx(
        expected, rel=1e-5)


def test_constant_data_is_finite():
    X = np.ones((4, 3))
    assert r2_score(X, X) == 1.0 and r2_score(X, X + 1) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        r2_score(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fvu([[np.nan]], [[0.0]])
