"""skmpsae.comparison: both budget accountings for every SAE, checked against naive rules."""

import numpy as np
import pytest
import scipy.sparse as sp

from skmpsae import BatchTopKSAE, JumpReLUSAE, MatchingPursuitSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skmpsae.comparison import budget_codes, pareto_curve, r2_at_l0
from skmpsae.metrics import l0

LINEAR = [TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE, JumpReLUSAE]


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["float32", "float64"])
def splits(request, digits):
    X = digits.astype(request.param)
    return X[:1000], X[1000:1400], X[1400:]


def _fit(cls, X, **params):
    return cls(n_components=64, k=4, max_iter=2, random_state=0, **params).fit(X)


@pytest.mark.parametrize("cls", [MatchingPursuitSAE, *LINEAR])
def test_per_sample_gives_exactly_l0_codes_at_most(cls, splits):
    X_train, _, X_test = splits
    sae = _fit(cls, X_train)
    Z = budget_codes(sae, X_test, 3)
    assert Z.dtype == X_test.dtype
    assert (np.count_nonzero(Z, axis=1) <= 3).all()
    np.testing.assert_array_equal(Z, sae.transform(X_test, n_steps=3))


@pytest.mark.parametrize("cls", LINEAR)
def test_mean_threshold_equals_naive_global_threshold(cls, splits):
    X_train, X_val, X_test = splits
    sae = _fit(cls, X_train)
    # Naive rule: every positive activation (above JumpReLU's own thresholds), one global
    # threshold keeping 5 per row of X_val on average.
    def activations(X):
        pre = (X - sae.bias_) @ sae.encoder_.T + sae.encoder_bias_
        return np.where(pre > getattr(sae, "threshold_", 0) if cls is JumpReLUSAE else pre > 0,
                        pre, 0)

    full_val = activations(X_val)
    values = np.sort(full_val[full_val > 0])[::-1]
    threshold = values[5 * len(X_val)]
    full_test = activations(X_test)
    expected = np.where(full_test > threshold, full_test, 0)
    Z = budget_codes(sae, X_test, 5, accounting="mean", X_calibration=X_val)
    assert Z.dtype == X_test.dtype
    tol = 1e-5 if X_test.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Z, expected, atol=tol)
    # On the calibration rows themselves the mean is the target (ties aside).
    on_val = budget_codes(sae, X_val, 5, accounting="mean", X_calibration=X_val)
    assert abs(l0(on_val) - 5) <= 1 / len(X_val)


def test_mean_for_mp_is_its_calibrated_stop_and_leaves_the_estimator_alone(splits):
    X_train, X_val, X_test = splits
    sae = _fit(MatchingPursuitSAE, X_train)
    Z = budget_codes(sae, X_test, 6, accounting="mean", X_calibration=X_val)
    assert not hasattr(sae, "budget_threshold_")  # calibrated on a copy
    expected = sae.calibrate_budget(X_val, target_l0=6, n_steps=12).transform(
        X_test, budget="calibrated")
    np.testing.assert_array_equal(Z, expected)
    # A calibration the user made is kept as it was.
    sae.calibrate_budget(X_val, target_l0=2)
    before = sae.budget_threshold_
    budget_codes(sae, X_test, 6, accounting="mean", X_calibration=X_val)
    assert sae.budget_threshold_ == before and sae.budget_l0_ < 3
    assert abs(l0(budget_codes(sae, X_val, 6, accounting="mean", X_calibration=X_val)) - 6) < 0.2


def test_relu_cannot_spend_more_than_it_activates(splits):
    X_train, X_val, X_test = splits
    sae = _fit(ReLUSAE, X_train)
    every = (sae.transform(X_test, n_steps=64) > 0).sum(axis=1).mean()
    Z = budget_codes(sae, X_test, 60, accounting="mean", X_calibration=X_val)
    assert l0(Z) == pytest.approx(every)


def test_sparse_output_gives_the_same_codes_as_csr(splits):
    X_train, X_val, X_test = splits
    dense = _fit(BatchTopKSAE, X_train)
    sparse = _fit(BatchTopKSAE, X_train, sparse_output=True)
    Z = budget_codes(sparse, X_test, 4, accounting="mean", X_calibration=X_val)
    assert sp.issparse(Z) and Z.format == "csr"
    np.testing.assert_array_equal(
        Z.toarray(), budget_codes(dense, X_test, 4, accounting="mean", X_calibration=X_val))


def test_pareto_curve_rises_with_the_budget_for_mp(splits):
    X_train, X_val, X_test = splits
    sae = _fit(MatchingPursuitSAE, X_train)
    for accounting in ("per_sample", "mean"):
        curve = pareto_curve(sae, X_test, [1, 2, 4, 8], accounting=accounting, X_calibration=X_val)
        assert curve.shape == (4, 2)
        assert (np.diff(curve[:, 1]) > 0).all() and (np.diff(curve[:, 0]) > 0).all()
    r2, mean_l0 = r2_at_l0(sae, X_test, 4)
    assert r2 == pytest.approx(pareto_curve(sae, X_test, [4], accounting="per_sample")[0, 1])


@pytest.mark.parametrize("kwargs, match", [
    ({"accounting": "median"}, "accounting must be one of"),
    ({"l0": True}, "l0 .*per_sample.* got True"),
    ({"l0": 0}, "l0 .*got 0"),
    ({"l0": 2.5}, "l0 .*got 2.5"),
    ({"l0": float("nan"), "accounting": "mean"}, "l0 must be a positive number"),
    ({"l0": -1.0, "accounting": "mean"}, "l0 must be a positive number"),
    ({"accounting": "mean"}, "pass X_calibration"),
    ({"accounting": "mean", "X_calibration": np.ones((5, 3))}, "X_calibration"),
])
@pytest.mark.parametrize("cls", [MatchingPursuitSAE, TopKSAE])
def test_bad_arguments_are_named(cls, splits, kwargs, match):
    X_train, _, X_test = splits
    sae = _fit(cls, X_train)
    kwargs = {"l0": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        budget_codes(sae, X_test, kwargs.pop("l0"), **kwargs)
