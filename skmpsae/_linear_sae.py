"""Shared base of the SAEs with a linear encoder: ReLU, TopK, BatchTopK, Matryoshka.

``pre = (x - bias_) @ encoder_.T + encoder_bias_``; a variant says which
entries of ``pre`` are active (its one hook, ``_select``, written once in
torch and used by training and inference alike) and the codes are
``ReLU(pre)`` there, zero elsewhere. The decoder ``components_`` keeps
unit-norm rows (projected after each step) and starts as the encoder's
transpose (Gao et al. 2024). ``transform(X, n_steps=m)`` keeps the ``m``
largest activations of every sample, whatever the variant, so that all SAEs
can be compared away from their trained sparsity.

Training computes ``pre`` once, without gradient, and differentiates only
through the selected entries (see ``_sparse_codes``). The AuxK loss (Gao et
al. 2024) is the base's too, for the variants that track dead latents.
"""

from numbers import Integral, Real

import numpy as np

from ._base import BaseSAE
from ._compat import Interval, StrOptions
from ._threads import PARALLEL_LINEAR_STEP_FROM

__all__ = ["LinearSAE"]

#: Bytes of alignment of the arrays handed to torch's products (``_pre_array``).
_ALIGNMENT = 16

#: Share of the dead latents selected by AuxK from which its products are
#: dense over the dead latents' columns rather than sparse. A dense element
#: costs about a twelfth of a sparse entry (measured on 1024-row batches,
#: forward and backward on two threads, aux_k = n_features / 2: 784 features,
#: 6144 latents, sparse 107-113 ms, dense 64 / 85 / 111 / 130 ms at 3000 /
#: 4000 / 5000 / 6000 dead; 384 features, 3072 latents, sparse 22-28 ms,
#: dense 17 / 20 / 26 / 36 ms at 1000 / 1600 / 2200 / 3000 dead).
AUX_DENSE_FROM = 1 / 11


def _torch():
    import torch

    return torch


class LinearSAE(BaseSAE):
    """Base of the linear-encoder SAEs. Not for direct use.

    The AuxK loss, for variants that list ``"samples_since_fired"`` among their
    buffers: latents that have not fired for ``dead_after`` samples are dead;
    the ``aux_k`` largest pre-activations among them reconstruct the residual
    ``x - x_hat`` (no gradient to the main path), scaled by its least-squares
    factor (at most 1, no gradient), and ``aux_coef`` times the mean squared
    error of that reconstruction is added to the loss.
    """

    _parameter_constraints: dict = {
        **BaseSAE._parameter_constraints,
        "init": [StrOptions({"data", "random"})],
    }
    #: Constraints of the AuxK parameters, for the variants that have them.
    _auxk_constraints: dict = {
        "aux_k": [Interval(Integral, 1, None, closed="left"), None],
        "aux_coef": [Interval(Real, 0, None, closed="left")],
        "dead_after": [Interval(Integral, 1, None, closed="left")],
    }
    _array_names = ("components", "bias", "encoder", "encoder_bias")
    #: Batch multiply-adds from which the whole training step runs on torch's
    #: threads (see ``_threads.PARALLEL_LINEAR_STEP_FROM``).
    _parallel_step_from = PARALLEL_LINEAR_STEP_FROM

    # ------------------------------------------------------------------ hooks
    def _select(self, pre, params, *, training):  # pragma: no cover - abstract
        """Active entries ``(rows, cols)`` of ``pre`` (torch, no gradient), rows ascending.

        ``training`` is False at inference; the codes are ``ReLU(pre)`` there.
        """
        raise NotImplementedError

    def _penalty(self, params, codes):
        """Loss terms on the codes beyond reconstruction (0 by default)."""
        return 0.0

    def _init_buffers(self, n_components):
        """Initial buffers (non-trained state), by name."""
        return {}

    # ---------------------------------------------------------------- codes
    @staticmethod
    def _pre(params, xb):
        """``(xb - bias) @ encoder.T + encoder_bias`` (torch), in one product (``_products``)."""
        from ._products import linear

        return linear(xb - params["bias"], params["encoder"], params["encoder_bias"])

    def _selection(self, pre, params, *, training):
        from ._sparse_codes import SparseCodes

        rows, cols = self._select(pre, params, training=training)
        return SparseCodes.select(rows, cols, *pre.shape)

    def _activate(self, pre, params, *, training=True):
        """Dense codes of ``pre`` (torch, no gradient): ReLU at the selected entries."""
        codes = self._selection(pre, params, training=training)
        return codes._replace(values=pre[codes.rows, codes.cols].clamp_min(0)).to_dense()

    @staticmethod
    def _top_k(pre, k):
        """Entries of the ``k`` largest pre-activations of each row."""
        from ._top_k import row_top_k

        torch = _torch()
        k = min(k, pre.shape[1])
        idx = row_top_k(pre, k)
        rows = torch.arange(pre.shape[0], device=pre.device).repeat_interleave(k)
        return rows, idx.reshape(-1)

    # ------------------------------------------------------------- training
    def _init_arrays(self, X, n_components, rng):
        from ._training._initial_values import initial_bias, initial_dictionary

        bias = initial_bias(X, self.bias_init, rng)
        D = initial_dictionary(X, bias, n_components, self.init, rng)
        arrays = {"components": D, "bias": bias, "encoder": D.copy(),
                  "encoder_bias": np.zeros(n_components), **self._init_buffers(n_components)}
        arrays["encoder"] *= self._encoder_scale(X, arrays, rng)
        return arrays

    def _encoder_scale(self, X, arrays, rng):
        # With the encoder equal to the decoder's transpose, every latent that
        # overlaps a sample fires with its full projection and the sum overshoots
        # (ReLU: all of them). Codes scale linearly with the encoder, so take the
        # least-squares scale of the first reconstruction on a data sample.
        # In the dtype of the data, which training uses (float64 costs twice as
        # much for a scalar that float32 gives to 6 digits).
        torch = _torch()
        rows = rng.choice(X.shape[0], min(X.shape[0], 2048), replace=False)
        dtype = np.float32 if np.asarray(X[:0]).dtype == np.float32 else np.float64
        sample = torch.from_numpy(np.asarray(X[np.sort(rows)], dtype=dtype))
        params = {name: torch.from_numpy(np.asarray(v, dtype=dtype))
                  for name, v in arrays.items()}
        with torch.no_grad():
            pre = self._pre(params, sample)
            codes = self._selection(pre, params, training=True)
            codes = codes._replace(values=pre[codes.rows, codes.cols].clamp_min(0))
            target = sample - params["bias"]
            fit = codes.decode(params["components"])
            denom = float((fit * fit).sum())
        scale = float((target * fit).sum()) / denom if denom > 0 else 1.0
        return scale if np.isfinite(scale) and scale > 0 else 1.0

    def _codes(self, params, xc, pre, codes):
        """``codes`` with the selected pre-activations, differentiable, as values."""
        from ._sparse_codes import dense_pre, gather_pre

        W, b_enc = params["encoder"], params["encoder_bias"]
        if codes.dense:
            values = dense_pre(pre, xc, W, b_enc, codes.rows, codes.cols)
        else:
            values = gather_pre(pre, xc, W, b_enc, codes.rows, codes.cols, codes.row_offsets(),
                                codes.order)
        return codes._replace(values=values.clamp_min(0))

    def _reconstruction_loss(self, params, xb, codes):
        x_hat = codes.decode(params["components"]) + params["bias"]
        return ((xb - x_hat) ** 2).sum(dim=1).mean(), x_hat

    def _batch_loss(self, params, xb, *, epoch, rng):
        from ._products import linear, onednn_active
        from ._threads import product_threads
        from ._workspace import workspace

        torch = _torch()
        xc = xb - params["bias"]
        W = params["encoder"]
        with torch.no_grad(), product_threads(xb.shape[0] * W.shape[0] * W.shape[1]):
            # One pass over the (batch, n_components) output: the product and the
            # selection. Into a buffer reused from step to step (see ``_workspace``);
            # nothing keeps ``pre`` beyond the step.
            out = None if onednn_active(W.dtype, W.device) else \
                workspace(W).get("pre", (xb.shape[0], W.shape[0]), xc)
            pre = linear(xc, W, params["encoder_bias"], out=out)
            selection = self._selection(pre, params, training=True)
        codes = self._codes(params, xc, pre, selection)
        loss, x_hat = self._reconstruction_loss(params, xb, codes)
        fired = codes.fired()
        if "samples_since_fired" in params:
            loss = loss + self._auxk_loss(params, xb, pre, fired, x_hat)
        return loss + self._penalty(params, codes), fired

    def _auxk_loss(self, params, xb, pre, fired, x_hat):
        from ._sparse_codes import SparseCodes
        from ._top_k import row_top_k

        torch = _torch()
        since = params["samples_since_fired"]
        with torch.no_grad():
            since += xb.shape[0]
            since[fired > 0] = 0
        dead = torch.nonzero(since > self.dead_after).flatten()
        if self.aux_coef == 0 or dead.numel() == 0:
            return 0.0
        aux_k = min(self.aux_k or max(1, xb.shape[1] // 2), dead.numel())
        # Only the dead latents learn from this loss: the shared decoder bias
        # enters their pre-activations without gradient.
        xc = (xb - params["bias"]).detach()
        residual = (xb - x_hat).detach()
        if aux_k >= AUX_DENSE_FROM * dead.numel():
            from ._auxk import dense_auxk_loss
            from ._threads import product_threads

            with product_threads(xb.shape[0] * dead.numel() * xb.shape[1]):
                return dense_auxk_loss(params["encoder"], params["encoder_bias"],
                                       params["components"], pre, xc, residual, dead, aux_k,
                                       self.aux_coef)
        with torch.no_grad():
            local = row_top_k(pre.index_select(1, dead), aux_k)
        rows = torch.arange(xb.shape[0], device=xb.device).repeat_interleave(aux_k)
        codes = SparseCodes.select(rows, dead[local.reshape(-1)], *pre.shape, dense=False)
        codes = self._codes(params, xc, pre, codes)
        e_hat = codes.decode(params["components"])
        # Dead latents' activations come from x, and x is much larger than the
        # residual: fitted as they are, the loss mostly shrinks them (measured:
        # more dead latents with AuxK than without). Scaling the auxiliary
        # reconstruction by its least-squares factor, without gradient, makes
        # them learn residual directions instead (also in ``dense_auxk_loss``).
        scale = ((residual * e_hat).sum() / (e_hat * e_hat).sum().clamp_min(1e-12)).detach()
        error = residual - e_hat * scale.clamp(0, 1)
        # In the units of the reconstruction loss, so aux_coef does not depend
        # on the scale of the data.
        return self.aux_coef * (error ** 2).sum(dim=1).mean()

    def _after_step(self, params):
        D = params["components"]
        D.div_(D.norm(dim=1, keepdim=True).clamp_min(1e-12))

    # ------------------------------------------------------------ inference
    def _check_n_steps(self, n_steps):
        # None keeps the variant's own rule (ReLU, threshold, or top-k).
        if n_steps is None:
            return None
        n_steps = super()._check_n_steps(n_steps)
        if n_steps > self.n_components_:
            raise ValueError(
                f"n_steps={n_steps} exceeds n_components_={self.n_components_}; "
                f"choose n_steps <= {self.n_components_}."
            )
        return n_steps

    @staticmethod
    def _pre_array(arrays, X):
        """``(X - bias) @ encoder.T + encoder_bias`` (NumPy in and out) by torch's product.

        The training step's product (``_pre``: oneDNN's for float32 on x86-64,
        else MKL's ``addmm``), on torch's threads rather than OpenBLAS's: right
        after training, whose torch threads still spin, OpenBLAS's woken
        workers made the end-of-fit metrics' product 2.5x slower (4096 x 384 x
        3072: 85 ms against 34 ms in a MiniLM-sized TopK fit of 0.48 s). Torch's
        products may round differently from NumPy's: codes agree to float
        rounding, not bit for bit. MKL also rounds by the operands' alignment (an
        encoder 8 bytes off a 16-byte boundary, as a safetensors file's arrays
        lie, changed 3 codes of digits by an ulp): read-only or unaligned arrays
        are copied, so that a loaded model gives the fitted one's codes.
        """
        from ._threads import torch_threads

        torch = _torch()

        def tensor(a):  # read-only arrays (a memory map, a user's flags) are copied too
            if not a.flags.writeable or a.ctypes.data % _ALIGNMENT:
                a = a.copy()
            return torch.from_numpy(a)

        params = {name: tensor(arrays[name]) for name in ("bias", "encoder", "encoder_bias")}
        W = arrays["encoder"]
        with torch_threads(X.shape[0] * W.shape[0] * W.shape[1]):
            return LinearSAE._pre(params, tensor(np.asarray(X))).numpy()

    def _entries(self, X, n_steps):
        """Active entries of the codes of ``X``: ``(shape, rows, cols, values)``, rows ascending."""
        torch = _torch()
        arrays = self._cast(X.dtype)
        pre = self._pre_array(arrays, X)
        if n_steps == 0:
            empty = np.zeros(0, dtype=np.int64)
            return pre.shape, empty, empty, np.zeros(0, dtype=pre.dtype)
        pre_t = torch.from_numpy(pre)
        if n_steps is None:
            params = {name: torch.as_tensor(arrays[name].copy()) for name in self._buffer_names}
            rows, cols = self._select(pre_t, params, training=False)
        else:
            rows, cols = self._top_k(pre_t, n_steps)
        rows, cols = rows.numpy(), cols.numpy()
        return pre.shape, rows, cols, np.maximum(pre[rows, cols], 0)

    def _encode(self, X, n_steps):
        shape, rows, cols, values = self._entries(X, n_steps)
        Z = np.zeros(shape, dtype=X.dtype)
        Z[rows, cols] = values
        return Z

    def _metric_codes(self, X, n_steps):
        # CSR straight from the selected entries: the end-of-fit metrics never
        # build, scan and multiply the dense (rows, n_components) codes.
        import scipy.sparse as sp

        shape, rows, cols, values = self._entries(X, n_steps)
        keep = values != 0
        rows, cols, values = rows[keep], cols[keep], values[keep]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
        return sp.csr_matrix((values, cols, indptr), shape=shape)
