"""GPU paths (torch on CUDA): run only where an NVIDIA GPU is present."""

import numpy as np
import pytest
import torch

from skmpsae import MatchingPursuitSAE, mp_encode
from skmpsae._training._mp import pursuit_loss, select_atoms, unrolled_loss

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
