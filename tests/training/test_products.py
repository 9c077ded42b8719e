"""oneDNN's float32 products (``_products``): values, and the bits that the fits rely on."""

import numpy as np
import pytest
import torch

from skmpsae import _products
from skmpsae._products import linear, onednn_active, product_nt
from skmpsae._threads import thread_pool

needs_onednn = pytest.mark.skipif(not onednn_active(np.float32),
                                  reason="torch's oneDNN product is not used on this machine")


def _operands(dtype, rows=300, features=96, out=257, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(torch.from_numpy(rng.standard_normal(shape).astype(dtype))
                 for shape in ((rows, features), (out, features), (out,)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_the_float64_product(dtype, with_bias):
    x, W, b = _operands(dtype)
    b = b if with_bias else None
    got = linear(x, W, b)
    expected = x.double() @ W.double().T + (0 if b is None else b.double())
    assert got.dtype == x.dtype and got.shape == (300, 257) and got.is_contiguous()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)
    if dtype == np.float64:  # torch's own product, bit for bit
        assert torch.equal(got, x @ W.T if b is None else torch.addmm(b, x, W.T))


@needs_onednn
def test_onednn_bits_do_not_depend_on_threads_rows_or_alignment():
    # A Gram matrix's pieces and a training step's encoder product take these
    # bits as the same whatever the thread count, the rows of a piece, or
    # where an array lies (a safetensors file's are 8 bytes off 16).
    x, W, b = _operands(np.float32, rows=512, features=200, out=1000)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = linear(x, W, b)
        torch.set_num_threads(2)
        two = linear(x, W, b)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)
    assert torch.equal(linear(x[100:230], W, b), one[100:230])
    assert torch.equal(linear(x, W[:300]), linear(x, W)[:, :300])
    raw = torch.empty(W.numel() + 8)
    moved = raw[2:2 + W.numel()].view_as(W)  # 8 bytes past the allocation's alignment
    moved.copy_(W)
    assert torch.equal(linear(x, moved, b), one)


def test_linear_keeps_gradients_where_they_are_recorded():
    x, W, b = _operands(np.float32, rows=20, features=8, out=6)
    W.requires_grad_(True)
    linear(x, W, b).sum().backward()
    torch.testing.assert_close(W.grad, x.sum(0).expand(6, 8))
    with torch.no_grad():
        assert not linear(x, W, b).requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_nt_writes_into_a_strided_view(dtype):
    x, W, _ = (t.numpy() for t in _operands(dtype, rows=70, features=33, out=90))
    out = np.full((100, 120), -1.0, dtype=dtype)
    assert product_nt(x, W, out[10:80, 5:95]) is not None
    expected = x.astype(np.float64) @ W.T.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out[10:80, 5:95], expected, rtol=tol, atol=tol)
    np.testing.assert_array_equal(product_nt(x, W), out[10:80, 5:95])  # a new array
    untouched = np.ones(out.shape, dtype=bool)
    untouched[10:80, 5:95] = False
    assert (out[untouched] == -1).all()


def test_the_pool_threads_run_openmp_on_one_thread():
    # A new thread's OpenMP count is the machine's: the pieces on the pool's
    # threads would each take every core.
    from threadpoolctl import ThreadpoolController

    def counts():
        return [lib["num_threads"] for lib in ThreadpoolController().select(
            user_api="openmp").info()]

    for workers in (1, 2):
        assert set(thread_pool(workers).submit(counts).result()) <= {1}


def test_without_onednn_the_products_are_torch_and_numpy_s(monkeypatch):
    monkeypatch.setattr(_products, "_onednn_op", lambda: None)
    x, W, b = _operands(np.float32)
    assert not onednn_active(np.float32)
    assert torch.equal(linear(x, W, b), torch.addmm(b, x, W.T))
    out = np.empty((300, 257), dtype=np.float32)
    np.testing.assert_array_equal(product_nt(x.numpy(), W.numpy(), out),
                                  np.matmul(x.numpy(), W.numpy().T))


def test_the_environment_turns_onednn_off(monkeypatch):
    monkeypatch.setenv(_products.ENV, "0")
    _products._onednn_op.cache_clear()
    try:
        assert not onednn_active(np.float32)
    finally:
        monkeypatch.delenv(_products.ENV)
        _products._onednn_op.cache_clear()
    assert onednn_active(np.float64) is False
