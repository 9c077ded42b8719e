"""MatchingPursuitSAE: training, inference, bad input, scikit-learn integration."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skmpsae import MatchingPursuitSAE, mp_encode
from skmpsae.metrics import dead_fraction, l0, r2_score


def quick(**params):
    base = dict(k=4, n_components=64, max_iter=3, batch_size=128, random_state=0)
    return MatchingPursuitSAE(**{**base, **params})


@pytest.fixture(scope="module")
def fitted(digits):
    return quick().fit(digits)


def test_fit_learns_digits(digits):
    sae = MatchingPursuitSAE(k=8, max_iter=10, random_state=0).fit(digits)
    assert sae.components_.shape == (512, 64) and sae.bias_.shape == (64,)
    assert sae.n_components_ == 512 and sae.n_iter_ == 10 and len(sae.loss_curve_) == 10
    assert sae.loss_curve_[-1] < 0.8 * sae.loss_curve_[0]
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1, rtol=1e-5)
    assert sae.score(digits) > 0.9
    assert l0(sae.transform(digits)) <= 8


def test_transform_is_matching_pursuit_with_fitted_dictionary(fitted, digits):
    expected = mp_encode(digits, fitted.components_, n_steps=4, bias=fitted.bias_,
                         backend="numpy")
    np.testing.assert_array_equal(fitted.transform(digits), expected)


def test_adaptive_sparsity_is_monotone(fitted, digits):
    r2 = [r2_score(digits, fitted.inverse_transform(fitted.transform(digits, n_steps=s)))
          for s in (0, 1, 2, 4, 8, 16, 64, 200)]  # n_steps may exceed k and n_components
    assert all(b >= a - 1e-6 for a, b in zip(r2, r2[1:], strict=False))
    assert r2[-1] > r2[3] + 0.05


def test_tol_stops_early(fitted, digits):
    full = fitted.transform(digits, n_steps=32)
    early = fitted.transform(digits, n_steps=32, tol=0.2)
    assert l0(early) < l0(full)

    def residual_sq(codes):
        return ((digits - fitted.inverse_transform(codes)) ** 2).sum(axis=1)

    base = ((digits - fitted.bias_) ** 2).sum(axis=1)
    # Samples that get below the tolerance within 32 steps stop there, and
    # stopping early never leaves a smaller residual than running on.
    reaches = residual_sq(full) <= 0.2 * base
    assert reaches.mean() > 0.5
    assert np.all(residual_sq(early)[reaches] <= 0.2 * base[reaches] * (1 + 1e-4))
    assert np.all(residual_sq(early) >= residual_sq(full) * (1 - 1e-4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_preserved(digits, dtype):
    X = digits.astype(dtype)
    sae = quick(max_iter=1).fit(X)
    assert sae.components_.dtype == dtype
    for other in (np.float32, np.float64):
        assert sae.transform(X.astype(other)).dtype == other
        assert sae.inverse_transform(sae.transform(X.astype(other))).dtype == other


def test_float32_and_float64_models_agree(digits):
    m32 = quick(max_iter=1).fit(digits)
    m64 = quick(max_iter=1).fit(digits.astype(np.float64))
    np.testing.assert_allclose(m32.components_, m64.components_, atol=2e-3)


def test_partial_fit_continues(digits):
    sae = quick()
    for chunk in np.array_split(digits, 4):
        sae.partial_fit(chunk)
    assert sae.n_iter_ == 4 and len(sae.loss_curve_) == 4
    before = sae.components_.copy()
    sae.partial_fit(digits[:200])
    assert sae.n_iter_ == 5 and not np.array_equal(before, sae.components_)
    with pytest.raises(ValueError, match="X has 10 features"):
        sae.partial_fit(digits[:, :10])


def test_refit_is_reproducible(digits):
    a = quick(max_iter=2).fit(digits).components_
    b = quick(max_iter=2).fit(digits).components_
    np.testing.assert_array_equal(a, b)


def test_hyperparameters_and_inputs_not_mutated(digits):
    sae = quick(n_components=None, expansion_factor=2)
    params = sae.get_params()
    X = digits.copy()
    sae.fit(X)
    sae.transform(X, n_steps=9)
    assert sae.get_params() == params
    np.testing.assert_array_equal(X, digits)
    X.flags.writeable = False
    sae.fit(X).transform(X)  # read-only input is fine


def test_failure_midway_keeps_previous_fit(digits, monkeypatch):
    sae = quick().fit(digits)
    before = {k: v.copy() for k, v in (("c", sae.components_), ("b", sae.bias_))}
    calls = {"n": 0}
    original = MatchingPursuitSAE._batch_loss

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("boom")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MatchingPursuitSAE, "_batch_loss", failing)
    with pytest.raises(RuntimeError, match="boom"):
        sae.fit(digits)
    np.testing.assert_array_equal(sae.components_, before["c"])
    np.testing.assert_array_equal(sae.bias_, before["b"])
    assert sae.n_iter_ == 3


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[np.nan] * 64]), "Input X contains NaN"),
        (np.array([[np.inf] * 64]), "Input X contains infinity"),
        (np.zeros((0, 64)), "^X: Found array with 0 sample"),
        (np.array([["a"] * 64]), "^X: could not convert string to float"),
        (np.ones((3, 64)) * 1j, "^X: Complex data not supported"),
        (np.ones(64), "^X: Expected 2D array"),
    ],
)
def test_bad_training_input(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        quick().fit(X)


def test_k_above_n_components_may_select_an_atom_again(digits):
    # Issue 13 decided k > n_components is valid for MP (it used to be refused).
    sae = quick(k=65).fit(digits)
    assert sae.transform(digits[:5]).shape == (5, 64)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"k": 0}, "'k' parameter"),
        ({"k": True}, "'k' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"learning_rate": -1.0}, "'learning_rate' parameter"),
        ({"init": "pca"}, "'init' parameter"),
        ({"atom_dropout": 1.0}, "'atom_dropout' parameter"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": "cuda"}, "CUDA is not available"),
    ],
)
def test_bad_parameters(digits, params, match):
    import torch

    if params.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match=match):
        quick(**params).fit(digits)


def test_bad_inference_input(fitted, digits):
    expecting = "X has 10 features, but MatchingPursuitSAE is expecting 64"
    with pytest.raises(ValueError, match=expecting):
        fitted.transform(digits[:, :10])
    with pytest.raises(ValueError, match="n_steps must be a non-negative integer"):
        fitted.transform(digits, n_steps=-1)
    with pytest.raises(ValueError, match="tol must be a non-negative float"):
        fitted.transform(digits, tol=-0.5)
    columns = "X has 3 columns but MatchingPursuitSAE has n_components_=64"
    with pytest.raises(ValueError, match=columns):
        fitted.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(np.full((1, 64), np.nan))


def test_unfitted():
    from sklearn.exceptions import NotFittedError

    for method in ("transform", "inverse_transform", "score"):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(quick(), method)(np.zeros((2, 64)))


def test_feature_names_and_pandas_output(fitted, digits):
    names = fitted.get_feature_names_out()
    assert names[0] == "matchingpursuitsae0" and len(names) == 64
    sae = clone(fitted).set_output(transform="pandas").fit(digits)
    out = sae.transform(digits)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    assert 0.5 < sae.score(digits) <= 1


def test_grid_search_over_k_and_pipeline(digits):
    from sklearn.datasets import load_digits

    y = load_digits().target
    search = GridSearchCV(quick(max_iter=1), {"k": [2, 8]}, cv=2).fit(digits)
    assert search.best_params_ == {"k": 8}  # more steps reconstruct better
    pipe = make_pipeline(quick(max_iter=2, k=8), LogisticRegression(max_iter=300))
    assert pipe.fit(digits, y).score(digits, y) > 0.8


def test_verbose_progress_bar(digits, capsys):
    quick(max_iter=1, verbose=1).fit(digits)
    assert "MatchingPursuitSAE" in capsys.readouterr().err


def test_revival_reduces_dead_atoms(digits):
    # Non-negative data, no pre-bias, one step, random atoms: the few atoms that
    # point into the positive orthant win every sample and the rest stay dead.
    base = dict(n_components=1024, k=1, max_iter=4, init="random", bias_init="zeros",
                random_state=0)
    without = MatchingPursuitSAE(revive_dead=False, **base).fit(digits)
    revived = MatchingPursuitSAE(revive_dead=True, **base).fit(digits)
    dead_without = dead_fraction(without.transform(digits))
    dead_revived = dead_fraction(revived.transform(digits))
    assert dead_without > 0.8
    assert dead_revived < dead_without / 2
    assert revived.score(digits) > without.score(digits) + 0.5


def test_atom_dropout_trains(digits):
    sae = quick(atom_dropout=0.75, max_iter=2).fit(digits)
    assert sae.score(digits) > 0.5


def test_training_buffers_are_freed_with_the_run(digits):
    # Each run's selection buffers (a Gram matrix of n_components^2) live only
    # as long as its parameters: none is left once fit or partial_fit returns.
    from skmpsae._mp_sae import _WORKSPACES

    before = len(_WORKSPACES)
    sae = quick(max_iter=2).fit(digits)
    assert len(_WORKSPACES) == before
    sae.partial_fit(digits)
    assert len(_WORKSPACES) == before
