"""The reused step buffers of the linear-encoder SAEs' training (``skmpsae._workspace``)."""

import gc

import pytest
import torch

from skmpsae import BatchTopKSAE, MatryoshkaSAE, TopKSAE, _workspace


def test_buffers_are_reused_grown_and_freed_with_their_owner():
    owner = torch.nn.Parameter(torch.zeros(3))
    ws = _workspace.workspace(owner)
    assert _workspace.workspace(owner) is ws
    like = torch.zeros(1)
    a = ws.get("a", (4, 5), like)
    assert a.shape == (4, 5) and a.is_contiguous()
    ptr = a.data_ptr()
    assert ws.get("a", (2, 3), like).data_ptr() == ptr  # smaller: the same memory
    grown = ws.get("a", (5, 5), like)  # larger: a new buffer, at least doubled
    assert grown.shape == (5, 5) and ws.buffers["a"].numel() >= 40
    assert ws.get("a", (2, 2), like.double()).dtype == torch.float64  # dtype follows
    assert ws.get("b", (2, 2), like).data_ptr() != ws.get("a", (2, 2), like).data_ptr()
    key = id(owner)
    del owner
    gc.collect()
    assert key not in _workspace._workspaces


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE, MatryoshkaSAE])
def test_steps_through_reused_buffers_match_fresh_ones(cls):
    # The same batch twice with the same parameters: the second pass, through
    # the buffers the first one left (pre-activations, dense AuxK), gives the
    # same loss and gradients as a fit-free first pass on copies.
    g = torch.Generator().manual_seed(0)
    n_comp, d = 64, 16
    D = torch.randn(n_comp, d, generator=g)
    D /= D.norm(dim=1, keepdim=True)
    since = torch.zeros(n_comp)
    since[::2] = 1e9  # half dead: AuxK's dense products (aux_k=8 >= 32 / 11)
    arrays = {"components": D, "bias": torch.zeros(d), "encoder": 0.5 * D,
              "encoder_bias": torch.zeros(n_comp), "samples_since_fired": since,
              "threshold": torch.zeros(1)}
    kw = {"group_sizes": [16, 48]} if cls is MatryoshkaSAE else {}
    est = cls(k=4, aux_k=8, dead_after=100, **kw)
    xb = torch.randn(32, d, generator=g)

    def run(params):
        for p in params.values():
            p.grad = None
        params["samples_since_fired"].copy_(since)
        loss, _ = est._batch_loss(params, xb, epoch=0, rng=None)
        loss.backward()
        return loss.detach(), {n: p.grad.to_dense().clone() for n, p in params.items()
                               if p.grad is not None}

    def fresh():
        return {n: (v.clone() if n in ("samples_since_fired", "threshold")
                    else torch.nn.Parameter(v.clone())) for n, v in arrays.items()}

    params = fresh()
    first = run(params)
    second = run(params)  # same parameter tensors: their workspaces now hold data
    ref = run(fresh())
    for a, b in ((first, second), (first, ref)):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
        assert a[1].keys() == b[1].keys() and "encoder" in a[1]
        for name in a[1]:
            torch.testing.assert_close(a[1][name], b[1][name], rtol=0, atol=0)
