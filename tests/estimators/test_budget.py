"""Budget modes of matching pursuit: the absolute residual stop and the coefficient stop.

Every engine against the NumPy reference (bit for bit where the engines are
bit-identical: NumPy and numba always, all of them on exact dyadic data) and
against ``naive_pursuit``, the specification's loop; hypothesis properties of
the stops. The CUDA kernel's cases are in ``test_cuda_kernel.py``.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from skmpsae import mp_encode
from skmpsae._pursuit._core import pursue
from skmpsae._pursuit._numpy import naive_pursuit

BACKENDS = ["numpy", "numba", "torch"]
N_STEPS = 8


def make_problem(n_samples, n_features, n_components, dtype, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.2, 2.0, (n_samples, 1))
    b = 0.3 * rng.standard_normal(n_features)
    return X.astype(dtype), D.astype(dtype), b.astype(dtype)


def in_a_gap(values, quantile):
    """A value near ``quantile`` of ``values`` and far (relative 1e-3) from all of them.

    Thresholds set there give the same stops in every engine although their
    float32 roundings differ by ~1e-6 relative.
    """
    v = np.unique(np.asarray(values, dtype=np.float64))
    mid = (v[:-1] + v[1:]) / 2
    ok = (v[1:] - v[:-1]) > 2e-3 * np.abs(mid)
    target = np.quantile(v, quantile)
    return float(mid[ok][np.argmin(np.abs(mid[ok] - target))])


def full_pursuit_levels(X, D, b, positive):
    """|coefficients| and squared residual norms of every step of an unstopped pursuit."""
    idx, coef = pursue(X.astype(np.float64), D.astype(np.float64), n_steps=N_STEPS,
                       bias=b.astype(np.float64), positive=positive, backend="numpy")
    R = X.astype(np.float64) - b
    rsq = []
    for t in range(N_STEPS):
        R = R - coef[:, t, None] * D.astype(np.float64)[idx[:, t]]
        rsq.append(np.einsum("ij,ij->i", R, R))
    return np.abs(coef), np.array(rsq)


@pytest.mark.parametrize("mode", ["residual", "coef", "both"])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_budget_backend_parity(dtype, positive, mode):
    X, D, b = make_problem(150, 24, 131, dtype, seed=7)
    coefs, rsq = full_pursuit_levels(X, D, b, positive)
    kw = dict(n_steps=N_STEPS, bias=b, positive=positive)
    if mode in ("residual", "both"):
        kw["residual_threshold"] = in_a_gap(rsq, 0.4)
    if mode in ("coef", "both"):
        kw["coef_threshold"] = in_a_gap(coefs, 0.3)
    codes = {be: mp_encode(X, D, backend=be, **kw) for be in BACKENDS}
    naive = naive_pursuit(X, D, **kw)
    steps = (codes["numpy"] != 0).sum(axis=1)
    # The stop moves budget between samples: some stop early, some run to the cap.
    assert steps.min() < N_STEPS and steps.max() == N_STEPS
    for be in BACKENDS:
        assert codes[be].dtype == dtype
    assert_array_equal(codes["numpy"], codes["numba"])  # same arithmetic, same bits
    # Selections (not only dense codes) agree too, on both numba paths.
    ref_sel = pursue(X, D, backend="numpy", **kw)
    for got, want in zip(pursue(X, D, backend="numba", **kw), ref_sel, strict=True):
        assert_array_equal(got, want)
    # Tolerances as in test_pursuit.test_backend_parity (BLAS summation order).
    scale = float(np.abs(X - b).max())
    rtol, atol = (1e-12, 1e-12 * scale) if dtype == np.float64 else (1e-4, 1e-5 * scale)
    for name, Z in [("torch", codes["torch"]), ("naive", naive)]:
        assert_array_equal(Z != 0, codes["numpy"] != 0, err_msg=name)
        assert_allclose(Z, codes["numpy"], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_budget_exact_arithmetic(positive, dyadic_problem):
    # Exact data: every engine, Gram or per-step products, gives naive's bits,
    # with the thresholds on values the pursuit reaches exactly (<= and < bite).
    X, D, b = dyadic_problem(60, 8, 131, seed=2)
    for kw in (dict(residual_threshold=2.0), dict(coef_threshold=0.75),
               dict(residual_threshold=1.0, coef_threshold=0.5, tol=0.2)):
        ref = naive_pursuit(X, D, 6, bias=b, positive=positive, **kw)
        full = naive_pursuit(X, D, 6, bias=b, positive=positive)
        assert (ref != 0).sum() < (full != 0).sum()  # the stop matters here
        for be in BACKENDS:
            for memory_budget in (1 << 30, 100):  # Gram updates, per-step products
                Z = mp_encode(X, D, n_steps=6, bias=b, positive=positive, backend=be,
                              memory_budget=memory_budget, **kw)
                assert_array_equal(Z, ref, err_msg=f"{be} {memory_budget} {kw}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_coefficient_threshold_changes_nothing(backend):
    X, D, b = make_problem(40, 12, 70, np.float64, seed=1)
    for positive in (True, False):
        ref = mp_encode(X, D, n_steps=6, bias=b, positive=positive, backend=backend)
        Z = mp_encode(X, D, n_steps=6, bias=b, positive=positive, backend=backend,
                      coef_threshold=0.0)
        assert_array_equal(Z, ref)


def test_absolute_stop_moves_budget_between_samples():
    # Relative tol spends the same share of each sample's energy; the absolute
    # stop gives a flat (small) sample nothing and a large one many atoms.
    D = np.eye(4)
    X = np.array([[0.1, 0.1, 0.0, 0.0], [4.0, 3.0, 2.0, 1.0]])
    Z = mp_encode(X, D, n_steps=4, residual_threshold=1.0)
    assert_array_equal((Z != 0).sum(axis=1), [0, 3])
    Z = mp_encode(X, D, n_steps=4, coef_threshold=1.5)
    assert_array_equal(Z, [[0, 0, 0, 0], [4.0, 3.0, 2.0, 0]])


@pytest.mark.parametrize("name", ["residual_threshold", "coef_threshold"])
@pytest.mark.parametrize("value", [-1.0, "high"])
def test_bad_thresholds_are_rejected(name, value):
    with pytest.raises(ValueError, match=name):
        mp_encode(np.ones((2, 3)), np.eye(3), n_steps=2, **{name: value})


# --------------------------------------------------------------------------- properties

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def budget_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_samples = draw(st.integers(1, 10))
    n_features = draw(st.integers(1, 8))
    n_components = draw(st.integers(1, 60))
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.1, 3, (n_samples, 1))
    positive = draw(st.booleans())
    return X, D, draw(st.integers(1, 10)), positive, draw(st.sampled_from(["numpy", "numba"]))


@SETTINGS
@given(budget_problems(), st.lists(st.floats(0.0, 10.0), min_size=2, max_size=4),
       st.sampled_from(["residual_threshold", "coef_threshold"]))
def test_steps_monotone_and_prefix_of_full_pursuit(problem, thresholds, name):
    X, D, n_steps, positive, backend = problem
    full_idx, full_coef = pursue(X, D, n_steps=n_steps, positive=positive, backend=backend)
    previous = None
    for value in sorted(thresholds):
        idx, coef = pursue(X, D, n_steps=n_steps, positive=positive, backend=backend,
                           **{name: value})
        steps = (coef != 0).sum(axis=1)
        # A stopped pursuit is the full pursuit cut short: same atoms, same
        # coefficients (up to rounding: the per-step products skip stopped rows,
        # and a GEMM of fewer rows may sum in another order), then zeros.
        for s, m in enumerate(steps):
            assert_array_equal(idx[s, :m], full_idx[s, :m])
            assert_allclose(coef[s, :m], full_coef[s, :m], rtol=1e-9, atol=1e-12)
            assert not coef[s, m:].any()
        L0 = (mp_encode(X, D, n_steps=n_steps, positive=positive, backend=backend,
                        **{name: value}) != 0).sum(axis=1)
        if previous is not None:  # a higher threshold never spends more
            assert (steps <= previous[0]).all() and (L0 <= previous[1]).all()
        previous = steps, L0
        if name == "coef_threshold":
            assert (np.abs(coef[coef != 0]) >= value).all()
