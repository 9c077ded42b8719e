"""The AuxK loss over dense products on the dead latents' columns, gradients computed at once.

Where the ``aux_k`` latents each sample selects are a large share of the dead
latents, (batch, n_dead) products beat sparse gathers. The loss's inputs are
leaves (encoder, encoder bias, decoder) or detached (centred inputs,
residual), so its gradients need nothing from the rest of the graph: they are
computed in the forward pass, by four products of the size
(batch, n_dead, n_features), and the backward only scales them. Against
autograd through ``W[dead]`` and ``D[dead]`` this saves the pre-activations'
product (taken from the main product's ``pre``), the encoder rows' gather and
the scatters of the index backward (measured on 1024 rows x 784 features,
3000 of 6144 latents dead, aux_k=392, one thread: 275-286 ms against 315-324 ms
forward and backward).
"""

import torch

from ._top_k import row_top_k
from ._workspace import workspace

__all__ = ["dense_auxk_loss"]


class _DenseAuxK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, b_enc, D, pre, xc, residual, dead, aux_k, coef):
        ws = workspace(D)
        n_rows, n_dead = pre.shape[0], dead.numel()
        # index_select: 4x faster than pre[:, dead] (1024 x 6144, 3000 dead)
        P = torch.index_select(pre, 1, dead, out=ws.get("P", (n_rows, n_dead), pre))
        local = row_top_k(P, aux_k)
        picked = P.gather(1, local)
        Z = ws.get("Z", (n_rows, n_dead), P).zero_().scatter_(1, local, picked.clamp_min(0))
        D_dead = torch.index_select(D, 0, dead, out=ws.get("D", (n_dead, D.shape[1]), D))
        e_hat = torch.mm(Z, D_dead, out=ws.get("e", residual.shape, residual))
        # The least-squares factor of the auxiliary reconstruction, no gradient.
        scale = ((residual * e_hat).sum() / (e_hat * e_hat).sum().clamp_min(1e-12)).clamp(0, 1)
        error = torch.sub(residual, e_hat.mul_(scale), out=e_hat)
        loss = coef * (error * error).sum() / n_rows
        # d loss / d e_hat, then through the decode and the clamped selection
        # (clamp_min passes the gradient where the value is >= 0, as autograd's).
        G = error.mul_(-2 * coef / n_rows * scale)
        mask = P.zero_().scatter_(1, local, (picked >= 0).to(P.dtype))  # P is spent
        grad_Z = torch.mm(G, D_dead.T, out=ws.get("grad_Z", (n_rows, n_dead), P)).mul_(mask)
        needs = ctx.needs_input_grad
        grads = []
        for param, need, rows in ((W, needs[0], lambda: grad_Z.T @ xc),
                                  (b_enc, needs[1], lambda: grad_Z.sum(0)),
                                  (D, needs[2], lambda: Z.T @ G)):
            grads.append((param.shape, rows()) if need else None)
        ctx.grads, ctx.dead = grads, dead
        return loss

    @staticmethod
    def backward(ctx, grad):
        # On the CPU the dead rows' gradients go back as a sparse (row-indexed)
        # tensor, which autograd adds into the main path's dense gradient row
        # by row; a dense full-size one costs a zero fill, a copy and a full
        # addition (measured on 1024 rows, 6144 x 784, 3000 dead, one thread:
        # 160-162 ms against 166-170 ms forward and backward).
        # The total loss's backward passes 1 (the usual case): no pass over the rows.
        grad = None if grad.device.type == "cpu" and bool(grad == 1) else grad
        grads = [None if g is None else _on_rows(ctx.dead, *g, grad) for g in ctx.grads]
        del ctx.grads, ctx.dead
        return *grads, *(None,) * 6


def _on_rows(rows, shape, values, grad):
    if grad is not None:
        values = values.mul_(grad)  # ctx's own
    if values.device.type != "cpu":
        return torch.zeros(shape, dtype=values.dtype, device=values.device).index_copy_(
            0, rows, values)
    return torch.sparse_coo_tensor(rows[None], values, shape, is_coalesced=True,
                                   check_invariants=False)


def dense_auxk_loss(W, b_enc, D, pre, xc, residual, dead, aux_k, coef):
    """``coef`` times the mean squared error of the AuxK reconstruction of ``residual``.

    Parameters
    ----------
    W, b_enc, D : torch.Tensor
        Encoder (n_cols, n_features), encoder bias (n_cols,) and decoder
        (n_cols, n_features): they receive the gradients, on the dead rows.
    pre : torch.Tensor of shape (n_rows, n_cols)
        The pre-activations ``xc @ W.T + b_enc``, without gradient.
    xc, residual : torch.Tensor of shape (n_rows, n_features)
        The centred inputs and the main reconstruction's residual, detached.
    dead : torch.Tensor of shape (n_dead,)
        The dead latents, distinct.
    aux_k : int
        Latents selected per row among the dead (at most ``n_dead``).
    coef : float
        The AuxK weight.

    Returns
    -------
    loss : torch.Tensor of shape ()
    """
    return _DenseAuxK.apply(W, b_enc, D, pre.detach(), xc, residual, dead, aux_k, coef)
