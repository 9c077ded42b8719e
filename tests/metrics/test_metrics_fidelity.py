"""The metrics as the paper measures them: Babel profile, centred effective rank,
R^2 centrings, cross-modal share. Hand-computed cases and naive references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import r2_score as sk_r2

from skmpsae.metrics import (
    babel_curve,
    babel_per_atom,
    babel_score,
    cross_modal_share,
    effective_rank,
    fvu,
    modality_score,
    near_duplicate_count,
    r2_score,
)


def _abs_cosines(D):
    D = np.asarray(D, dtype=np.float64)
    D = D / np.linalg.norm(D, axis=1, keepdims=True)
    G = np.abs(D @ D.T)
    np.fill_diagonal(G, -np.inf)
    return G


def _naive_per_atom(D, p):
    return np.array([np.sort(row)[::-1][:p].sum() for row in _abs_cosines(D)])


@pytest.fixture(scope="module")
def dictionary():
    return np.random.default_rng(1).standard_normal((50, 6))


# -------------------------------------------------------------- Babel curve
def test_babel_curve_hand_computed():
    D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    np.testing.assert_allclose(babel_curve(D, 2), [np.sqrt(0.5), np.sqrt(2.0)], rtol=1e-12)
    np.testing.assert_allclose(babel_curve(np.ones((4, 3)), 3), [1.0, 2.0, 3.0], rtol=1e-12)
    assert not babel_curve(np.eye(5), 4).any()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_babel_curve_equals_babel_score_at_every_p(dictionary, dtype, rtol):
    D = dictionary.astype(dtype)
    curve = babel_curve(D, 49)
    assert curve.shape == (49,) and curve.dtype == np.float64
    expected = [max(_naive_per_atom(dictionary, p)) for p in range(1, 50)]
    np.testing.assert_allclose(curve, expected, rtol=rtol)
    for p in (1, 7, 49):
        assert curve[p - 1] == pytest.approx(babel_score(D, p), rel=rtol)
    assert (np.diff(curve) >= 0).all() and (curve <= np.arange(1, 50)).all()


def test_babel_profile_in_blocks(dictionary, monkeypatch):
    from skmpsae.metrics import _coherence

    curve, per_atom, dups = (babel_curve(dictionary, 10), babel_per_atom(dictionary, 4),
                             near_duplicate_count(dictionary, 0.5))
    monkeypatch.setattr(_coherence, "_BLOCK_BYTES", 7 * 50 * 8)  # 7 rows a block
    from skmpsae.metrics import _coherence_profile

    monkeypatch.setattr(_coherence_profile, "_BLOCK_BYTES", 7 * 50 * 8)
    np.testing.assert_allclose(babel_curve(dictionary, 10), curve, rtol=1e-12)
    np.testing.assert_allclose(babel_per_atom(dictionary, 4), per_atom, rtol=1e-12)
    assert near_duplicate_count(dictionary, 0.5) == dups


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_babel_per_atom_matches_definition(dictionary, dtype, rtol):
    for p in (1, 5, 49):
        values = babel_per_atom(dictionary.astype(dtype), p)
        np.testing.assert_allclose(values, _naive_per_atom(dictionary, p), rtol=rtol)
    assert babel_per_atom(dictionary, 5).max() == pytest.approx(babel_score(dictionary, 5))


def test_babel_per_atom_hand_computed():
    D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    np.testing.assert_allclose(babel_per_atom(D, 2), [np.sqrt(0.5)] * 2 + [np.sqrt(2)])


def test_near_duplicate_count_hand_computed():
    D = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [-1.0, 0.05], [0.0, 3.0]]
    # |cos|: (0,2) 0.995, (0,3) 0.9988, (2,3) 0.9888, (1,4) 1: four pairs above 0.9
    assert near_duplicate_count(D) == 4
    assert near_duplicate_count(D, threshold=0.998) == 2
    assert near_duplicate_count(np.eye(4)) == 0
    assert near_duplicate_count(np.eye(4), threshold=0.0) == 0  # strictly above
    assert near_duplicate_count(np.ones((5, 2))) == 10  # every pair once


def test_near_duplicate_count_matches_loop(dictionary):
    G = _abs_cosines(dictionary)
    for threshold in (0.3, 0.6, 0.9):
        expected = sum(G[i, j] > threshold for i in range(50) for j in range(i + 1, 50))
        assert near_duplicate_count(dictionary, threshold) == expected
        assert near_duplicate_count(dictionary.astype(np.float32), threshold) == pytest.approx(
            expected, abs=1)  # float32 rounding may move one pair across the threshold


def test_babel_profile_bad_input():
    with pytest.raises(ValueError, match="p must be an integer between 1 and 2"):
        babel_curve(np.eye(3), 3)
    with pytest.raises(ValueError, match="p must be"):
        babel_per_atom(np.eye(3), 0)
    with pytest.raises(ValueError, match="threshold must be a float in"):
        near_duplicate_count(np.eye(3), 1.0)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_count(np.eye(3), "0.9")
    with pytest.raises(ValueError, match="zero norm"):
        near_duplicate_count([[1.0, 0.0], [0.0, 0.0]])


# ------------------------------------------------------------ effective rank
def _naive_effective_rank(A, centered):
    A = (np.asarray(A) != 0).astype(np.float64)
    if centered:
        A = A - A.mean(axis=0)
    C = A.T @ A / A.shape[0]
    s = np.linalg.svd(C, compute_uv=False)
    s = s[s > 1e-12 * max(s.max(), 1e-300)]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def test_effective_rank_centered_hand_computed():
    # Two latents that never fire together: A - m = [[.5, -.5], [-.5, .5]], rank one.
    assert effective_rank(np.eye(2), centered=True) == pytest.approx(1.0)
    assert effective_rank(np.eye(2)) == pytest.approx(2.0)
    # Three latents alone in turn: I - 1/3 has eigenvalues 1, 1, 0.
    assert effective_rank(np.eye(3), centered=True) == pytest.approx(2.0)
    # A latent firing on every sample has no variance: only the other one counts.
    Z = [[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]
    assert effective_rank(Z, centered=True) == pytest.approx(1.0)
    # Independent patterns with one extra all-zero sample: the zero row moves the means.
    Z = [[1, 0], [0, 1], [0, 0], [1, 1]]  # indicators of two independent fair coins
    assert effective_rank(Z, centered=True) == pytest.approx(2.0)  # covariance I / 4
    s = np.array([3.0, 1.0]) / 4  # A^T A / 4 = [[.5, .25], [.25, .5]]: eigenvalues .75, .25
    assert effective_rank(Z) == pytest.approx(np.exp(-(s * np.log(s)).sum()))
    assert effective_rank(np.ones((3, 2)), centered=True) == 0.0
    assert effective_rank(np.zeros((3, 2)), centered=True) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(2, 9), st.booleans())
def test_effective_rank_matches_naive(seed, n_samples, n_components, centered):
    rng = np.random.default_rng(seed)
    Z = rng.random((n_samples, n_components)) * (rng.random((n_samples, n_components)) < 0.4)
    assert effective_rank(Z, centered=centered) == pytest.approx(
        _naive_effective_rank(Z, centered), rel=1e-9, abs=1e-9)


def test_uncentred_rank_falls_with_k_for_independent_latents():
    # Latents that fire independently, k of 64 per sample on average: the mean mode
    # takes a larger share as k grows, the centred rank does not see it.
    rng = np.random.default_rng(0)
    ranks = {}
    for k in (2, 16):
        A = rng.random((20000, 64)) < k / 64
        ranks[k] = effective_rank(A), effective_rank(A, centered=True)
    assert ranks[16][0] < ranks[2][0] - 1  # uncentred: falls
    assert ranks[16][1] == pytest.approx(64, rel=0.01)  # centred: all 64 directions
    assert ranks[2][1] == pytest.approx(64, rel=0.01)


def test_effective_rank_bad_centered():
    with pytest.raises(ValueError, match="centered must be True or False"):
        effective_rank(np.eye(2), centered="yes")


# ---------------------------------------------------------------- R^2 centring
def test_r2_global_centering_hand_computed():
    X = [[0.0, 2.0], [2.0, 4.0]]
    X_hat = [[0.0, 2.0], [2.0, 3.0]]
    assert r2_score(X, X_hat) == pytest.approx(0.75)  # per feature: total 4
    assert r2_score(X, X_hat, centering="global") == pytest.approx(0.875)  # grand mean 2: 8
    assert fvu(X, X_hat, centering="global") == pytest.approx(0.125)
    assert r2_score(np.ones((3, 2)), np.ones((3, 2)), centering="global") == 1.0


@pytest.mark.parametrize("dtype, rel", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_r2_centerings_match_scikit_learn(dtype, rel):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)) * np.arange(1, 6) + np.arange(5) * 3.0  # unequal means
    X_hat = X + 0.5 * rng.standard_normal(X.shape)
    X32, Xh32 = X.astype(dtype), X_hat.astype(dtype)
    assert r2_score(X32, Xh32) == pytest.approx(
        sk_r2(X, X_hat, multioutput="variance_weighted"), rel=rel)
    assert r2_score(X32, Xh32, centering="global") == pytest.approx(
        sk_r2(X.ravel(), X_hat.ravel()), rel=rel)
    # The global total adds n * sum_f (mean_f - grand mean)^2.
    means = X.mean(axis=0)
    extra = X.shape[0] * ((means - X.mean()) ** 2).sum()
    err = ((X - X_hat) ** 2).sum()
    per_feature_total = ((X - means) ** 2).sum()
    assert r2_score(X, X_hat, centering="global") == pytest.approx(
        1 - err / (per_feature_total + extra), rel=1e-12)


def test_r2_bad_centering():
    with pytest.raises(ValueError, match=r"centering must be one of \['per_feature', 'global'\]"):
        r2_score(np.eye(2), np.eye(2), centering="mean")


# ------------------------------------------------------------ cross-modal share
def test_cross_modal_share_hand_computed():
    Z = [[1.0, 2.0, 0.0, 0.0, 3.0],
         [0.0, 2.0, 1.0, 0.0, 1.0]]  # scores 1, 0.5, 0, dead, 0.75 (not inside the band)
    share = cross_modal_share(Z, ["image", "text"])
    assert share.n_alive == 4
    assert share.by_count == pytest.approx(1 / 4)
    assert share.by_mass == pytest.approx(4 / 10)
    wide = cross_modal_share(Z, ["image", "text"], band=(0.2, 0.8))
    assert wide.by_count == pytest.approx(2 / 4) and wide.by_mass == pytest.approx(8 / 10)
    labels = cross_modal_share(Z, [1, 0], image_label=1)
    assert labels == share


def test_cross_modal_share_matches_scores():
    rng = np.random.default_rng(0)
    Z = rng.random((40, 30)) * (rng.random((40, 30)) < 0.2)
    modality = np.where(rng.random(40) < 0.3, "image", "text")
    scores = modality_score(Z, modality)
    alive = ~np.isnan(scores)
    middle = alive & (scores > 0.25) & (scores < 0.75)
    share = cross_modal_share(Z, modality)
    assert share.n_alive == alive.sum()
    assert share.by_count == pytest.approx(middle.sum() / alive.sum())
    assert share.by_mass == pytest.approx(Z[:, middle].sum() / Z.sum())


def test_cross_modal_share_degenerate_and_bad_input():
    share = cross_modal_share(np.zeros((2, 3)), ["image", "text"])
    assert np.isnan(share.by_count) and np.isnan(share.by_mass) and share.n_alive == 0
    with pytest.raises(ValueError, match="band must satisfy"):
        cross_modal_share(np.eye(2), ["image", "text"], band=(0.8, 0.2))
    with pytest.raises(ValueError, match="band must be a pair"):
        cross_modal_share(np.eye(2), ["image", "text"], band=0.5)
    with pytest.raises(ValueError, match="exactly two distinct labels"):
        cross_modal_share(np.eye(2), ["image", "image"])
