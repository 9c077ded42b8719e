"""Property tests of matching pursuit's invariants (SPEC section 2).

Problems are drawn as a seed plus shapes and a "kind" of data, then generated
with NumPy, which keeps hypothesis fast. Float64 throughout, so the tolerances
below only need to cover rounding (~1e-15 relative); they are set at 1e-9.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skmpsae import mp_encode
from skmpsae._pursuit._core import densify, pursue

BACKENDS = ["numpy", "numba"]
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
RTOL = 1e-9

KINDS = ["gaussian", "low_rank", "duplicated_atoms", "integer", "orthonormal", "with_zero_rows"]


@st.composite
def problems(draw, with_tol=False):
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(KINDS))
    n_samples = draw(st.integers(1, 12))
    n_features = draw(st.integers(1, 10))
    n_components = draw(st.integers(1, 80))
    n_steps = draw(st.integers(0, 10))
    positive = draw(st.booleans())
    has_bias = draw(st.booleans())
    gram_given = draw(st.booleans())
    tol = draw(st.floats(0.0, 1.2)) if with_tol else None

    rng = np.random.default_rng(seed)
    if kind == "orthonormal":
        n_components = min(n_components, n_features)
        Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
        D = Q[:n_components]
    else:
        D = rng.standard_normal((n_components, n_features))
        if kind == "duplicated_atoms":
            D = np.vstack([D, D[rng.integers(0, n_components, size=n_components)]])
        D /= np.linalg.norm(D, axis=1, keepdims=True)
    if kind == "low_rank":
        rank = max(1, n_features // 3)
        X = rng.standard_normal((n_samples, rank)) @ rng.standard_normal((rank, n_features))
    elif kind == "integer":
        X = rng.integers(-3, 4, size=(n_samples, n_features)).astype(float)
    else:
        X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.1, 10)
    b = rng.standard_normal(n_features) if has_bias else None
    if kind == "with_zero_rows":
        X[rng.random(n_samples) < 0.5] = 0.0 if b is None else b
    return dict(X=X, D=D, b=b, n_steps=n_steps, positive=positive, gram_given=gram_given,
                tol=tol)


def encode(p, backend, n_steps=None, **extra):
    D = p["D"]
    return mp_encode(p["X"], D, n_steps=p["n_steps"] if n_steps is None else n_steps,
                     bias=p["b"], positive=p["positive"], tol=p["tol"],
                     gram=D @ D.T if p["gram_given"] else None, backend=backend, **extra)


def centred(p):
    return p["X"] if p["b"] is None else p["X"] - p["b"]


def scale(p):
    return float(np.abs(centred(p)).max()) + 1.0


def residual_path(p, idx, coef):
    """Residuals r_0..r_T of every sample along the given selections (float64 loop)."""
    R = [centred(p).copy()]
    for t in range(idx.shape[1]):
        R.append(R[-1] - coef[:, t, None] * p["D"][idx[:, t]])
    return np.stack(R, axis=1)  # (n_samples, T + 1, n_features)


def literal_pursuit(p):
    """SPEC section 2's loop, written independently of the package."""
    D, tol = p["D"], p["tol"]
    Z = np.zeros((p["X"].shape[0], D.shape[0]))
    R = centred(p).copy()
    for s in range(R.shape[0]):
        r0 = R[s] @ R[s]
        for _ in range(p["n_steps"]):
            if tol is not None and R[s] @ R[s] <= tol * r0:
                break
            c = D @ R[s]
            j = int(np.argmax(c if p["positive"] else np.abs(c)))
            a = max(c[j], 0.0) if p["positive"] else c[j]
            if a == 0:
                break
            Z[s, j] += a
            R[s] = R[s] - a * D[j]
    return Z, R


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(p=problems())
def test_residual_norm_never_increases(backend, p):
    norms = []
    for t in range(p["n_steps"] + 1):
        Z = encode(p, backend, n_steps=t)
        norms.append(np.linalg.norm(centred(p) - Z @ p["D"], axis=1))
    norms = np.array(norms)
    assert (np.diff(norms, axis=0) <= RTOL * scale(p)).all()


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(p=problems())
def test_residual_orthogonal_to_last_atom(backend, p):
    D = p["D"]
    gram = D @ D.T if p["gram_given"] else None
    idx, coef = pursue(p["X"], D, n_steps=p["n_steps"], bias=p["b"], positive=p["positive"],
                       gram=gram, backend=backend)
    assert idx.shape == coef.shape == (p["X"].shape[0], p["n_steps"])
    assert ((idx >= 0) & (idx < D.shape[0])).all()
    R = residual_path(p, idx, coef)
    tol = RTOL * scale(p)
    for t in range(p["n_steps"]):
        # correlation of the residual *before* step t with every atom
        c_before = R[:, t] @ D.T
        best = c_before.max(axis=1) if p["positive"] else np.abs(c_before).max(axis=1)
        took = coef[:, t] != 0
        # a step that was taken removed the atom: residual orthogonal to it ...
        after = np.einsum("ij,ij->i", R[:, t + 1], D[idx[:, t]])
        assert (np.abs(after[took]) <= tol).all()
        # ... and that atom was the best one (up to rounding)
        picked = c_before[np.arange(len(idx)), idx[:, t]]
        assert (np.abs(np.where(p["positive"], picked, np.abs(picked)) - best)[took] <= tol).all()
        # a skipped step (no tol here) means nothing was left to add
        assert (best[~took] <= tol).all()
        if p["positive"]:
            assert (coef[:, t] >= 0).all()
        # once a sample stops it stays stopped
        if t > 0:
            assert not (took & (coef[:, t - 1] == 0)).any()


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(p=problems(with_tol=True))
def test_sparsity_sign_and_reconstruction(backend, p):
    Z = encode(p, backend)
    assert Z.shape == (p["X"].shape[0], p["D"].shape[0])
    assert Z.dtype == np.float64
    assert ((Z != 0).sum(axis=1) <= p["n_steps"]).all()
    if p["positive"]:
        assert (Z >= 0).all()
    # x_hat = codes @ D + b and the residual of the literal loop add up to x
    Z_ref, R_ref = literal_pursuit(p)
    x_hat = Z @ p["D"] + (0 if p["b"] is None else p["b"])
    np.testing.assert_allclose(x_hat + R_ref, p["X"], rtol=0, atol=RTOL * scale(p) * 10)
    np.testing.assert_allclose(Z_ref @ p["D"], Z @ p["D"], rtol=0, atol=RTOL * scale(p) * 10)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(p=problems(with_tol=True))
def test_tol_stopping_rule(backend, p):
    D, tol = p["D"], p["tol"]
    gram = D @ D.T if p["gram_given"] else None
    idx, coef = pursue(p["X"], D, n_steps=p["n_steps"], bias=p["b"], positive=p["positive"],
                       tol=tol, gram=gram, backend=backend)
    np.testing.assert_array_equal(densify(idx, coef, D.shape[0]), encode(p, backend))
    R = residual_path(p, idx, coef)
    rsq = np.einsum("stf,stf->st", R, R)
    level = tol * rsq[:, 0]
    slack = RTOL * scale(p) ** 2
    taken = coef != 0
    # steps taken form a prefix
    n_taken = taken.sum(axis=1)
    assert (taken == (np.arange(p["n_steps"]) < n_taken[:, None])).all()
    for s in range(len(n_taken)):
        m = int(n_taken[s])
        # never stopped too early by tol: before each step taken, the residual
        # was above the level
        assert (rsq[s, :m] > level[s] - slack).all(), (s, m)
        if m == p["n_steps"]:
            continue
        # stopped early: either the level was reached, or no atom was left to
        # add (positive mode: no positive correlation; signed: all zero)
        c = R[s, m] @ D.T
        best = c.max() if p["positive"] else np.abs(c).max()
        assert rsq[s, m] <= level[s] + slack or best <= RTOL * scale(p), (s, m)


@pytest.mark.parametrize("backend", BACKENDS)
@SETTINGS
@given(p=problems(), data=st.data())
def test_memory_budget_does_not_change_reconstruction(backend, p, data):
    # Smaller memory budgets force the product path and tiny chunks.
    budget = data.draw(st.sampled_from([1, 256, 4096]))
    Z = encode(p, backend)
    Z_small = encode(p, backend, memory_budget=budget)
    np.testing.assert_allclose(Z_small @ p["D"], Z @ p["D"], rtol=0,
                               atol=RTOL * scale(p) * 10)
