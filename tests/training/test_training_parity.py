"""The training fast path equals the naive unrolled autograd loop (SPEC section 2, Training).

Fast path: ``select_atoms`` (Gram pursuit with no autograd: the numba kernel on
CPU, or torch per-step products when the Gram matrix does not fit), then a
differentiable pursuit along those selections: ``recompute_residual`` (torch
autograd on the gathered atoms, the GPU path) or ``pursuit_residual_sq`` (numba
forward and backward kernels, the CPU path). Reference:
``unrolled_loss``, one full product ``r @ D.T`` per step under autograd.
"""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from skmpsae._pursuit._core import pursue
from skmpsae._pursuit._plan import DEFAULT_MEMORY_BUDGET, plan_pursuit
from skmpsae._pursuit._train_pass import recompute_residual, select_atoms, unrolled_loss
from skmpsae._pursuit._train_pass_numba import pursuit_residual_sq

# (batch, n_features, n_components, k); the cost model picks the Gram path for
# some and per-step products for others (asserted in test_default_path_choice).
CONFIGS = [
    (32, 16, 64, 4),  # Gram
    (17, 24, 131, 8),  # products (131 >= 7 * 17)
    (8, 10, 40, 12),  # Gram, k > n_features
    (40, 8, 100, 3),  # Gram, n_components not a multiple of 64
    (5, 6, 300, 10),  # products
    (16, 12, 6, 8),  # Gram; few atoms: positive pursuit runs out of positive correlations
]
IDS = ["x".join(map(str, c)) for c in CONFIGS]

# float64: both paths compute the same function with a different summation
# order (bmm on k gathered atoms vs full products), so they agree to ~1e-15;
# 1e-10 leaves room for the accumulation over k steps and the backward pass.
# float32: the same, with eps32 ~ 6e-8 instead of 1e-16.
TOLS = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-4, atol=1e-5)}


def make_batch(batch, n_features, n_components, dtype, seed=0, dropout=False):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_components, n_features, generator=g, dtype=torch.float64)
    D = (D / D.norm(dim=1, keepdim=True)).to(dtype)
    b = (0.3 * torch.randn(n_features, generator=g, dtype=torch.float64)).to(dtype)
    X = (torch.randn(batch, n_features, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    mask = None
    if dropout:  # atom dropout in early epochs multiplies D by a 0/1 mask
        mask = (torch.rand(n_components, generator=g) >= 0.5).to(dtype)
        mask[0] = 1
    return D, b, X, mask


def fast_loss_and_grads(D0, b0, X, k, positive, mask=None, memory_budget=DEFAULT_MEMORY_BUDGET,
                        engine="torch"):
    D = D0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    Deff = D if mask is None else D * mask.unsqueeze(1)
    idx, C = select_atoms(Deff.detach(), b.detach(), X, k, positive,
                          memory_budget=memory_budget)
    if engine == "numba":
        resid_sq, coef = pursuit_residual_sq(Deff, b, X, idx, positive)
        loss = resid_sq.mean()
        with torch.no_grad():
            residual, _ = recompute_residual(Deff, b, X, idx, positive)
    else:
        residual, coef = recompute_residual(Deff, b, X, idx, positive)
        loss = (residual * residual).sum(dim=1).mean()
    gD, gb = torch.autograd.grad(loss, (D, b))
    return dict(loss=loss.detach(), gD=gD, gb=gb, idx=idx, C=C, residual=residual.detach(),
                coef=coef.detach(), Deff=Deff.detach())


def unrolled_loss_and_grads(D0, b0, X, k, positive, mask=None):
    D = D0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    Deff = D if mask is None else D * mask.unsqueeze(1)
    loss = unrolled_loss(Deff, b, X, k, positive)
    gD, gb = torch.autograd.grad(loss, (D, b))
    return dict(loss=loss.detach(), gD=gD, gb=gb)


def reference_pursuit(D, b, X, k, positive):
    """Selections and coefficients of the NumPy reference (Gram engine) on the same data."""
    Dn = D.numpy()
    return pursue(X.numpy(), Dn, n_steps=k, bias=b.numpy(), positive=positive,
                  gram=Dn @ Dn.T, backend="numpy")


def assert_same_selections(idx, ref_idx, ref_coef, X, b):
    """Indices agree on every step whose reference coefficient is above rounding noise.

    Once the coefficients fall to rounding level (few atoms: the pursuit
    converges geometrically; positive mode: the atom just removed keeps a
    correlation of +-1 ulp), which atom wins, or whether a positive pursuit
    stops, depends on the summation order of the GEMM (torch's here, NumPy's in
    the reference). Noise is ~eps * |x - b|; steps with coefficients above
    1e3 * eps * max|x - b| must be the same.
    """
    idx = idx.numpy()
    noise = 1e3 * torch.finfo(X.dtype).eps * float((X - b).abs().max())
    small = np.abs(ref_coef) <= noise
    # length of each sample's prefix of significant steps
    prefix = np.where(small.any(axis=1), small.argmax(axis=1), small.shape[1])
    significant = np.arange(idx.shape[1]) < prefix[:, None]
    np.testing.assert_array_equal(np.where(significant, idx, -1),
                                  np.where(significant, ref_idx, -1))
    # the comparison must not be vacuous
    assert significant.any()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dropout", [False, True], ids=["full", "dropout"])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_fast_path_matches_unrolled(engine, dtype, positive, dropout, config):
    batch, n_features, n_components, k = config
    D, b, X, mask = make_batch(batch, n_features, n_components, dtype, seed=sum(config),
                               dropout=dropout)
    fast = fast_loss_and_grads(D, b, X, k, positive, mask, engine=engine)
    ref = unrolled_loss_and_grads(D, b, X, k, positive, mask)
    tols = TOLS[dtype]
    assert fast["loss"].dtype == dtype
    assert_close(fast["loss"], ref["loss"], **tols)
    assert_close(fast["gD"], ref["gD"], **tols)
    assert_close(fast["gb"], ref["gb"], **tols)
    assert fast["gD"].abs().sum() > 0 and fast["gb"].abs().sum() > 0

    idx = fast["idx"]
    assert idx.shape == (batch, k) and idx.dtype == torch.int64
    # same selections as the NumPy reference pursuit
    ref_idx, ref_coef = reference_pursuit(fast["Deff"], b, X, k, positive)
    assert_same_selections(idx, ref_idx, ref_coef, X, b)
    if positive:
        assert (fast["coef"] >= 0).all()
    # the correlations returned by the Gram path are those of the final residual
    if fast["C"] is not None:
        assert_close(fast["C"], fast["residual"] @ fast["Deff"].T, **tols)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_product_path_same_indices(dtype, positive, config):
    batch, n_features, n_components, k = config
    D, b, X, _ = make_batch(batch, n_features, n_components, dtype, seed=sum(config) + 1)
    budget = 1  # the Gram matrix never fits: per-step products
    assert not plan_pursuit(batch, n_components, n_features, k, D.element_size(),
                            gram_given=False, backend="torch", memory_budget=budget).use_gram
    idx_prod, C = select_atoms(D, b, X, k, positive, memory_budget=budget)
    assert C is None
    # default budget: the cost model's choice (Gram for some configurations)
    idx_gram, _ = select_atoms(D, b, X, k, positive)
    ref_idx, ref_coef = reference_pursuit(D, b, X, k, positive)
    assert_same_selections(idx_prod, ref_idx, ref_coef, X, b)
    assert_same_selections(idx_gram, ref_idx, ref_coef, X, b)
    fast = fast_loss_and_grads(D, b, X, k, positive, memory_budget=budget)
    ref = unrolled_loss_and_grads(D, b, X, k, positive)
    tols = TOLS[dtype]
    assert_close(fast["loss"], ref["loss"], **tols)
    assert_close(fast["gD"], ref["gD"], **tols)
    assert_close(fast["gb"], ref["gb"], **tols)


def test_default_path_choice():
    # the configurations above exercise both selection paths by default
    used = []
    for batch, n_features, n_components, k in CONFIGS:
        D, b, X, _ = make_batch(batch, n_features, n_components, torch.float64)
        _, C = select_atoms(D, b, X, k, True)
        used.append(C is not None)
    assert any(used) and not all(used)


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_select_atoms_with_requires_grad_inputs(positive):
    # select_atoms runs under no_grad: tensors that require grad are accepted
    # and nothing it returns carries a graph.
    D, b, X, _ = make_batch(32, 16, 64, torch.float64, seed=3)
    D.requires_grad_(True)
    b.requires_grad_(True)
    idx, C = select_atoms(D, b, X, 4, positive)
    assert C is not None and not C.requires_grad and not idx.requires_grad
    ref_idx, ref_coef = reference_pursuit(D.detach(), b.detach(), X, 4, positive)
    assert_same_selections(idx, ref_idx, ref_coef, X, b.detach())


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_recompute_matches_literal_loop_values(positive):
    # coefficients and residual of the recompute equal a plain loop along the
    # same indices (float64)
    D, b, X, _ = make_batch(20, 10, 50, torch.float64, seed=4)
    idx, _ = select_atoms(D, b, X, 6, positive)
    residual, coef = recompute_residual(D, b, X, idx, positive)
    r = X - b
    rows = torch.arange(X.shape[0])
    for t in range(6):
        a = (r * D[idx[:, t]]).sum(dim=1)
        if positive:
            a = a.clamp_min(0)
        assert_close(coef[:, t], a, rtol=1e-12, atol=1e-12)
        r = r - a.unsqueeze(1) * D[idx[rows, t]]
    assert_close(residual, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_numba_kernels_on_several_threads(monkeypatch, positive):
    # Small problems run the kernels on one thread; force the parallel path
    # (per-thread gradient buffers of the backward kernel) on a small one.
    import numba

    monkeypatch.setattr("skmpsae._threads._SERIAL_KERNEL_BELOW", 0)
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    numba.set_num_threads(2)
    D, b, X, _ = make_batch(48, 16, 80, torch.float64, seed=5)
    fast = fast_loss_and_grads(D, b, X, 6, positive, engine="numba")
    ref = unrolled_loss_and_grads(D, b, X, 6, positive)
    for key in ("loss", "gD", "gb"):
        assert_close(fast[key], ref[key], **TOLS[torch.float64])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_select_atoms_workspace_gives_the_same_selections(dtype):
    # A training run's workspace (the Gram matrix and correlations reused from
    # step to step, a shorter last batch in the first rows of the buffer) changes
    # nothing: the same indices and correlations as fresh arrays, step after step,
    # while the dictionary changes between steps.
    workspace = {}
    for step, batch in enumerate((32, 32, 11, 32)):
        D, b, X, _ = make_batch(batch, 16, 64, dtype, seed=10 + step)
        idx, C = select_atoms(D, b, X, 8, True)
        idx_ws, C_ws = select_atoms(D, b, X, 8, True, workspace=workspace)
        assert torch.equal(idx_ws, idx)
        assert torch.equal(C_ws, C)
    assert workspace["gram"].shape == (64, 64)
    assert workspace["corr"].shape == (32, 64)
