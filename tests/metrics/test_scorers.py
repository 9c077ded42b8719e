"""Scorers: values equal the metrics, and GridSearchCV accepts them (single and multi-metric)."""

import pickle

import numpy as np
import pytest
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmpsae import MatchingPursuitSAE
from skmpsae.metrics import dead_fraction, effective_rank, fvu, l0
from skmpsae.scorers import get_scorer, get_scorer_names, multimetric_scorer


def _sae(**params):
    return MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0, **params)


@pytest.fixture(scope="module")
def fitted(digits):
    return _sae().fit(digits)


def test_names():
    assert get_scorer_names() == sorted(["r2", "neg_fvu", "neg_mean_squared_error", "neg_l0",
                                         "neg_dead_fraction", "effective_rank"])


def test_values_equal_the_metrics(fitted, digits):
    Z = fitted.transform(digits)
    X_hat = fitted.inverse_transform(Z)
    assert get_scorer("r2")(fitted, digits) == pytest.approx(fitted.score(digits), rel=1e-12)
    assert get_scorer("neg_fvu")(fitted, digits) == -fvu(digits, X_hat)
    assert get_scorer("neg_mean_squared_error")(fitted, digits) == pytest.approx(
        -mean_squared_error(digits, X_hat), rel=1e-6)
    assert get_scorer("neg_l0")(fitted, digits) == -l0(Z)
    assert get_scorer("neg_dead_fraction")(fitted, digits, None) == -dead_fraction(Z)
    assert get_scorer("effective_rank")(fitted, digits) == effective_rank(Z)
    scores = multimetric_scorer(["neg_l0", "r2"])(fitted, digits)
    assert scores == {"neg_l0": -l0(Z), "r2": get_scorer("r2")(fitted, digits)}


def test_n_steps_is_passed_to_transform(fitted, digits):
    Z = fitted.transform(digits, n_steps=12)
    assert get_scorer("neg_l0", n_steps=12)(fitted, digits) == -l0(Z)
    assert multimetric_scorer(["neg_l0"], n_steps=1)(fitted, digits) == {"neg_l0": -1.0}


def test_grid_search_single_metric(digits):
    search = GridSearchCV(_sae(), {"k": [1, 6]}, cv=2, scoring=get_scorer("neg_fvu"))
    search.fit(digits)
    assert search.best_params_ == {"k": 6}
    assert (search.cv_results_["mean_test_score"] < 0).all()
    assert search.score(digits) == get_scorer("neg_fvu")(search.best_estimator_, digits)


def test_grid_search_multi_metric_dict_and_callable_agree(digits):
    names = ["r2", "neg_l0"]
    results = {}
    for label, scoring in [("dict", {name: get_scorer(name) for name in names}),
                           ("callable", multimetric_scorer(names))]:
        search = GridSearchCV(_sae(), {"k": [1, 6]}, cv=2, scoring=scoring, refit="r2")
        search.fit(digits)
        assert search.best_params_ == {"k": 6}
        results[label] = {name: search.cv_results_[f"mean_test_{name}"] for name in names}
    for name in names:
        np.testing.assert_allclose(results["dict"][name], results["callable"][name])
    assert results["dict"]["neg_l0"][0] == -1.0


def test_cross_validate_with_a_pipeline_and_pandas_output(digits):
    pipe = make_pipeline(StandardScaler(), _sae())
    out = cross_validate(pipe, digits, cv=2, scoring=multimetric_scorer(["r2", "neg_fvu"]))
    np.testing.assert_allclose(out["test_r2"], 1.0 + out["test_neg_fvu"])
    sae = _sae().set_output(transform="pandas").fit(digits)
    assert get_scorer("neg_l0")(sae, digits) == -l0(sae.transform(digits).to_numpy())


def test_scorers_pickle(fitted, digits):
    scorer = pickle.loads(pickle.dumps(multimetric_scorer(["r2", "neg_l0"], n_steps=2)))
    assert scorer(fitted, digits)["neg_l0"] >= -2
    assert repr(scorer) == "multimetric_scorer(['r2', 'neg_l0'], n_steps=2)"
    assert repr(get_scorer("r2")) == "get_scorer('r2')"


def test_bad_names():
    with pytest.raises(ValueError, match="'accuracy' is not an skmpsae scorer; choose from"):
        get_scorer("accuracy")
    with pytest.raises(ValueError, match="'neg_mse' is not an skmpsae scorer"):
        multimetric_scorer(["r2", "neg_mse"])
    with pytest.raises(ValueError, match="names must be a non-empty list"):
        multimetric_scorer("r2")
    with pytest.raises(ValueError, match="names has repeats"):
        multimetric_scorer(["r2", "r2"])
    with pytest.raises(ValueError, match="n_steps must be a non-negative integer or None, got -1"):
        get_scorer("r2", n_steps=-1)
