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

import numba as nb
import numpy as np
import torch

from ._products import linear
from ._threads import kernel_threads
from ._top_k import row_top_k
from ._workspace import workspace

__all__ = ["dense_auxk_loss"]

#: Share of the dead latents selected per row below which, on the CPU, the
#: products run as numba kernels over the selected entries only rather than as
#: dense products over the dead latents' columns. The kernels' cost grows with
#: the entries, the dense products' does not (measured at 13%, 1024 rows x 784
#: features, 3000 dead, aux_k=392, two threads: the decode 10.7 ms against 23.4
#: ms dense, the selected entries of G @ D.T 11.9 ms against 23.4 ms).
KERNELS_BELOW = 0.3


@nb.njit(parallel=True, fastmath=True, cache=True)
def _decode(idx, values, D, out):
    # out[r] = sum_t values[r, t] * D[idx[r, t]], one row per task.
    for r in nb.prange(idx.shape[0]):
        acc = np.zeros(D.shape[1], dtype=out.dtype)
        for t in range(idx.shape[1]):
            v = values[r, t]
            row = D[idx[r, t]]
            for c in range(D.shape[1]):
                acc[c] += v * row[c]
        out[r] = acc


@nb.njit(parallel=True, fastmath=True, cache=True)
def _dots(idx, G, D, out):
    # out[r, t] = G[r] . D[idx[r, t]]: the entries of G @ D.T that the selection keeps.
    for r in nb.prange(idx.shape[0]):
        g = G[r]
        for t in range(idx.shape[1]):
            row = D[idx[r, t]]
            acc = g[0] - g[0]
            for c in range(D.shape[1]):
                acc += g[c] * row[c]
            out[r, t] = acc


@nb.njit(cache=True)
def _by_column(idx, n_cols):
    # The (row, slot) entries grouped by column, rows ascending within each (a
    # counting sort): starts (n_cols + 1,) and the flat entry numbers.
    counts = np.zeros(n_cols + 1, dtype=np.int64)
    flat = idx.ravel()
    for e in range(flat.shape[0]):
        counts[flat[e] + 1] += 1
    for j in range(n_cols):
        counts[j + 1] += counts[j]
    fill = counts[:-1].copy()
    order = np.empty(flat.shape[0], dtype=np.int64)
    for e in range(flat.shape[0]):
        j = flat[e]
        order[fill[j]] = e
        fill[j] += 1
    return counts, order


#: Rows of ``A`` and ``B`` per pass of ``_transposed``: the blocks stay near a
#: core (L2, or L3) while every column takes its entries from them (measured on
#: 1024 x 784 rows, 3000 dead latents, aux_k=392: 31 ms with 256 rows, 32 ms with
#: 64, 54 ms in one pass).
_ROW_BLOCK = 256


@nb.njit(parallel=True, fastmath=True, cache=True)
def _transposed(idx, a, A, b, B, starts, order, out_a, out_b, out_sum):
    # Per column j: out_a[j] = sum a[r, t] A[r], out_b[j] = sum b[r, t] B[r] and
    # out_sum[j] = sum a[r, t] over the entries (r, t) with idx[r, t] == j, in
    # passes over blocks of rows (each column's entries come in row order), so
    # that the rows read stay in cache instead of streaming once per column.
    k = idx.shape[1]
    n_cols = starts.shape[0] - 1
    a_flat, b_flat = a.ravel(), b.ravel()
    next_entry = starts[:-1].copy()
    out_a[:] = 0
    out_b[:] = 0
    out_sum[:] = 0
    for block_end in range(_ROW_BLOCK, idx.shape[0] + _ROW_BLOCK, _ROW_BLOCK):
        for j in nb.prange(n_cols):
            e = next_entry[j]
            acc_a, acc_b = out_a[j], out_b[j]
            while e < starts[j + 1] and order[e] // k < block_end:
                entry = order[e]
                va, vb = a_flat[entry], b_flat[entry]
                row_a, row_b = A[entry // k], B[entry // k]
                out_sum[j] += va
                for c in range(row_a.shape[0]):
                    acc_a[c] += va * row_a[c]
                for c in range(row_b.shape[0]):
                    acc_b[c] += vb * row_b[c]
                e += 1
            next_entry[j] = e


class _DenseAuxK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, b_enc, D, pre, xc, residual, dead, aux_k, coef, kernels):
        ws = workspace(D)
        n_rows, n_dead = pre.shape[0], dead.numel()
        # index_select: 4x faster than pre[:, dead] (1024 x 6144, 3000 dead)
        P = torch.index_select(pre, 1, dead, out=ws.get("P", (n_rows, n_dead), pre))
        local = row_top_k(P, aux_k)
        picked = P.gather(1, local)
        D_dead = torch.index_select(D, 0, dead, out=ws.get("D", (n_dead, D.shape[1]), D))
        e_hat = ws.get("e", residual.shape, residual)
        if kernels:
            values = picked.clamp_min(0)
            with kernel_threads(local.numel() * D.shape[1]):  # small ones on this thread
                _decode(local.numpy(), values.numpy(), D_dead.numpy(), e_hat.numpy())
        else:
            Z = ws.get("Z", (n_rows, n_dead), P).zero_().scatter_(1, local, picked.clamp_min(0))
            e_hat = linear(Z, D_dead.T, out=e_hat)
        # The least-squares factor of the auxiliary reconstruction, no gradient.
        scale = ((residual * e_hat).sum() / (e_hat * e_hat).sum().clamp_min(1e-12)).clamp(0, 1)
        error = torch.sub(residual, e_hat.mul_(scale), out=e_hat)
        loss = coef * (error * error).sum() / n_rows
        # d loss / d e_hat, then through the decode and the clamped selection
        # (clamp_min passes the gradient where the value is >= 0, as autograd's).
        G = error.mul_(-2 * coef / n_rows * scale)
        needs = ctx.needs_input_grad
        if kernels:
            grads = _kernel_grads(W, b_enc, D, xc, G, local, picked, values, D_dead, needs)
        else:
            mask = P.zero_().scatter_(1, local, (picked >= 0).to(P.dtype))  # P is spent
            grad_Z = linear(G, D_dead, out=ws.get("grad_Z", (n_rows, n_dead), P))
            grad_Z.mul_(mask)
            grads = []
            for param, need, rows in ((W, needs[0], lambda: linear(grad_Z.T, xc.T)),
                                      (b_enc, needs[1], lambda: grad_Z.sum(0)),
                                      (D, needs[2], lambda: linear(Z.T, G.T))):
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
        return *grads, *(None,) * 7


def _kernel_grads(W, b_enc, D, xc, G, local, picked, values, D_dead, needs):
    """The dead rows' gradients from the selected entries only (numba kernels)."""
    n_dead = D_dead.shape[0]
    # d loss / d (selected pre-activations): G . D_dead[j], where the value is >= 0.
    grad_sel = torch.empty_like(picked)
    with kernel_threads(local.numel() * D.shape[1]):
        _dots(local.numpy(), G.numpy(), D_dead.numpy(), grad_sel.numpy())
    grad_sel.mul_(picked >= 0)
    grad_W, grad_D = torch.empty_like(D_dead), torch.empty_like(D_dead)
    grad_b = torch.empty(n_dead, dtype=D_dead.dtype)
    starts, order = _by_column(local.numpy(), n_dead)
    with kernel_threads(2 * local.numel() * D.shape[1]):
        _transposed(local.numpy(), grad_sel.numpy(), xc.numpy(), values.numpy(), G.numpy(),
                    starts, order, grad_W.numpy(), grad_D.numpy(), grad_b.numpy())
    return [(W.shape, grad_W) if needs[0] else None,
            (b_enc.shape, grad_b) if needs[1] else None,
            (D.shape, grad_D) if needs[2] else None]


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
    kernels = all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
                  and t.dtype == D.dtype for t in (W, D, pre, xc, residual)) and \
        aux_k < KERNELS_BELOW * dead.numel()
    return _DenseAuxK.apply(W, b_enc, D, pre.detach(), xc.contiguous(), residual, dead, aux_k,
                            coef, kernels)
