"""GPU paths (torch on CUDA, the CUDA kernel through CuPy): run only where a GPU is present."""

import copy

import numpy as np
import pytest
import torch

from skmpsae import MatchingPursuitSAE, mp_encode
from skmpsae._pursuit._train_pass import pursuit_loss, select_atoms, unrolled_loss

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("positive", [True, False])
def test_torch_cuda_encode_matches_reference(dtype, positive):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((300, 40)).astype(dtype)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((500, 40)).astype(dtype)
    ref = mp_encode(X, D, n_steps=12, positive=positive, backend="numpy")
    got = mp_encode(X, D, n_steps=12, positive=positive, backend="torch")
    np.testing.assert_array_equal(got != 0, ref != 0)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_cuda_training_path_matches_unrolled():
    g = torch.Generator().manual_seed(0)
    D = torch.randn(256, 32, generator=g, dtype=torch.float64)
    D = (D / D.norm(dim=1, keepdim=True)).cuda().requires_grad_(True)
    b = torch.zeros(32, dtype=torch.float64, device="cuda", requires_grad=True)
    X = torch.randn(64, 32, generator=g, dtype=torch.float64).cuda()
    idx, _ = select_atoms(D.detach(), b.detach(), X, 8, True)
    loss, _ = pursuit_loss(D, b, X, idx, True)
    grads = torch.autograd.grad(loss, (D, b))
    ref = unrolled_loss(D, b, X, 8, True)
    ref_grads = torch.autograd.grad(ref, (D, b))
    torch.testing.assert_close(loss, ref)
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r)


def test_fit_on_cuda(digits):
    sae = MatchingPursuitSAE(k=4, n_components=64, max_iter=2, device="cuda", random_state=0)
    sae.fit(digits)
    assert isinstance(sae.components_, np.ndarray)
    cpu = MatchingPursuitSAE(**{**sae.get_params(), "device": "cpu"})
    cpu.components_, cpu.bias_ = sae.components_, sae.bias_
    assert sae.score(digits) > 0.5


# --------------------------------------------------------------- the CUDA kernel (CuPy)


def _cupy():
    return pytest.importorskip("cupy", reason="CuPy is not installed: pip install 'skmpsae[gpu]'")


def _random_problem(n, n_features, n_components, dtype, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, n_features)) + 0.3
    return X.astype(dtype), D.astype(dtype)


@pytest.mark.parametrize("n_components", [257, 1000])
@pytest.mark.parametrize("tol", [None, 0.2])
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernel_bit_identical_to_reference(dtype, positive, tol, n_components):
    # Same correlations in, same bits out: selections, coefficients and the
    # correlations left in C.
    cp = _cupy()
    from skmpsae._pursuit import _cupy as engine
    from skmpsae._pursuit._numpy import gram_pursuit

    X, D = _random_problem(300, 48, n_components, dtype, seed=n_components)
    C, G = np.ascontiguousarray(X @ D.T), np.ascontiguousarray(D @ D.T)
    rsq = np.einsum("ij,ij->i", X, X) if tol is not None else np.empty(0, dtype)
    thresh = (tol * rsq).astype(dtype) if tol is not None else np.empty(0, dtype)
    n_steps = 24
    idx = np.empty((300, n_steps), np.int64)
    coef = np.empty((300, n_steps), dtype)
    ref_C = C.copy()
    gram_pursuit(ref_C, G, n_steps, positive, thresh.copy(), rsq.copy(), idx, coef)

    Cd = cp.asarray(C)
    idx_d = cp.empty((300, n_steps), dtype=cp.int64)
    coef_d = cp.empty((300, n_steps), dtype=dtype)
    kernel = engine._kernel(cp, dtype)
    i32 = np.int32
    kernel((300,), (engine._block_size(n_components),),
           (Cd, cp.asarray(G), i32(300), i32(n_components), i32(n_steps), i32(positive),
            i32(tol is not None), cp.asarray(thresh), cp.asarray(rsq), idx_d, coef_d, i32(0)))
    np.testing.assert_array_equal(cp.asnumpy(idx_d), idx)
    np.testing.assert_array_equal(cp.asnumpy(coef_d).view(np.uint8), coef.view(np.uint8))
    np.testing.assert_array_equal(cp.asnumpy(Cd), ref_C)


@pytest.mark.parametrize("tol", [None, 0.1])
@pytest.mark.parametrize("positive", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_backend_exact_on_exact_data(dtype, positive, tol, dyadic_problem):
    # NumPy, CuPy and torch CUDA inputs: codes equal to the reference's, in
    # the input's array type.
    cp = _cupy()
    X, D, _ = dyadic_problem(400, 16, 300, seed=1)
    X, D = X.astype(dtype), D.astype(dtype)
    b = (np.arange(16) % 3 / 2).astype(dtype)
    kw = dict(n_steps=10, bias=b, positive=positive, tol=tol)
    ref = mp_encode(X, D, backend="numpy", **kw)
    got = mp_encode(X, D, backend="cupy", **kw)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, ref)
    on_gpu = mp_encode(cp.asarray(X), D, **kw)
    assert isinstance(on_gpu, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(on_gpu), ref)
    tensor = mp_encode(torch.from_numpy(X).cuda(), torch.from_numpy(D).cuda(), **kw)
    assert isinstance(tensor, torch.Tensor) and tensor.is_cuda
    np.testing.assert_array_equal(tensor.cpu().numpy(), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("positive", [True, False])
def test_cupy_backend_matches_reference(dtype, positive):
    _cupy()
    X, D = _random_problem(500, 40, 300, dtype)
    ref = mp_encode(X, D, n_steps=12, positive=positive, backend="numpy")
    got = mp_encode(X, D, n_steps=12, positive=positive, backend="cupy",
                    memory_budget=1 << 18)  # several chunks
    # cuBLAS rounds the correlations differently from OpenBLAS.
    np.testing.assert_array_equal(got != 0, ref != 0)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_cupy_is_auto_and_built_once_per_device():
    cp = _cupy()
    from skmpsae._pursuit import _cupy as engine
    from skmpsae._pursuit import _plan

    assert engine.is_available()
    assert _plan.choose_backend("auto") == "cupy"
    X, D = _random_problem(10, 8, 20, np.float32)
    mp_encode(X, D, n_steps=3)
    module = engine._MODULES[cp.cuda.Device().id]
    mp_encode(X.astype(np.float64), D, n_steps=3)
    assert engine._MODULES[cp.cuda.Device().id] is module


def test_estimator_on_cuda_uses_cupy_and_matches_cpu(digits, monkeypatch):
    _cupy()
    from skmpsae._pursuit import _cupy as engine

    calls = []
    encode_cupy = engine.encode_cupy

    def counted(*args, **kwargs):
        calls.append(1)
        return encode_cupy(*args, **kwargs)

    monkeypatch.setattr(engine, "encode_cupy", counted)
    X = digits.astype(np.float64)
    cpu = MatchingPursuitSAE(n_components=128, k=6, max_iter=2, device="cpu",
                             random_state=0).fit(X)
    gpu = copy.deepcopy(cpu).set_params(device="cuda")
    ref = cpu.transform(X, n_steps=10)
    got = gpu.transform(X, n_steps=10)
    assert calls == [1] and type(got) is np.ndarray
    # The dictionary and its Gram matrix were uploaded once and are reused.
    cached = gpu._cast(X.dtype)["gpu"]
    np.testing.assert_array_equal(gpu.transform(X, n_steps=10), got)
    assert gpu._cast(X.dtype)["gpu"] is cached
    np.testing.assert_array_equal(got != 0, ref != 0)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
