"""The sparse training path of the linear-encoder SAEs against the plain dense formulation."""

import numpy as np
import pytest
import torch

from skmpsae import BatchTopKSAE, MatryoshkaSAE, ReLUSAE, TopKSAE, _linear_sae, _sparse_codes
from skmpsae._sparse_codes import (
    SparseCodes,
    column_order,
    dense_decode,
    dense_pre,
    gather_pre,
    sparse_decode,
)

N, D_IN, N_COMP, K = 48, 12, 40, 4
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=2e-4, atol=2e-5)}


def _params(dtype, cls, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(N_COMP, D_IN, generator=g, dtype=torch.float64)
    D /= D.norm(dim=1, keepdim=True)
    arrays = {"components": D, "bias": 0.1 * torch.randn(D_IN, generator=g, dtype=torch.float64),
              "encoder": 0.8 * D + 0.1 * torch.randn(N_COMP, D_IN, generator=g,
                                                     dtype=torch.float64),
              "encoder_bias": 0.05 * torch.randn(N_COMP, generator=g, dtype=torch.float64)}
    if cls is ReLUSAE:
        arrays["encoder_bias"] -= 0.6  # a few active latents per sample
        arrays["l1_coefficient"] = torch.tensor([0.01], dtype=torch.float64)
        # Free decoder norms (l1_mode="decoder_norm" trains them), not all 1.
        arrays["components"] = D * (0.5 + torch.rand(N_COMP, 1, generator=g, dtype=torch.float64))
    else:
        # Every third latent is dead, so that the AuxK loss takes part.
        since = torch.zeros(N_COMP, dtype=torch.float64)
        since[::3] = 1e9
        arrays["encoder"][::3] *= 0.2  # and rarely fire
        arrays["samples_since_fired"] = since
        if cls is not TopKSAE:
            arrays["threshold"] = torch.zeros(1, dtype=torch.float64)
    X = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    return ({n: (v.to(dtype).requires_grad_() if n in cls._array_names and
                 n not in cls._buffer_names else v.to(dtype)) for n, v in arrays.items()},
            X.to(dtype))


def _estimator(cls, l1_mode="decoder_norm"):
    if cls is ReLUSAE:
        return ReLUSAE(k=K, l1_mode=l1_mode)
    if cls is MatryoshkaSAE:
        return MatryoshkaSAE(k=K, aux_k=3, group_sizes=[5, 10, 25], dead_after=100)
    return cls(k=K, aux_k=3, dead_after=100)


def _dense_loss(est, p, xb):
    """The plain formulation: dense codes, dense products, AuxK over a masked dense top-k."""
    pre = (xb - p["bias"]) @ p["encoder"].T + p["encoder_bias"]
    if isinstance(est, ReLUSAE):
        z = pre.clamp_min(0)
    elif isinstance(est, BatchTopKSAE):
        flat = pre.clamp_min(0).flatten()
        values, idx = flat.topk(est.k * pre.shape[0])
        z = torch.zeros_like(flat).scatter(0, idx, values).view_as(pre)
    else:
        values, idx = pre.topk(est.k, dim=1)
        z = torch.zeros_like(pre).scatter(1, idx, values.clamp_min(0))
    Dm, b = p["components"], p["bias"]
    if isinstance(est, MatryoshkaSAE):
        x_hat, loss, start = b.expand_as(xb), 0.0, 0
        for size in est.group_sizes:
            x_hat = x_hat + z[:, start:start + size] @ Dm[start:start + size]
            loss = loss + ((xb - x_hat) ** 2).sum(1).mean()
            start += size
    else:
        x_hat = z @ Dm + b
        loss = ((xb - x_hat) ** 2).sum(1).mean()
    fired = (z.detach() != 0).sum(0)
    if isinstance(est, ReLUSAE):
        coef = p["l1_coefficient"]
        l0 = float((z != 0).sum(1).float().mean())
        coef.mul_(np.exp(est.l1_adapt_rate * np.log((l0 + 1) / (est.k + 1))))
        # Decoder-norm-weighted L1 (the default) or plain L1 of a unit-norm decoder.
        weights = Dm.norm(dim=1) if est.l1_mode == "decoder_norm" else 1.0
        return loss + coef[0] * (z * weights).sum(1).mean(), fired
    since = p["samples_since_fired"]
    since += xb.shape[0]
    since[fired > 0] = 0
    dead = since > est.dead_after
    pre_aux = (xb - b.detach()) @ p["encoder"].T + p["encoder_bias"]
    if not dead.any():
        return loss, fired
    aux_k = min(est.aux_k, int(dead.sum()))
    values, idx = torch.where(dead, pre_aux, -torch.inf).topk(aux_k, dim=1)
    e_hat = torch.zeros_like(pre_aux).scatter(1, idx, values.clamp_min(0)) @ Dm
    residual = (xb - x_hat).detach()
    scale = ((residual * e_hat).sum() / (e_hat * e_hat).sum().clamp_min(1e-12)).detach()
    error = residual - e_hat * scale.clamp(0, 1)
    return loss + est.aux_coef * (error ** 2).sum(1).mean(), fired


@pytest.mark.parametrize("aux_dense_from, auxk_kernels_below",
                         [(_linear_sae.AUX_DENSE_FROM, 0.0), (_linear_sae.AUX_DENSE_FROM, 2.0),
                          (2.0, 0.0)])
@pytest.mark.parametrize("dense_above", [_sparse_codes.DENSE_ABOVE, 0.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cls, l1_mode", [(TopKSAE, None), (BatchTopKSAE, None),
                                          (MatryoshkaSAE, None), (ReLUSAE, "decoder_norm"),
                                          (ReLUSAE, "unit")])
def test_batch_loss_matches_dense_formulation(cls, l1_mode, dtype, dense_above, aux_dense_from,
                                              auxk_kernels_below, monkeypatch):
    # dense_above=0 takes the dense products (the fallback of mostly active codes);
    # aux_dense_from=2 the sparse AuxK path (3 of 14 dead latents take the dense
    # one); auxk_kernels_below=2 runs the dense one's products as numba kernels
    # over the selected entries, 0 as dense products over the dead columns.
    from skmpsae import _auxk

    monkeypatch.setattr(_sparse_codes, "DENSE_ABOVE", dense_above)
    monkeypatch.setattr(_linear_sae, "AUX_DENSE_FROM", aux_dense_from)
    monkeypatch.setattr(_auxk, "KERNELS_BELOW", auxk_kernels_below)
    est = _estimator(cls, l1_mode)
    fast, xb = _params(dtype, cls)
    ref, _ = _params(dtype, cls)
    loss, fired = est._batch_loss(fast, xb, epoch=0, rng=None)
    expected, expected_fired = _dense_loss(est, ref, xb)
    torch.testing.assert_close(loss, expected, **TOL[dtype])
    torch.testing.assert_close(fired, expected_fired)
    loss.backward()
    expected.backward()
    for name, p in fast.items():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, ref[name].grad, **TOL[dtype], msg=name)
        else:  # buffers: dead-latent counts, L1 coefficient
            torch.testing.assert_close(p, ref[name], **TOL[dtype], msg=name)
    if cls is not ReLUSAE:
        assert fast["encoder"].grad[::3].abs().sum() > 0  # dead latents learn from AuxK


def test_gather_pre_gradients():
    g = torch.Generator().manual_seed(1)
    xc = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([0, 0, 1, 3, 3, 3, 5])  # rows 2 and 4 empty
    cols = torch.tensor([1, 8, 1, 0, 4, 8, 2])
    offsets = SparseCodes.select(rows, cols, 6, 9).row_offsets()

    def fn(xc, W, b):
        pre = (xc @ W.T + b).detach()
        return gather_pre(pre, xc, W, b, rows, cols, offsets)

    assert torch.autograd.gradcheck(fn, (xc, W, b))
    torch.testing.assert_close(fn(xc, W, b), (xc @ W.T + b)[rows, cols])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dense_pre_and_decode_gradients(dtype):
    # The dense path's own backward (oneDNN's products in float32) against
    # autograd through the plain products; gradcheck in float64.
    g = torch.Generator().manual_seed(2)
    leaves = [torch.randn(shape, generator=g, dtype=dtype, requires_grad=True)
              for shape in ((6, 5), (9, 5), (9,), (9, 5))]
    rows = torch.tensor([0, 0, 1, 3, 3, 3, 5])  # rows 2 and 4 empty
    cols = torch.tensor([1, 8, 1, 0, 4, 8, 2])

    def fast(xc, W, b, D):
        values = dense_pre((xc @ W.T + b).detach(), xc, W, b, rows, cols)
        return dense_decode(values.relu(), D, rows, cols, 6)

    def plain(xc, W, b, D):
        values = (xc @ W.T + b)[rows, cols].relu()
        return torch.zeros(6, 9, dtype=dtype).index_put((rows, cols), values) @ D

    if dtype == torch.float64:
        assert torch.autograd.gradcheck(fast, tuple(leaves))
    out = fast(*leaves)
    grads = torch.autograd.grad(out.square().sum(), leaves)
    ref = [t.detach().clone().requires_grad_(True) for t in leaves]
    expected = plain(*ref)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, expected, **tol)
    for got, want in zip(grads, torch.autograd.grad(expected.square().sum(), ref), strict=True):
        torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("with_order", [True, False])
def test_sparse_decode_gradients(with_order):
    g = torch.Generator().manual_seed(2)
    D = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([0, 0, 1, 3, 3, 3, 5, 5])  # rows 2 and 4 empty; column 8 twice in row 5
    cols = torch.tensor([1, 8, 1, 0, 4, 8, 8, 8])
    values = torch.randn(8, generator=g, dtype=torch.float64, requires_grad=True)
    codes = SparseCodes.select(rows, cols, 6, 9, dense=False)
    order = codes.order if with_order else None

    def fn(values, D):
        return sparse_decode(values, D, rows, cols, codes.row_offsets(), order)

    assert torch.autograd.gradcheck(fn, (values, D))
    dense = torch.zeros(6, 9, dtype=torch.float64).index_put((rows, cols), values, accumulate=True)
    torch.testing.assert_close(fn(values, D), dense @ D)


@pytest.mark.parametrize("n_cols", [9, 70000])  # the radix sort and torch's sort
def test_column_order_is_a_stable_sort(n_cols):
    cols = torch.from_numpy(np.random.default_rng(0).integers(0, n_cols, 500))
    perm, offsets = column_order(cols, n_cols)
    torch.testing.assert_close(perm, torch.argsort(cols, stable=True))
    counts = torch.bincount(cols, minlength=n_cols)
    torch.testing.assert_close(offsets, torch.cumsum(counts, 0) - counts)


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE])
def test_inference_matches_dense_numpy(cls):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 10))
    kw = {"group_sizes": [8, 24]} if cls is MatryoshkaSAE else {}
    sae = cls(n_components=32, k=3, max_iter=2, random_state=0, **kw).fit(X)
    pre = (X - sae.bias_) @ sae.encoder_.T + sae.encoder_bias_
    act = np.maximum(pre, 0)
    if cls is ReLUSAE:
        expected = act
    elif cls is TopKSAE:
        expected = np.where(act >= np.sort(act, axis=1)[:, [-3]], act, 0)
    else:
        expected = np.where(act > sae.threshold_[0], act, 0)
    np.testing.assert_allclose(sae.transform(X), expected, rtol=1e-12, atol=0)
    top2 = np.where(act >= np.sort(act, axis=1)[:, [-2]], act, 0)
    np.testing.assert_allclose(sae.transform(X, n_steps=2), top2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auxk_kernels_match_dense_products_on_any_thread_count(dtype):
    # The numba kernels of AuxK's products over the selected entries, against
    # the dense products they replace; one thread or two, row blocks crossed.
    import numba

    from skmpsae import _auxk

    rng = np.random.default_rng(3)
    n_rows, n_dead, n_features, k = 600, 90, 13, 20
    others = np.delete(np.arange(n_dead), 7)  # latent 7 in every row: a long column
    idx = np.stack([np.r_[7, rng.choice(others, k - 1, replace=False)] for _ in range(n_rows)])
    a, b = rng.standard_normal((2, n_rows, k)).astype(dtype)
    D, A, B = (rng.standard_normal(shape).astype(dtype) for shape in
               ((n_dead, n_features), (n_rows, n_features), (n_rows, n_features)))
    dense_a, dense_b = np.zeros((2, n_rows, n_dead), dtype=dtype)
    np.put_along_axis(dense_a, idx, a, 1)
    np.put_along_axis(dense_b, idx, b, 1)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    results = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            decoded = np.empty((n_rows, n_features), dtype=dtype)
            _auxk._decode(idx, a, D, decoded)
            dots = np.empty((n_rows, k), dtype=dtype)
            _auxk._dots(idx, A, D, dots)
            starts, order = _auxk._by_column(idx, n_dead)
            out_a, out_b = np.full((2, n_dead, n_features), np.nan, dtype=dtype)
            out_sum = np.full(n_dead, np.nan, dtype=dtype)
            _auxk._transposed(idx, a, A, b, B, starts, order, out_a, out_b, out_sum)
            results.append((decoded, dots, out_a, out_b, out_sum))
    finally:
        numba.set_num_threads(previous)
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)
    decoded, dots, out_a, out_b, out_sum = results[0]
    np.testing.assert_allclose(decoded, dense_a @ D, **tol)
    np.testing.assert_allclose(dots, np.take_along_axis(A @ D.T, idx, 1), **tol)
    np.testing.assert_allclose(out_a, dense_a.T @ A, **tol)
    np.testing.assert_allclose(out_b, dense_b.T @ B, **tol)
    np.testing.assert_allclose(out_sum, dense_a.sum(0), **tol)
    assert np.diff(starts).tolist() == np.bincount(idx.ravel(), minlength=n_dead).tolist()
