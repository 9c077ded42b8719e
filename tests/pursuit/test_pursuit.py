"""Tests of ``mp_encode`` and the pursuit core (SPEC section 2 and 3).

Engines: ``numpy`` (reference, vectorised), ``numba`` (fused kernel), ``torch``
(CPU here) and ``naive_pursuit`` (the specification's loop, literally).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from threadpoolctl import threadpool_limits

from skmpsae import mp_encode
from skmpsae._pursuit import _numba, _numpy, _plan
from skmpsae._pursuit._core import pursue
from skmpsae._pursuit._numpy import naive_pursuit
from skmpsae._pursuit._plan import DEFAULT_MEMORY_BUDGET, plan_pursuit

BACKENDS = ["numpy", "numba", "torch"]
N_SAMPLES = 150
N_FEATURES = 24
N_STEPS = 8


def make_problem(n_samples, n_features, n_components, dtype=np.float64, *, seed=0, bias=False):
    """Random unit-norm dictionary (normalised in float64, then cast) and offset data."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n_samples, n_features)) + 0.5
    b = 0.3 * rng.standard_normal(n_features) if bias else None
    return X.astype(dtype), D.astype(dtype), None if b is None else b.astype(dtype)


def support(Z):
    return Z != 0


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("n_components", [128, 131, 300])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("tol", [None, 0.2])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backend_parity(dtype, positive, tol, bias, n_components):
    X, D, b = make_problem(N_SAMPLES, N_FEATURES, n_components, dtype,
                           seed=n_components, bias=bias)
    # The problem is big enough that the cost model picks Gram updates, so the
    # numba kernel and NumPy's gram_pursuit (not the product fallback) run.
    plan = plan_pursuit(N_SAMPLES, n_components, N_FEATURES, N_STEPS, X.itemsize,
                        gram_given=False, backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET)
    assert plan.use_gram
    kw = dict(n_steps=N_STEPS, bias=b, positive=positive, tol=tol)
    codes = {be: mp_encode(X, D, backend=be, **kw) for be in BACKENDS}
    naive = naive_pursuit(X, D, N_STEPS, bias=b, positive=positive, tol=tol)

    for be, Z in codes.items():
        assert Z.dtype == dtype, be
        assert Z.shape == (N_SAMPLES, n_components)
        assert (support(Z).sum(axis=1) <= N_STEPS).all()
        if positive:
            assert (Z >= 0).all()
    if tol is not None:
        # tol must actually matter on this problem: some samples stop early.
        _, coef = pursue(X, D, backend="numpy", **kw)
        assert (coef == 0).any(axis=1).any()

    # numpy and numba share their arithmetic (no FMA contraction in the
    # kernel), so the codes agree bit for bit in both precisions.
    assert_array_equal(codes["numpy"], codes["numba"])

    ref = codes["numpy"]
    scale = float(np.abs(X if b is None else X - b).max())
    if dtype == np.float64:
        # torch's GEMM sums in another order than OpenBLAS: differences of a
        # few ulps of |x| (observed <= 2e-15), hence atol 1e-12 * scale.
        rtol, atol = 1e-12, 1e-12 * scale
    else:
        # float32: the GEMM differs by ~n_features * eps32 * |x| ~ 1e-6 * scale
        # and each of the <= 8 Gram updates (|G| <= 1) can add as much again;
        # naive_pursuit recomputes D @ r per step, another rounding path.
        # rtol 1e-4 / atol 1e-5 * scale leave a margin of ~10x over that.
        rtol, atol = 1e-4, 1e-5 * scale
    for name, Z in [("torch", codes["torch"]), ("naive", naive)]:
        assert_array_equal(support(Z), support(ref), err_msg=name)
        assert_allclose(Z, ref, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("tol", [None, 0.1])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_parity_exact_arithmetic_with_ties(positive, tol, dyadic_problem):
    # On exactly representable data every engine must give the same bits,
    # including through the many exact ties this data has.
    X, D, b = dyadic_problem(60, 8, 131, seed=1)
    ref = naive_pursuit(X, D, 6, bias=b, positive=positive, tol=tol)
    assert np.abs(ref).sum() > 0
    for be in BACKENDS:
        for gram in (None, D @ D.T):
            Z = mp_encode(X, D, n_steps=6, bias=b, positive=positive, tol=tol, gram=gram,
                          backend=be)
            assert_array_equal(Z, ref, err_msg=f"{be}, gram given: {gram is not None}")


# --------------------------------------------------------------------------- ties


def _tie_dictionary(n_features, n_components, positions, atom, neg_position=None):
    """One-hot filler atoms with ``atom`` copied at ``positions`` (and -atom)."""
    D = np.zeros((n_components, n_features))
    for i in range(n_components):
        D[i, i % n_features] = 1.0 if (i // n_features) % 2 == 0 else -1.0
    for p in positions:
        D[p] = atom
    if neg_position is not None:
        D[neg_position] = -atom
    return D


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gram_given", [False, True], ids=["auto", "gram"])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize(
    "positions",
    # the same block of 64, different blocks, and the tail past the last block
    [(3, 40), (10, 70, 150), (130, 135), (64, 128)],
)
def test_duplicated_atoms_pick_lowest_index(backend, gram_given, positive, positions):
    n_features, n_components = 8, 200 if max(positions) < 192 else 300
    atom = np.array([0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0])
    D = _tie_dictionary(n_features, n_components, positions, atom)
    X = np.vstack([3 * atom, 3 * atom + 0.25 * np.eye(n_features)[5]])
    Z = mp_encode(X, D, n_steps=3, positive=positive, backend=backend,
                  gram=D @ D.T if gram_given else None)
    expected = np.zeros_like(Z)
    expected[:, positions[0]] = 3.0
    expected[1, 5] = 0.25  # the second sample also needs the one-hot atom e_5 (index 5)
    assert_array_equal(Z, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gram_given", [False, True], ids=["auto", "gram"])
def test_signed_tie_between_atom_and_its_negation(backend, gram_given):
    # |<x, -d>| == |<x, d>|: the lower index wins, with its own sign.
    atom = np.array([0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0])
    for neg_at, pos_at in [(20, 100), (100, 20), (63, 64), (130, 3)]:
        D = _tie_dictionary(8, 131, [pos_at], atom, neg_position=neg_at)
        gram = D @ D.T if gram_given else None
        Z = mp_encode([3 * atom], D, n_steps=2, positive=False, backend=backend, gram=gram)
        expected = np.zeros((1, 131))
        expected[0, min(neg_at, pos_at)] = -3.0 if neg_at < pos_at else 3.0
        assert_array_equal(Z, expected)
        # in positive mode only +d correlates positively
        Z = mp_encode([3 * atom], D, n_steps=2, positive=True, backend=backend, gram=gram)
        expected = np.zeros((1, 131))
        expected[0, pos_at] = 3.0
        assert_array_equal(Z, expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_equal_correlations_select_in_index_order(backend, positive):
    X = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 2.0]])
    idx, coef = pursue(X, np.eye(4), n_steps=2, positive=positive, gram=np.eye(4),
                       backend=backend)
    assert_array_equal(idx, [[0, 1], [1, 3]])
    assert_array_equal(coef, [[1.0, 1.0], [2.0, 2.0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicated_random_atoms(backend):
    # Random atoms, each present twice. Whether the two copies tie *exactly*
    # depends on the BLAS rounding duplicated columns of X @ D.T identically
    # (OpenBLAS does here; MKL, used by torch on CPU, does not: ~1 ulp), so only
    # the copy-agnostic result is checked: folding the copies together gives the
    # codes over the dictionary without duplicates.
    X, B, b = make_problem(80, 16, 70, seed=3, bias=True)
    D = np.vstack([B, B])
    # The Gram matrix is built with its exact ties (D @ D.T need not give the
    # copies bit-equal columns: the AVX-512 OpenBLAS kernel does not).
    G = B @ B.T
    for positive in (True, False):
        Z = mp_encode(X, D, n_steps=6, bias=b, positive=positive, backend=backend,
                      gram=np.block([[G, G], [G, G]]))
        ref = mp_encode(X, B, n_steps=6, bias=b, positive=positive, backend=backend,
                        gram=G)
        assert_allclose(Z[:, :70] + Z[:, 70:], ref, rtol=1e-12, atol=1e-12)
        assert_array_equal(support(Z[:, :70]) | support(Z[:, 70:]), support(ref))


def test_signed_zero_tie_in_positive_mode():
    # The kernel's integer keys must treat -0.0 and +0.0 as equal, like numpy.argmax.
    idx = {}
    for engine in (_numpy, _numba):
        C = np.array([[-0.0, 0.0, -1.0]])
        i = np.zeros((1, 2), dtype=np.int64)
        coef = np.zeros((1, 2))
        engine.gram_pursuit(C, np.eye(3), 2, True, np.empty(0), np.empty(0), i, coef)
        assert_array_equal(coef, 0)
        idx[engine.__name__] = i
    assert_array_equal(idx["skmpsae._pursuit._numba"], idx["skmpsae._pursuit._numpy"])


# --------------------------------------------------------------------------- product fallback


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tol", [None, 0.2])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_fallback_matches_gram(backend, dtype, positive, tol):
    n_components = 131
    X, D, b = make_problem(N_SAMPLES, N_FEATURES, n_components, dtype, seed=5, bias=True)
    gram_bytes = n_components**2 * X.itemsize
    budget = gram_bytes // 2  # the Gram matrix "does not fit"
    plan = plan_pursuit(N_SAMPLES, n_components, N_FEATURES, N_STEPS, X.itemsize,
                        gram_given=False, backend=backend, memory_budget=budget)
    assert not plan.use_gram
    assert plan.chunk_rows < N_SAMPLES  # the small budget also forces several chunks
    plan = plan_pursuit(N_SAMPLES, n_components, N_FEATURES, N_STEPS, X.itemsize,
                        gram_given=True, backend=backend, memory_budget=budget)
    assert plan.use_gram

    kw = dict(n_steps=N_STEPS, bias=b, positive=positive, tol=tol, backend=backend)
    Z_prod = mp_encode(X, D, memory_budget=budget, **kw)
    Z_gram = mp_encode(X, D, gram=D @ D.T, **kw)
    assert Z_prod.dtype == dtype
    assert_array_equal(support(Z_prod), support(Z_gram))
    # Product and Gram updates round differently (per-step GEMM vs c -= a * G[j]);
    # see test_backend_parity for the tolerances.
    scale = float(np.abs(X - b).max())
    rtol, atol = (1e-12, 1e-12 * scale) if dtype == np.float64 else (1e-4, 1e-5 * scale)
    assert_allclose(Z_prod, Z_gram, rtol=rtol, atol=atol)


def test_plan_pursuit_cost_model():
    kw = dict(itemsize=8, backend="numba", memory_budget=DEFAULT_MEMORY_BUDGET)
    # one sample, few steps: building G (n_components^2 n_features) costs more
    assert not plan_pursuit(1, 131, 24, 8, gram_given=False, **kw).use_gram
    assert plan_pursuit(1, 131, 24, 8, gram_given=True, **kw).use_gram
    assert plan_pursuit(1000, 131, 24, 8, gram_given=False, **kw).use_gram
    # a Gram matrix beyond the budget is never built
    big = plan_pursuit(10**6, 20000, 24, 8, gram_given=False, itemsize=8, backend="numba",
                       memory_budget=20000**2 * 8 - 1)
    assert not big.use_gram
    for n in (1, 7, 1000):
        plan = plan_pursuit(n, 131, 24, 8, gram_given=False, **kw)
        assert 1 <= plan.chunk_rows <= n


# --------------------------------------------------------------------------- chunking


def _set_chunk_bytes(monkeypatch, nbytes):
    monkeypatch.setattr(_plan, "_CHUNK_BYTES", {k: nbytes for k in _plan._CHUNK_BYTES})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tol", [None, 0.1])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_chunking_bit_identical_on_exact_data(monkeypatch, backend, positive, tol,
                                              dyadic_problem):
    X, D, b = dyadic_problem(37, 8, 131, seed=2)
    per_row = (131 + 8) * X.itemsize
    kw = dict(n_steps=6, bias=b, positive=positive, tol=tol, backend=backend)
    grams = (None, D @ D.T)
    ref = [mp_encode(X, D, gram=g, **kw) for g in grams]
    for rows in (1, 5, 16):
        _set_chunk_bytes(monkeypatch, rows * per_row)
        plan = plan_pursuit(37, 131, 8, 6, X.itemsize, gram_given=False, backend=backend,
                            memory_budget=DEFAULT_MEMORY_BUDGET)
        assert plan.use_gram
        assert plan.chunk_rows == rows
        for g, Z in zip(grams, ref, strict=True):
            assert_array_equal(mp_encode(X, D, gram=g, **kw), Z)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tol", [None, 0.2])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunking_random_data(monkeypatch, backend, dtype, positive, tol):
    # On general data the codes are *not* bit-identical across chunk sizes:
    # OpenBLAS (and torch's BLAS) round a row of X @ D.T differently depending
    # on how many rows the product has (gemv for one row, other kernels for
    # edge blocks), ~1 ulp. Supports must agree, values to rounding.
    X, D, b = make_problem(40, N_FEATURES, 131, dtype, seed=7, bias=True)
    kw = dict(n_steps=N_STEPS, bias=b, positive=positive, tol=tol, backend=backend)
    ref = mp_encode(X, D, **kw)
    scale = float(np.abs(X - b).max())
    rtol, atol = (1e-12, 1e-12 * scale) if dtype == np.float64 else (1e-4, 1e-5 * scale)
    for nbytes in (1, 7 * (131 + N_FEATURES) * X.itemsize):
        _set_chunk_bytes(monkeypatch, nbytes)
        Z = mp_encode(X, D, **kw)
        assert Z.dtype == dtype
        assert_array_equal(support(Z), support(ref))
        assert_allclose(Z, ref, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "x_dtype, d_dtype, expected",
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float32, np.float64, np.float32),
        (np.float64, np.float32, np.float64),
        (np.int64, np.float64, np.float64),
        (np.int32, np.float32, np.float64),
        (np.float16, np.float32, np.float64),
    ],
)
def test_dtype_preservation(backend, x_dtype, d_dtype, expected):
    rng = np.random.default_rng(0)
    X = rng.integers(-5, 6, size=(20, 6)).astype(x_dtype)
    _, D, b = make_problem(1, 6, 70, d_dtype, seed=1, bias=True)
    for gram in (None, (D @ D.T).astype(d_dtype)):
        Z = mp_encode(X, D, n_steps=4, bias=b, gram=gram, backend=backend)
        assert Z.dtype == expected
        assert Z.shape == (20, 70)
        assert np.isfinite(Z).all()


def test_list_input():
    Z = mp_encode([[3.0, -1.0, 2.0]], np.eye(3).tolist(), n_steps=2, bias=[0, 0, 0])
    assert_array_equal(Z, [[3.0, 0.0, 2.0]])
    assert Z.dtype == np.float64


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_input(backend):
    X, D, b = make_problem(40, 20, 70, seed=4, bias=True)
    Xf, Df = np.asfortranarray(X), np.asfortranarray(D)
    ref = mp_encode(X, D, n_steps=5, bias=b, backend=backend)
    assert_array_equal(mp_encode(Xf, Df, n_steps=5, bias=b, backend=backend), ref)
    wide = np.zeros((40, 40))
    wide[:, ::2] = X
    assert_array_equal(mp_encode(wide[:, ::2], D, n_steps=5, bias=b, backend=backend), ref)


# --------------------------------------------------------------------------- special cases


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_steps_and_large_tol_give_zeros(backend, positive, dtype):
    X, D, b = make_problem(30, 10, 70, dtype, seed=8, bias=True)
    for kw in (dict(n_steps=0), dict(n_steps=5, tol=1.0), dict(n_steps=5, tol=2.5)):
        Z = mp_encode(X, D, bias=b, positive=positive, backend=backend, **kw)
        assert Z.dtype == dtype
        assert Z.shape == (30, 70)
        assert not Z.any(), kw


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_input_equal_to_bias_gives_zeros(backend, positive):
    X, D, b = make_problem(5, 10, 70, seed=9, bias=True)
    X[2] = b
    Z = mp_encode(X, D, n_steps=4, bias=b, positive=positive, backend=backend, gram=D @ D.T)
    assert not Z[2].any()
    assert Z[[0, 1, 3, 4]].any(axis=1).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gram_given", [False, True], ids=["auto", "gram"])
def test_orthonormal_dictionary_reconstructs_exactly(backend, gram_given):
    rng = np.random.default_rng(10)
    n_features = 12
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    D = Q[rng.permutation(n_features)]  # rows orthonormal
    X = rng.standard_normal((25, n_features))
    b = rng.standard_normal(n_features)
    Z = mp_encode(X, D, n_steps=n_features, bias=b, positive=False, backend=backend,
                  gram=D @ D.T if gram_given else None)
    assert_allclose(Z, (X - b) @ D.T, rtol=1e-12, atol=1e-13)
    assert_allclose(Z @ D + b, X, rtol=1e-12, atol=1e-13)
    assert (support(Z).sum(axis=1) == n_features).all()

    # positive codes over [Q; -Q] also reconstruct x after n_features steps
    D2 = np.vstack([D, -D])
    Z2 = mp_encode(X, D2, n_steps=n_features, bias=b, positive=True, backend=backend,
                   gram=D2 @ D2.T if gram_given else None)
    assert (Z2 >= 0).all()
    assert_allclose(Z2 @ D2 + b, X, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gram_given", [False, True], ids=["auto", "gram"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identity_and_negated_identity_positive_exact(backend, gram_given, dtype):
    # D = [I; -I]: every operation is exact, so x is reproduced bit for bit.
    rng = np.random.default_rng(11)
    n_features = 9
    D = np.vstack([np.eye(n_features), -np.eye(n_features)]).astype(dtype)
    X = rng.standard_normal((30, n_features)).astype(dtype)
    X[0, 3] = 0.0
    Z = mp_encode(X, D, n_steps=n_features, positive=True, backend=backend,
                  gram=D @ D.T if gram_given else None)
    assert_array_equal(Z, np.hstack([np.maximum(X, 0), np.maximum(-X, 0)]))
    assert_array_equal(Z @ D, X)
    # signed mode on the identity alone
    Z = mp_encode(X, D[:n_features], n_steps=n_features, positive=False, backend=backend)
    assert_array_equal(Z, X)


# --------------------------------------------------------------------------- validation


def _good_args(n_features=5, n_components=7):
    rng = np.random.default_rng(12)
    X = rng.standard_normal((4, n_features))
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return X, D


def _with_value(A, value):
    A = A.copy()
    A.flat[3] = value
    return A


X_OK, D_OK = _good_args()

BAD_INPUTS = [
    # (id, X, dictionary, extra kwargs, exception, match)
    ("X-nan", _with_value(X_OK, np.nan), D_OK, {}, ValueError, r"X contains NaN"),
    ("X-inf", _with_value(X_OK, np.inf), D_OK, {}, ValueError, r"X contains infinity"),
    ("X-neginf", _with_value(X_OK, -np.inf), D_OK, {}, ValueError, r"X contains infinity"),
    ("D-nan", X_OK, _with_value(D_OK, np.nan), {}, ValueError, r"dictionary contains NaN"),
    ("D-inf", X_OK, _with_value(D_OK, np.inf), {}, ValueError,
     r"dictionary contains infinity"),
    ("D-n_features", X_OK, _good_args(n_features=6)[1], {}, ValueError,
     r"dictionary has 6 features but X has 5"),
    ("D-not-unit", X_OK, 2 * D_OK, {}, ValueError,
     r"(?s)dictionary rows must have unit L2 norm.*np\.linalg\.norm\(D, axis=1"),
    ("D-one-row-off", X_OK, np.vstack([D_OK, 1.01 * D_OK[:1]]), {}, ValueError,
     r"unit L2 norm; 1 rows do not"),
    ("D-zero-row", X_OK, np.vstack([D_OK, np.zeros((1, 5))]), {}, ValueError,
     r"unit L2 norm"),
    ("bias-length", X_OK, D_OK, dict(bias=np.zeros(4)), ValueError,
     r"bias must have shape \(5,\), got \(4,\)"),
    ("bias-2d", X_OK, D_OK, dict(bias=np.zeros((1, 5))), ValueError,
     r"bias must have shape \(5,\), got \(1, 5\)"),
    ("bias-nan", X_OK, D_OK, dict(bias=_with_value(np.zeros(5), np.nan)), ValueError,
     r"bias contains NaN"),
    ("gram-shape", X_OK, D_OK, dict(gram=np.eye(6)), ValueError,
     r"gram must be dictionary @ dictionary.T of shape \(7, 7\), got \(6, 6\)"),
    ("gram-nan", X_OK, D_OK, dict(gram=np.full((7, 7), np.nan)), ValueError,
     r"gram contains NaN"),
    ("n_steps-negative", X_OK, D_OK, dict(n_steps=-1), ValueError,
     r"'n_steps' parameter of mp_encode.*Got -1"),
    ("n_steps-float", X_OK, D_OK, dict(n_steps=2.5), ValueError,
     r"'n_steps' parameter of mp_encode.*Got 2.5"),
    ("tol-negative", X_OK, D_OK, dict(tol=-0.1), ValueError,
     r"'tol' parameter of mp_encode.*Got -0.1"),
    ("backend-unknown", X_OK, D_OK, dict(backend="cuda"), ValueError,
     r"'backend' parameter of mp_encode.*Got 'cuda'"),
    ("positive-str", X_OK, D_OK, dict(positive="yes"), ValueError,
     r"'positive' parameter of mp_encode"),
    ("memory_budget-zero", X_OK, D_OK, dict(memory_budget=0), ValueError,
     r"'memory_budget' parameter of mp_encode"),
    ("X-empty", np.zeros((0, 5)), D_OK, {}, ValueError, r"0 sample\(s\)"),
    ("X-no-features", np.zeros((3, 0)), D_OK, {}, ValueError, r"0 feature\(s\)"),
    ("X-1d", X_OK[0], D_OK, {}, ValueError, r"Expected 2D array, got 1D array"),
    ("X-3d", X_OK[None], D_OK, {}, ValueError, r"3"),
    ("X-complex", X_OK.astype(complex), D_OK, {}, ValueError, r"[Cc]omplex"),
    ("X-str", np.array([["a"] * 5]), D_OK, {}, ValueError, r"could not convert string"),
    ("D-empty", X_OK, np.zeros((0, 5)), {}, ValueError, r"0 sample\(s\)"),
    ("D-complex", X_OK, D_OK.astype(complex), {}, ValueError, r"[Cc]omplex"),
]


@pytest.mark.parametrize(
    "X, D, kwargs, exc, match", [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_rejected(X, D, kwargs, exc, match):
    kw = dict(n_steps=3)
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        mp_encode(X, D, **kw)


# scikit-learn's check_array does not put the input's name in these messages
# ("Found array with 0 sample(s) ...", "Expected 2D array ...", "Complex data
# not supported", "could not convert string to float"); mp_encode prefixes it.
NAMELESS = {"X-empty": "X", "X-1d": "X", "X-complex": "X", "X-str": "X",
            "D-empty": "dictionary", "D-complex": "dictionary"}


@pytest.mark.parametrize("case", sorted(NAMELESS))
def test_bad_input_message_names_parameter(case):
    _, X, D, kwargs, exc, _ = next(c for c in BAD_INPUTS if c[0] == case)
    with pytest.raises(exc) as info:
        mp_encode(X, D, n_steps=3, **kwargs)
    assert NAMELESS[case] in str(info.value)


def test_nearly_unit_norm_accepted():
    X, D = _good_args()
    D = D * (1 + 5e-4)  # within the documented 1e-3
    assert mp_encode(X, D, n_steps=2).shape == (4, 7)


def test_missing_n_steps_is_an_error():
    X, D = _good_args()
    with pytest.raises(TypeError, match="n_steps"):
        mp_encode(X, D)


# --------------------------------------------------------------------------- no mutation


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["gram", "auto", "product"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_not_mutated_and_read_only_accepted(backend, path, dtype):
    X, D, b = make_problem(40, 12, 70, dtype, seed=13, bias=True)
    G = D @ D.T
    kw = dict(n_steps=5, tol=0.05, backend=backend)
    if path == "gram":
        kw["gram"] = G
    elif path == "product":
        kw["memory_budget"] = 1024
    originals = [A.copy() for A in (X, D, b, G)]
    ref = mp_encode(X, D, bias=b, **kw)
    for A, A0 in zip((X, D, b, G), originals, strict=True):
        assert_array_equal(A, A0)
    for A in (X, D, b, G):
        A.flags.writeable = False
    Z = mp_encode(X, D, bias=b, **kw)
    assert_array_equal(Z, ref)
    for A, A0 in zip((X, D, b, G), originals, strict=True):
        assert_array_equal(A, A0)
        assert not A.flags.writeable


def test_float32_input_with_float64_dictionary_not_mutated():
    X, D, b = make_problem(20, 12, 70, np.float32, seed=14, bias=True)
    D64, b64 = D.astype(np.float64), b.astype(np.float64)
    D0, b0 = D64.copy(), b64.copy()
    Z = mp_encode(X, D64, n_steps=4, bias=b64)
    assert Z.dtype == np.float32
    assert D64.dtype == np.float64
    assert_array_equal(D64, D0)
    assert_array_equal(b64, b0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parallel_kernel_matches_reference(monkeypatch, dtype):
    # Small problems run the kernel on one thread; force the parallel path.
    import numba

    monkeypatch.setattr("skmpsae._threads._SERIAL_KERNEL_BELOW", 0)
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    numba.set_num_threads(2)
    rng = np.random.default_rng(3)
    D = rng.standard_normal((131, 20)).astype(dtype)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((97, 20)).astype(dtype)
    for tol in (None, 0.3):
        ref = mp_encode(X, D, n_steps=9, tol=tol, gram=D @ D.T, backend="numpy")
        got = mp_encode(X, D, n_steps=9, tol=tol, gram=D @ D.T, backend="numba")
        assert_array_equal(got, ref)


# --------------------------------------------------------------------------- planner


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gram", [False, True])
def test_mp_encode_plans_once(monkeypatch, backend, gram):
    from skmpsae._pursuit import _core

    calls = []
    plan = _core.plan_pursuit

    def counted(*args, **kwargs):
        calls.append(kwargs["backend"])
        return plan(*args, **kwargs)

    monkeypatch.setattr(_core, "plan_pursuit", counted)
    X, D, b = make_problem(20, N_FEATURES, 40, np.float64, seed=1, bias=True)
    mp_encode(X, D, n_steps=4, bias=b, gram=D @ D.T if gram else None, backend=backend)
    mp_encode(X, D, n_steps=4, backend=backend, memory_budget=40 * 40 * 8 - 1)
    assert calls == [backend, backend]


def test_one_engine_choice_rule():
    import torch

    from skmpsae._pursuit._plan import choose_backend

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for name in ("numpy", "numba", "torch", "cupy"):
        assert choose_backend(name, device=cuda) == name  # a concrete engine is kept
    assert choose_backend("auto", device=cpu) == "numba"
    assert choose_backend("auto", device=cpu, tensors=True) == "numba"
    assert choose_backend("auto", device=cuda, tensors=True) == "torch"  # training on a GPU
    expected = "cupy" if _cupy_available() else "torch"
    assert choose_backend("auto", device=cuda) == expected


def _cupy_available():
    from skmpsae._pursuit import _cupy

    return _cupy.is_available()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [dict(positive=True), dict(positive=False, tol=0.3),
                                dict(positive=False, residual_threshold=2.0),
                                dict(positive=True, coef_threshold=0.2)])
def test_pipelined_codes_match_numpy(dtype, kw, monkeypatch, dyadic_problem):
    # Pieces of rows on two Python threads (one-thread products, serial kernel)
    # give the NumPy reference's codes bit for bit, a shorter last piece included.
    # On exact (dyadic) data: a GEMM of a piece may round its edge rows
    # otherwise than the whole product does (OpenBLAS's Haswell kernel does).
    from skmpsae._pursuit import _core

    X, D, b = (a.astype(dtype) for a in dyadic_problem(300, N_FEATURES, 64, seed=3))
    monkeypatch.setattr(_core, "_PIECE_ROWS", (128, 128))
    G = D @ D.T
    Z = np.empty((300, 64), dtype=dtype)
    _core._pipelined_codes(X, D, Z, 2, n_steps=6, bias=b, gram=G, tol=kw.get("tol"),
                           positive=kw["positive"],
                           residual_threshold=kw.get("residual_threshold"),
                           coef_threshold=kw.get("coef_threshold"))
    ref = mp_encode(X, D, n_steps=6, bias=b, gram=G, backend="numpy", **kw)
    assert_array_equal(Z, ref)


@pytest.mark.parametrize("n_samples", [4, 7, 9, 42])
@pytest.mark.parametrize("stop", [None, "tol", "residual_threshold", "coef_threshold"])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_sample_groups_stop_on_their_own(dtype, positive, stop, n_samples):
    # The numba kernel steps four samples at a time until one of them stops
    # (or the last step); each then finishes alone. Rows of very different
    # norms and the stops below make the four stop at different steps.
    X, D, b = make_problem(n_samples, 24, 200, dtype, seed=n_samples, bias=True)
    X = X * np.geomspace(0.05, 3.0, n_samples, dtype=dtype)[:, None]
    kw = {"tol": {"tol": 0.3}, "residual_threshold": {"residual_threshold": 1.5},
          "coef_threshold": {"coef_threshold": 0.4}, None: {}}[stop]
    kw.update(n_steps=11, bias=b, positive=positive, gram=D @ D.T)  # the Gram kernel runs
    ref = mp_encode(X, D, backend="numpy", **kw)
    got = mp_encode(X, D, backend="numba", **kw)
    assert_array_equal(got, ref)
    if stop is not None:
        counts = (ref != 0).sum(axis=1)
        assert counts.min() < counts.max()  # the samples did stop at different steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_pieces_give_the_same_bits_on_any_number_of_threads(dtype):
    # The pieces (and the correlations' pieces among them) do not depend on the
    # threads that run them: a fit taking the idle core keeps its one-thread bits.
    from skmpsae._pursuit import _gram

    rng = np.random.default_rng(7)
    D = rng.standard_normal((700, 19)).astype(dtype)
    R = rng.standard_normal((301, 19)).astype(dtype)
    results = []
    for workers in (1, 2, 3):
        G = np.full((700, 700), np.nan, dtype=dtype)
        C = np.full((301, 700), np.nan, dtype=dtype)
        _gram._gram_in_pieces(D, G, workers, (R, C))
        results.append((G, C))
    for G, C in results[1:]:
        assert_array_equal(G, results[0][0])
        assert_array_equal(C, results[0][1])
    G, C = results[0]
    assert_array_equal(G, G.T)
    eps = np.finfo(dtype).eps
    assert_allclose(G, D.astype(np.float64) @ D.astype(np.float64).T, rtol=0, atol=50 * eps)
    assert_allclose(C, R.astype(np.float64) @ D.astype(np.float64).T, rtol=0, atol=50 * eps)
    assert len(_gram._product_pieces(R, D, C)) == 3  # 128-row pieces, a shorter last one


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_on_python_threads_matches_syrk(monkeypatch, dtype):
    # Large Gram matrices run as row pieces on Python threads (one-thread
    # GEMMs and their mirrors); force that path on a small one.
    from skmpsae import _threads
    from skmpsae._pursuit import _gram

    rng = np.random.default_rng(5)
    D = rng.standard_normal((301, 17)).astype(dtype)
    monkeypatch.setattr(_threads, "_PARALLEL_PRODUCT_FROM", 1)
    with threadpool_limits(2, user_api="blas"):
        assert _threads.gram_threads(10) == 2
        G = _gram.gram_matrix(D)
        out = np.full((301, 301), np.nan, dtype=dtype)
        assert _gram.gram_matrix(D, out=out) is out
    assert_array_equal(G, G.T)  # exactly symmetric, as the syrk path's mirror makes it
    assert_array_equal(out, G)
    eps = np.finfo(dtype).eps
    assert_allclose(G, D.astype(np.float64) @ D.astype(np.float64).T, rtol=0, atol=50 * eps)
    bounds = _gram._piece_bounds(301, _gram._GRAM_PIECES)
    assert bounds[0][0] == 0 and bounds[-1][1] == 301
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
