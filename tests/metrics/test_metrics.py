"""Hand-computed cases of the metrics, and agreement with scikit-learn."""

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.metrics import r2_score as sk_r2
from sklearn.metrics.pairwise import cosine_similarity

from skmpsae.metrics import (
    babel_random_subsets,
    babel_score,
    babel_selected,
    bridge_score,
    dead_fraction,
    effective_rank,
    fvu,
    l0,
    modality_score,
    r2_score,
)


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


# ------------------------------------------------------------------ helpers
def _unit(D):
    D = np.asarray(D, dtype=np.float64)
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _naive_babel(D, p):
    """Tropp's definition, straight from the full Gram matrix."""
    G = np.abs(cosine_similarity(D))
    np.fill_diagonal(G, -np.inf)
    return max(np.sort(row)[::-1][:p].sum() for row in G)


@pytest.fixture(scope="module")
def random_dictionary():
    return np.random.default_rng(0).standard_normal((40, 8))


@pytest.fixture(scope="module")
def tiny_sae(digits):
    from skmpsae import MatchingPursuitSAE

    return MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0).fit(digits)


# -------------------------------------------------------------------- Babel
def test_babel_hand_computed():
    D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    assert babel_score(D, 1) == pytest.approx(np.sqrt(0.5))
    assert babel_score(D, 2) == pytest.approx(np.sqrt(2.0))
    assert babel_score(np.eye(5), 4) == 0.0
    assert babel_score(np.ones((4, 3)), 3) == pytest.approx(3.0)  # copies: p


@pytest.mark.parametrize("p", [1, 3, 39])
def test_babel_matches_definition(random_dictionary, p):
    assert babel_score(random_dictionary, p) == pytest.approx(
        _naive_babel(random_dictionary, p), rel=1e-12)


def test_babel_blocks_and_dtypes(random_dictionary, monkeypatch):
    from skmpsae.metrics import _coherence

    expected = _naive_babel(random_dictionary, 5)
    monkeypatch.setattr(_coherence, "_BLOCK_BYTES", 7 * 40 * 8)  # blocks of 7 rows, ragged end
    assert babel_score(random_dictionary, 5) == pytest.approx(expected, rel=1e-12)
    D32 = random_dictionary.astype(np.float32)
    assert babel_score(D32, 5) == pytest.approx(expected, rel=1e-5)
    # Rows are normalised: scaling atoms changes nothing.
    scaled = random_dictionary * np.arange(1, 41)[:, None]
    assert babel_score(scaled, 5) == pytest.approx(expected, rel=1e-12)


def test_babel_accepts_fitted_estimator(tiny_sae):
    assert babel_score(tiny_sae, 3) == babel_score(tiny_sae.components_, 3)


def test_babel_bad_input():
    with pytest.raises(ValueError, match="p must be an integer between 1 and 2"):
        babel_score(np.eye(3), 3)
    with pytest.raises(ValueError, match="p must be"):
        babel_score(np.eye(3), 1.5)
    with pytest.raises(ValueError, match="at least 2"):
        babel_score([[1.0, 0.0]], 1)
    with pytest.raises(ValueError, match=r"dictionary has 1 row\(s\) of zero norm"):
        babel_score([[1.0, 0.0], [0.0, 0.0]], 1)
    with pytest.raises(ValueError, match="dictionary.*NaN"):
        babel_score([[1.0, np.nan], [0.0, 1.0]], 1)
    from sklearn.exceptions import NotFittedError

    from skmpsae import MatchingPursuitSAE

    with pytest.raises(NotFittedError):
        babel_score(MatchingPursuitSAE(), 1)


def _naive_selected(D, Z, p=None):
    values = []
    for z in np.asarray(Z):
        S = np.flatnonzero(z)
        q = len(S) - 1 if p is None else p
        if len(S) >= 2 and len(S) > q:
            values.append(_naive_babel(D[S], q))
    return np.mean(values) if values else np.nan


def test_babel_selected_hand_computed():
    D = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    Z = [[2.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert babel_selected(D, Z) == pytest.approx(np.sqrt(0.5) / 2)
    # Only the sample with all three atoms has p + 1 = 3 active atoms.
    assert babel_selected(D, [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], p=2) == pytest.approx(
        np.sqrt(2.0))


@pytest.mark.parametrize("p", [None, 1, 3])
def test_babel_selected_matches_per_sample_loop(random_dictionary, p):
    rng = np.random.default_rng(1)
    Z = rng.random((60, 40)) * (rng.random((60, 40)) < 0.1)  # supports of varied sizes
    assert babel_selected(random_dictionary, Z, p) == pytest.approx(
        _naive_selected(_unit(random_dictionary), Z, p), rel=1e-12)


def test_babel_selected_is_bounded_by_global(tiny_sae, digits):
    Z = tiny_sae.transform(digits)
    assert babel_selected(tiny_sae, Z, p=2) <= babel_score(tiny_sae, 2)


def test_babel_selected_degenerate_codes():
    # All-dead codes, or supports too small: documented NaN.
    assert np.isnan(babel_selected(np.eye(3), np.zeros((4, 3))))
    assert np.isnan(babel_selected(np.eye(3), np.eye(3)))
    assert np.isnan(babel_selected(np.eye(3), [[1.0, 1.0, 0.0]], p=2))  # needs 3 atoms
    assert babel_selected(np.eye(3), [[1.0, 1.0, 1.0]], p=2) == 0.0
    with pytest.raises(ValueError, match="Z has 2 columns but the dictionary has 3 atoms"):
        babel_selected(np.eye(3), np.zeros((4, 2)))


def test_babel_random_subsets():
    assert babel_random_subsets(np.eye(6), 4, n_draws=20, random_state=0) == 0.0
    assert babel_random_subsets(np.ones((5, 2)), 3, random_state=0) == pytest.approx(2.0)
    assert babel_random_subsets(np.ones((5, 2)), 3, p=1, random_state=0) == pytest.approx(1.0)
    # An array of sizes is a distribution: sizes 0 and 1 have no score and are skipped.
    assert babel_random_subsets(np.ones((5, 2)), [0, 1, 2], random_state=0) == pytest.approx(1.0)
    assert np.isnan(babel_random_subsets(np.ones((5, 2)), [0, 1], random_state=0))
    mixed = babel_random_subsets(np.ones((5, 2)), [2, 4], n_draws=4000, random_state=0)
    assert mixed == pytest.approx(2.0, abs=0.1)  # half 1.0, half 3.0


def test_babel_random_subsets_matches_exact_expectation(random_dictionary):
    # Expected score of a random pair is the mean |cosine| over all pairs.
    G = np.abs(cosine_similarity(random_dictionary))
    exact = G[np.triu_indices(40, 1)].mean()
    estimate = babel_random_subsets(random_dictionary, 2, n_draws=20000, random_state=0)
    assert estimate == pytest.approx(exact, rel=0.02)
    assert estimate == babel_random_subsets(random_dictionary, 2, n_draws=20000,
                                            random_state=0)


def test_babel_random_subsets_bad_input():
    with pytest.raises(ValueError, match="size must be an integer between 2 and 3"):
        babel_random_subsets(np.eye(3), 4)
    with pytest.raises(ValueError, match="size must be an integer between 3 and 3"):
        babel_random_subsets(np.eye(3), 2, p=2)
    with pytest.raises(ValueError, match="size values must lie between 0 and n_atoms=3"):
        babel_random_subsets(np.eye(3), [2, 5])
    with pytest.raises(ValueError, match="size must be an int or a non-empty 1-D array"):
        babel_random_subsets(np.eye(3), [1.5])
    with pytest.raises(ValueError, match="n_draws must be an integer >= 1"):
        babel_random_subsets(np.eye(3), 2, n_draws=0)


# ----------------------------------------------------------------- modality
def test_modality_score_hand_computed():
    Z = [[1.0, 2.0, 0.0, 0.0],
         [0.0, 2.0, 1.0, 0.0],
         [0.0, 0.0, 3.0, 0.0]]
    modality = ["image", "text", "text"]
    # latent 0: 1 / (1 + 0); latent 1: 2 / (2 + 1); latent 2: 0; latent 3: dead.
    np.testing.assert_allclose(modality_score(Z, modality), [1.0, 2 / 3, 0.0, np.nan])
    np.testing.assert_allclose(modality_score(Z, [7, 3, 3], image_label=7),
                               [1.0, 2 / 3, 0.0, np.nan])
    # Means, not sums: repeating the image rows changes nothing; signs are ignored.
    np.testing.assert_allclose(modality_score(np.vstack([Z[:1]] * 5 + [Z[1:]]),
                                              ["image"] * 5 + ["text"] * 2),
                               [1.0, 2 / 3, 0.0, np.nan])
    np.testing.assert_allclose(modality_score(-np.asarray(Z), modality), [1.0, 2 / 3, 0.0, np.nan])
    assert np.isnan(modality_score(np.zeros((2, 3)), ["image", "text"])).all()


def test_modality_score_bad_input():
    Z = np.ones((3, 2))
    with pytest.raises(ValueError, match="exactly two distinct labels.*got 1"):
        modality_score(Z, ["image"] * 3)
    with pytest.raises(ValueError, match="exactly two distinct labels.*got 3"):
        modality_score(Z, ["image", "text", "audio"])
    with pytest.raises(ValueError, match=r"one label per sample \(3\)"):
        modality_score(Z, ["image", "text"])
    with pytest.raises(ValueError, match="pass image_label="):
        modality_score(Z, ["a", "b", "a"])
    with pytest.raises(ValueError, match="image_label='c' is not one of"):
        modality_score(Z, ["a", "b", "a"], image_label="c")


# ------------------------------------------------------------------- bridge
def test_bridge_score_hand_computed_and_loop():
    D = [[1.0, 0.0], [1.0, 1.0]]
    B = bridge_score([[2.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]], D)
    np.testing.assert_allclose(B, [[0.0, np.sqrt(0.5)], [0.0, 0.0]])
    rng = np.random.default_rng(0)
    Z_image, Z_text = rng.random((2, 30, 6)) * (rng.random((2, 30, 6)) < 0.4)
    D = rng.standard_normal((6, 4))
    cos = cosine_similarity(D)
    expected = np.array([[np.mean(Z_image[:, i] * Z_text[:, j]) * cos[i, j] for j in range(6)]
                         for i in range(6)])
    B = bridge_score(Z_image, Z_text, D)
    np.testing.assert_allclose(B, expected, rtol=1e-12, atol=1e-15)
    # Total bridge = mean inner product of the paired reconstructions (unit atoms).
    U = _unit(D)
    pairs = np.einsum("nf,nf->n", Z_image @ U, Z_text @ U).mean()
    assert B.sum() == pytest.approx(pairs, rel=1e-12)
    B32 = bridge_score(Z_image.astype(np.float32), Z_text.astype(np.float32),
                       D.astype(np.float32))
    assert B32.dtype == np.float32
    np.testing.assert_allclose(B32, expected, rtol=1e-4, atol=1e-6)


def test_bridge_score_bad_input():
    with pytest.raises(ValueError, match="Z_image and Z_text must have one row per pair"):
        bridge_score(np.ones((3, 2)), np.ones((4, 2)), np.eye(2))
    with pytest.raises(ValueError, match="Z_text has 3 columns but the dictionary has 2"):
        bridge_score(np.ones((3, 2)), np.ones((3, 3)), np.eye(2))


# ----------------------------------------------------------- effective rank
def _erank_by_definition(Z):
    A = (np.asarray(Z) != 0).astype(float)
    s = np.linalg.svd(A.T @ A / A.shape[0], compute_uv=False)
    return float(np.exp(entropy(s)))  # scipy normalises s to sum to one


def test_effective_rank_hand_computed():
    assert effective_rank(np.eye(4)) == pytest.approx(4.0)
    assert effective_rank([[1.0, 2.0], [3.0, 1.0]]) == pytest.approx(1.0)
    # Co-activation [[2, 1], [1, 1]] / 2: eigenvalues (3 +- sqrt 5) / 4.
    s = np.array([3 + np.sqrt(5), 3 - np.sqrt(5)]) / 6
    assert effective_rank([[1, 1], [1, 0]]) == pytest.approx(np.exp(-(s * np.log(s)).sum()))
    assert effective_rank(np.zeros((3, 4))) == 0.0  # documented: rank of a zero matrix


@pytest.mark.parametrize("shape", [(20, 50), (50, 20)])  # both Gram sides
def test_effective_rank_matches_definition(shape):
    rng = np.random.default_rng(0)
    Z = rng.random(shape) * (rng.random(shape) < 0.2)
    Z[:, 3] = 0  # a dead latent
    Z[5] = 0  # a sample without code
    assert effective_rank(Z) == pytest.approx(_erank_by_definition(Z), rel=1e-9)


def test_all_dead_codes():
    Z = np.zeros((5, 4), dtype=np.float32)
    assert l0(Z) == 0.0 and dead_fraction(Z) == 1.0 and effective_rank(Z) == 0.0
    assert np.isnan(babel_selected(np.eye(4), Z))
    assert np.isnan(modality_score(Z, ["image", "text"] * 2 + ["image"])).all()


def test_fvu_agrees_with_scikit_learn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    X_hat = X + rng.standard_normal(X.shape)
    assert fvu(X, X_hat) == pytest.approx(1 - sk_r2(X, X_hat, multioutput="variance_weighted"))
