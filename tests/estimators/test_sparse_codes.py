"""Sparse (CSR) codes and the streaming transform, checked against the dense path."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import skmpsae
from skmpsae import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatchingPursuitSAE,
    MatryoshkaSAE,
    ReLUSAE,
    TopKSAE,
    mp_encode,
    transform_to_npz,
)
from skmpsae._pursuit._core import densify
from skmpsae._sparse import CSRBuilder, csr_from_selections

ESTIMATORS = [MatchingPursuitSAE, TopKSAE, BatchTopKSAE, ReLUSAE, MatryoshkaSAE, JumpReLUSAE]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16


@pytest.fixture(scope="module")
def fitted(digits):
    return {cls: cls(n_components=64, k=4, max_iter=1, random_state=0).fit(digits)
            for cls in ESTIMATORS}



def _as_sparse(est):
    """A copy of fitted ``est`` with sparse_output=True (same fitted arrays)."""
    import copy

    other = copy.deepcopy(est)
    other.set_params(sparse_output=True)
    return other


def _same_codes(S, Z, dtype):
    assert sp.issparse(S) and S.format == "csr" and S.dtype == dtype
    assert S.has_sorted_indices
    dense = S.toarray()
    np.testing.assert_array_equal(dense != 0, Z != 0)
    np.testing.assert_allclose(dense, Z, **TOL[dtype])
    assert S.nnz == np.count_nonzero(Z)  # no explicit zeros stored


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_transform_sparse_matches_dense(fitted, digits, cls, dtype):
    X = digits.astype(dtype)
    dense = fitted[cls]
    est = _as_sparse(dense)
    Z = dense.transform(X)
    S = est.transform(X)
    _same_codes(S, Z, dtype)
    _same_codes(est.transform(X, n_steps=7), dense.transform(X, n_steps=7), dtype)
    np.testing.assert_allclose(est.inverse_transform(S), dense.inverse_transform(Z),
                               **TOL[dtype])
    assert est.inverse_transform(S).dtype == dtype
    assert est.score(X) == pytest.approx(dense.score(X), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_transform_and_mp_tol(digits, dtype):
    X = digits.astype(dtype)
    est = MatchingPursuitSAE(n_components=64, k=4, max_iter=1, random_state=0,
                             sparse_output=True)
    S = est.fit_transform(X)
    dense = _as_sparse(est).set_params(sparse_output=False)
    _same_codes(S, dense.transform(X), dtype)
    _same_codes(est.transform(X, n_steps=30, tol=0.2), dense.transform(X, n_steps=30, tol=0.2),
                dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
@pytest.mark.parametrize("positive", [True, False])
def test_mp_encode_sparse_output(backend, positive, dtype):
    rng = np.random.default_rng(0)
    D = rng.normal(size=(40, 12))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.normal(size=(70, 12)).astype(dtype)
    for tol in (None, 0.3):
        Z = mp_encode(X, D, n_steps=25, positive=positive, tol=tol, backend=backend)
        S = mp_encode(X, D, n_steps=25, positive=positive, tol=tol, backend=backend,
                      sparse_output=True)
        _same_codes(S, Z, dtype)


def _naive_dense(idx, coef, n_components):
    Z = np.zeros((idx.shape[0], n_components), dtype=coef.dtype)
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            Z[i, idx[i, j]] += coef[i, j]
    return Z


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 6), steps=st.integers(0, 6), n_components=st.integers(1, 5),
       seed=st.integers(0, 2**16), zeros=st.booleans())
def test_csr_from_selections_against_a_naive_loop(rows, steps, n_components, seed, zeros):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_components, size=(rows, steps))
    coef = rng.normal(size=(rows, steps))
    if zeros:  # stopped samples leave zero coefficients; repeated picks may cancel
        coef[rng.random(coef.shape) < 0.4] = 0
        if steps >= 2:
            idx[:, 1], coef[:, 1] = idx[:, 0], -coef[:, 0]
    builder = CSRBuilder(n_components, coef.dtype)
    half = rows // 2
    builder.add_selections(idx[:half], coef[:half])  # two chunks, appended in order
    builder.add_selections(idx[half:], coef[half:])
    S = builder.build()
    want = _naive_dense(idx, coef, n_components)
    assert S.shape == (rows, n_components) and S.nnz == np.count_nonzero(want)
    np.testing.assert_allclose(S.toarray(), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(densify(idx, coef, n_components), want, atol=1e-12)
    counts, cols, _ = csr_from_selections(idx, coef)
    assert counts.sum() == cols.size


def test_set_output_and_pipelines(fitted, digits):
    est = _as_sparse(fitted[TopKSAE])
    with pytest.raises(ValueError, match="sparse"):
        clone(est).set_output(transform="pandas").fit(digits[:300]).transform(digits[:10])
    y = load_digits().target
    pipe = make_pipeline(clone(est), LogisticRegression(max_iter=200)).fit(digits, y)
    assert pipe.score(digits, y) > 0.5  # sparse codes feed a downstream estimator
    assert clone(est).get_params()["sparse_output"] is True


def test_sparse_output_survives_save_and_load(fitted, digits, tmp_path):
    est = _as_sparse(fitted[MatchingPursuitSAE])
    est.save(tmp_path / "m")
    loaded = skmpsae.load(tmp_path / "m")
    assert loaded.sparse_output is True and sp.issparse(loaded.transform(digits[:5]))


def test_dask_transform_gives_sparse_blocks(fitted, digits):
    da = pytest.importorskip("dask.array")
    est = _as_sparse(fitted[MatchingPursuitSAE])
    lazy = est.transform(da.from_array(digits, chunks=(500, 64)))
    S = lazy.compute()
    assert sp.issparse(S)
    _same_codes(sp.csr_matrix(S), fitted[MatchingPursuitSAE].transform(digits), np.float64)
    X_hat = est.inverse_transform(lazy).compute()
    np.testing.assert_allclose(X_hat, est.inverse_transform(est.transform(digits)),
                               rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ streaming transform
@pytest.fixture()
def memmap(digits, tmp_path):
    np.save(tmp_path / "x.npy", digits.astype(np.float32))
    return np.load(tmp_path / "x.npy", mmap_mode="r")


@pytest.mark.parametrize("sparse", [False, True])
def test_transform_of_a_memmap_and_of_chunks(fitted, digits, memmap, sparse, monkeypatch):
    import skmpsae._transform as transform_module

    monkeypatch.setattr(transform_module, "_STREAM_BYTES", 64 * 4 * 100)  # 100-row chunks
    est = fitted[MatchingPursuitSAE]
    est = _as_sparse(est) if sparse else est
    want = fitted[MatchingPursuitSAE].transform(np.asarray(memmap))
    got = est.transform(memmap)
    chunks = [digits[i:i + 400].astype(np.float32) for i in range(0, len(digits), 400)]
    for codes in (got, est.transform(chunks), est.transform(c for c in chunks)):
        assert sp.issparse(codes) == sparse and codes.shape == want.shape
        dense = codes.toarray() if sparse else codes
        np.testing.assert_allclose(dense, want, **TOL[np.float32])


def test_streamed_chunks_are_validated_one_by_one(fitted, digits):
    est = fitted[TopKSAE]
    bad = [digits[:100], digits[100:200].copy()]
    bad[1][5, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.transform(iter(bad))
    with pytest.raises(ValueError, match="chunk 1 has 10 features.*expecting 64"):
        est.transform([digits[:10], digits[:10, :10]])


def test_verbose_transform_shows_progress(fitted, digits, capsys):
    est = _as_sparse(fitted[TopKSAE]).set_params(verbose=1)
    est.transform([digits[:900], digits[900:]])
    assert "1797/1797" in capsys.readouterr().err


@pytest.mark.parametrize("cls", [MatchingPursuitSAE, ReLUSAE], ids=lambda c: c.__name__)
def test_transform_to_npz(fitted, digits, memmap, tmp_path, cls):
    est = fitted[cls]
    assert transform_to_npz(est, memmap, tmp_path / "codes.npz", n_steps=6) == (1797, 64)
    S = sp.load_npz(tmp_path / "codes.npz")
    _same_codes(sp.csr_matrix(S), est.transform(np.asarray(memmap), n_steps=6), np.float32)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        transform_to_npz(est, digits, tmp_path / "codes.npz")
    transform_to_npz(est, digits, tmp_path / "codes.npz", overwrite=True)
    _same_codes(sp.csr_matrix(sp.load_npz(tmp_path / "codes.npz")), est.transform(digits),
                np.float64)
    with pytest.raises(ValueError, match=r"\.npz"):
        transform_to_npz(est, digits, tmp_path / "codes.bin")


# ------------------------------------------------------------------ metrics and tools
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_metric_accepts_sparse_codes(fitted, digits, dtype):
    from skmpsae import metrics

    est = fitted[MatchingPursuitSAE]
    X = digits.astype(dtype)
    Z = est.transform(X)
    S = _as_sparse(est).transform(X)
    with_zero = S.copy()
    with_zero.data[::7] = 0  # stored zeros are not activations
    Z_zero = with_zero.toarray()
    D = est.components_
    modality = np.where(np.arange(len(X)) % 3 == 0, "image", "text")
    for codes, dense in ((S, Z), (with_zero, Z_zero), (sp.csc_matrix(S), Z)):
        assert metrics.l0(codes) == pytest.approx(metrics.l0(dense))
        assert metrics.dead_fraction(codes) == pytest.approx(metrics.dead_fraction(dense))
        assert metrics.effective_rank(codes) == pytest.approx(metrics.effective_rank(dense),
                                                              rel=1e-9)
        np.testing.assert_allclose(metrics.modality_score(codes, modality),
                                   metrics.modality_score(dense, modality), rtol=1e-6)
        assert metrics.babel_selected(D, codes) == pytest.approx(
            metrics.babel_selected(D, dense), rel=1e-9)
        assert metrics.babel_selected(D, codes, p=2) == pytest.approx(
            metrics.babel_selected(D, dense, p=2), rel=1e-9)
        np.testing.assert_allclose(metrics.bridge_score(codes[:600], codes[600:1200], D),
                                   metrics.bridge_score(dense[:600], dense[600:1200], D),
                                   rtol=1e-5, atol=1e-9)
    assert metrics.effective_rank(sp.csr_matrix((3, 4))) == 0.0


def test_scorers_and_feature_report_with_sparse_output(fitted, digits):
    from skmpsae.inspection import feature_report
    from skmpsae.scorers import get_scorer_names, multimetric_scorer

    dense = fitted[TopKSAE]
    sparse = _as_sparse(dense)
    scorer = multimetric_scorer(get_scorer_names())
    want, got = scorer(dense, digits), scorer(sparse, digits)
    assert want.keys() == got.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name
    modality = np.where(np.arange(len(digits)) % 2 == 0, "image", "text")
    a = feature_report(dense, digits, modality, batch_size=500)
    b = feature_report(sparse, digits, modality, batch_size=500)
    assert a.drop(columns="top_samples").equals(b.drop(columns="top_samples"))
    assert all((x == y).all() for x, y in zip(a["top_samples"], b["top_samples"], strict=True))
