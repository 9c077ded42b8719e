"""Sparse codes of the linear-encoder SAEs, with a differentiable gather and decode.

A batch's codes are ``values`` at ``(rows, cols)`` of a (n_rows, n_cols)
matrix, rows ascending. Training a TopK SAE densely costs five products of
the size of the encoder (the pre-activations, the decode, and their
backward), most of them on a matrix of zeros; here only the forward product
is dense. The selected pre-activations get their gradient from
``gather_pre`` (the encoder's backward restricted to the selected entries)
and the decode is an embedding bag (``x_hat = sum_j values_j D[cols_j]``),
whose backward is sparse too: O(nnz * n_features) instead of
O(n_rows * n_cols * n_features). Where most entries are active (a ReLU SAE
early in training) the dense products are faster, and ``SparseCodes`` falls
back to them.

Both weight gradients (the encoder's and the decoder's) sum over the entries
of each latent: the entries are sorted by latent once per batch
(``column_order``, a radix sort on the CPU) and both gradients are embedding
bags over that order, forward-only kernels, instead of the bag's own
backward, which sorts its indices again on every call.
"""

from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional

from ._products import linear

__all__ = ["SparseCodes", "column_order", "decode_csr", "dense_decode", "dense_pre", "gather_pre",
           "sparse_decode"]

#: Above this share of active entries the dense products win (measured on a
#: 1024 x 3072 x 384 batch: the embedding bags cost about as much as the dense
#: backward at a density of 1/10).
DENSE_ABOVE = 1 / 16


def _offsets(sorted_keys, n):
    """Start of each key's run in ``sorted_keys`` (an embedding bag's offsets)."""
    counts = torch.bincount(sorted_keys, minlength=n)
    return torch.cumsum(counts, 0) - counts


def column_order(cols, n_cols):
    """Entries sorted by column: ``(perm, col_offsets)``, stable.

    ``cols[perm]`` is ascending with ties in entry order, and ``col_offsets``
    says where each column's run starts. On the CPU, with fewer than 2**16
    columns, NumPy's stable sort of 16-bit keys is a radix sort (measured on
    16384 entries: 0.07 ms against 0.8 ms for torch's sort).
    """
    if cols.device.type == "cpu" and n_cols <= 1 << 16:
        keys = cols.numpy().astype(np.uint16)
        perm = torch.from_numpy(np.argsort(keys, kind="stable"))
    else:
        perm = torch.argsort(cols, stable=True)
    return perm, _offsets(cols, n_cols)


def _by_column(rows, cols, n_cols, order):
    return column_order(cols, n_cols) if order is None else order


class _GatherPre(torch.autograd.Function):
    """``pre[rows, cols]`` for ``pre = xc @ W.T + b_enc``, with a sparse backward."""

    @staticmethod
    def forward(ctx, pre, xc, W, b_enc, rows, cols, row_offsets, order):
        perm, col_offsets = (None, None) if order is None else order
        ctx.save_for_backward(xc, W, rows, cols, row_offsets, perm, col_offsets)
        ctx.n_cols = W.shape[0]
        return pre[rows, cols]

    @staticmethod
    def backward(ctx, grad):
        xc, W, rows, cols, row_offsets, perm, col_offsets = ctx.saved_tensors
        grad_xc = grad_W = grad_b = None
        if ctx.needs_input_grad[1]:  # grad @ W over the selected entries, row by row
            grad_xc = functional.embedding_bag(cols, W, row_offsets, mode="sum",
                                               per_sample_weights=grad)
        if ctx.needs_input_grad[2]:  # grad.T @ xc, latent by latent
            perm, col_offsets = _by_column(rows, cols, ctx.n_cols, (
                None if perm is None else (perm, col_offsets)))
            grad_W = functional.embedding_bag(rows[perm], xc, col_offsets, mode="sum",
                                              per_sample_weights=grad[perm])
        if ctx.needs_input_grad[3]:
            grad_b = torch.zeros(ctx.n_cols, dtype=grad.dtype, device=grad.device)
            grad_b.index_add_(0, cols, grad)
        return None, grad_xc, grad_W, grad_b, None, None, None, None


def gather_pre(pre, xc, W, b_enc, rows, cols, row_offsets, order=None):
    """Differentiable ``(xc @ W.T + b_enc)[rows, cols]`` from the computed ``pre``.

    Parameters
    ----------
    pre : torch.Tensor of shape (n_rows, n_cols)
        The pre-activations, computed without gradient from the same tensors.
    xc, W, b_enc : torch.Tensor
        Centred inputs (n_rows, n_features), encoder (n_cols, n_features) and
        encoder bias (n_cols,); they receive the gradients.
    rows, cols, row_offsets : torch.Tensor
        Selected entries (rows ascending) and where each row's entries start.
    order : tuple of torch.Tensor, optional
        ``column_order(cols, n_cols)``, when already computed.

    Returns
    -------
    values : torch.Tensor of shape (nnz,)
    """
    return _GatherPre.apply(pre, xc, W, b_enc, rows, cols, row_offsets, order)


class _Decode(torch.autograd.Function):
    """``x_hat[r] = sum_j values_j D[cols_j]`` over the entries of row ``r``, sparse backward."""

    @staticmethod
    def forward(ctx, values, D, rows, cols, row_offsets, perm, col_offsets):
        ctx.save_for_backward(values, D, rows, cols, row_offsets, perm, col_offsets)
        return functional.embedding_bag(cols, D, row_offsets, mode="sum",
                                        per_sample_weights=values)

    @staticmethod
    def backward(ctx, grad):
        values, D, rows, cols, row_offsets, perm, col_offsets = ctx.saved_tensors
        grad_values = grad_D = None
        if ctx.needs_input_grad[0]:  # <D[cols_j], grad[rows_j]>, without the (nnz, d) gathers
            grad_values = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                grad, D, cols, row_offsets, rows, 0)  # 0: mode "sum"
        if ctx.needs_input_grad[1]:  # latent by latent: sum_j values_j grad[rows_j]
            grad_D = functional.embedding_bag(rows[perm], grad, col_offsets, mode="sum",
                                              per_sample_weights=values[perm])
        return grad_values, grad_D, None, None, None, None, None


def sparse_decode(values, D, rows, cols, row_offsets, order=None):
    """Differentiable ``Z @ D`` for the codes ``values`` at ``(rows, cols)``, rows ascending.

    Parameters
    ----------
    values : torch.Tensor of shape (nnz,)
    D : torch.Tensor of shape (n_cols, n_features)
    rows, cols, row_offsets : torch.Tensor
        Entries (rows ascending) and where each row's entries start.
    order : tuple of torch.Tensor, optional
        ``column_order(cols, D.shape[0])``, when already computed.

    Returns
    -------
    x_hat : torch.Tensor of shape (n_rows, n_features)
    """
    perm, col_offsets = _by_column(rows, cols, D.shape[0], order)
    return _Decode.apply(values, D, rows, cols, row_offsets, perm, col_offsets)


def _entries(values, rows, cols, shape):
    """The (n_rows, n_cols) matrix with ``values`` at the (distinct) entries, zero elsewhere."""
    return values.new_zeros(shape).index_put_((rows, cols), values)


class _DensePre(torch.autograd.Function):
    """``pre[rows, cols]`` for ``pre = xc @ W.T + b_enc``, with dense products in the backward."""

    @staticmethod
    def forward(ctx, pre, xc, W, b_enc, rows, cols):
        ctx.save_for_backward(xc, W, rows, cols)
        ctx.shape = pre.shape
        return pre[rows, cols]

    @staticmethod
    def backward(ctx, grad):
        xc, W, rows, cols = ctx.saved_tensors
        g = _entries(grad, rows, cols, ctx.shape)
        needs = ctx.needs_input_grad
        grad_xc = linear(g, W.T) if needs[1] else None  # g @ W
        grad_W = linear(g.T, xc.T) if needs[2] else None  # g.T @ xc
        grad_b = g.sum(0) if needs[3] else None
        return None, grad_xc, grad_W, grad_b, None, None


def dense_pre(pre, xc, W, b_enc, rows, cols):
    """``gather_pre`` for codes whose entries are a large share of the matrix (dense backward).

    The same value as ``(xc @ W.T + b_enc)[rows, cols]`` under autograd, without
    computing the product again: its backward's two products go through
    ``_products.linear`` (oneDNN's in float32 on the CPU).
    """
    return _DensePre.apply(pre, xc, W, b_enc, rows, cols)


class _DenseDecode(torch.autograd.Function):
    """``Z @ D`` for the codes ``values`` at ``(rows, cols)``, Z dense, through ``linear``."""

    @staticmethod
    def forward(ctx, values, D, rows, cols, n_rows):
        Z = _entries(values, rows, cols, (n_rows, D.shape[0]))
        ctx.save_for_backward(Z, D, rows, cols)
        return linear(Z, D.T)

    @staticmethod
    def backward(ctx, grad):
        Z, D, rows, cols = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grad_values = linear(grad, D)[rows, cols] if needs[0] else None  # (grad @ D.T)[entries]
        grad_D = linear(Z.T, grad.T) if needs[1] else None  # Z.T @ grad
        return grad_values, grad_D, None, None, None


def dense_decode(values, D, rows, cols, n_rows):
    """Differentiable ``Z @ D`` through the dense products (``SparseCodes.decode``'s dense path).

    The codes ``values`` at the distinct entries ``(rows, cols)`` of an
    (n_rows, n_cols) matrix ``Z``; D of shape (n_cols, n_features).
    """
    return _DenseDecode.apply(values, D, rows, cols, n_rows)


def decode_csr(Z, D):
    """``Z @ D`` for CSR codes ``Z`` and a dense NumPy ``D``, as an embedding bag.

    The CSR arrays are the bag's offsets, indices and weights, so nothing is
    converted; torch's bag runs on the cores SciPy's product leaves idle
    (measured on 4096 x 6144 codes, 32 a row, 784 features: 10 ms against 22 ms).
    Duplicate entries add up, as in the product.
    """
    n_rows = Z.shape[0]
    if Z.nnz == 0 or D.shape[1] == 0:
        return np.zeros((n_rows, D.shape[1]), dtype=np.result_type(Z.dtype, D.dtype))
    indptr = torch.from_numpy(np.asarray(Z.indptr, dtype=np.int64))
    out = functional.embedding_bag(
        torch.from_numpy(np.asarray(Z.indices, dtype=np.int64)), torch.from_numpy(D),
        indptr, mode="sum", per_sample_weights=torch.from_numpy(np.asarray(Z.data, D.dtype)),
        include_last_offset=True)
    return out.numpy()


class SparseCodes(NamedTuple):
    """Codes ``values`` at ``(rows, cols)`` of an (n_rows, n_cols) matrix; rows ascending.

    ``dense`` says whether the dense products are the faster way to use them.
    """

    rows: torch.Tensor  # (nnz,) int64
    cols: torch.Tensor  # (nnz,) int64
    values: torch.Tensor  # (nnz,)
    n_rows: int
    n_cols: int
    dense: bool
    #: ``column_order(cols, n_cols)`` of sparse codes, shared by the backwards.
    order: tuple | None = None

    @classmethod
    def select(cls, rows, cols, n_rows, n_cols, *, dense=None):
        """Codes without values yet: the selection of a batch.

        ``dense`` None chooses by the share of active entries.
        """
        if dense is None:
            dense = rows.numel() > DENSE_ABOVE * n_rows * n_cols
        order = None if dense else column_order(cols, n_cols)
        return cls(rows, cols, None, n_rows, n_cols, dense, order)

    def row_offsets(self):
        """Where each row's entries start."""
        return _offsets(self.rows, self.n_rows)

    def to_dense(self):
        """The (n_rows, n_cols) code matrix (differentiable in ``values``)."""
        Z = self.values.new_zeros((self.n_rows, self.n_cols))
        return Z.index_put((self.rows, self.cols), self.values)

    def decode(self, D, offsets=None):
        """``Z @ D`` (n_rows, n_features), through the sparse or the dense product."""
        if self.dense:
            return dense_decode(self.values, D, self.rows, self.cols, self.n_rows)
        offsets = self.row_offsets() if offsets is None else offsets
        if not (self.values.requires_grad or D.requires_grad):
            return functional.embedding_bag(self.cols, D, offsets, mode="sum",
                                            per_sample_weights=self.values)
        return sparse_decode(self.values, D, self.rows, self.cols, offsets, self.order)

    def columns(self, start, stop):
        """The codes of latents ``start <= col < stop`` (same matrix shape)."""
        keep = (self.cols >= start) & (self.cols < stop)
        cols = self.cols[keep]
        return self._replace(rows=self.rows[keep], cols=cols, values=self.values[keep],
                             order=None if self.dense else column_order(cols, self.n_cols))

    def fired(self):
        """How many rows each latent is active (nonzero) in, int64 of shape (n_cols,)."""
        active = self.values.detach() != 0
        return torch.bincount(self.cols[active], minlength=self.n_cols)
