"""Shared base of the SAEs with a linear encoder: ReLU, TopK, BatchTopK, Matryoshka.

``pre = (x - bias_) @ encoder_.T + encoder_bias_``; a variant turns ``pre``
into codes (its activation, the encode hook) and adds its own loss terms. The
decoder ``components_`` keeps unit-norm rows (projected after each step) and
starts as the encoder's transpose (Gao et al. 2024). ``transform(X, n_steps=m)``
keeps the ``m`` largest activations of every sample, whatever the variant, so
that all SAEs can be compared away from their trained sparsity.
"""

from numbers import Integral, Real

import numpy as np

from ._base import BaseSAE
from ._compat import Interval, StrOptions

__all__ = ["UntiedSAE", "top_k_codes"]


def top_k_codes(activations, k):
    """Keep the ``k`` largest entries of each row of non-negative ``activations``."""
    n, n_components = activations.shape
    if k >= n_components:
        return activations
    Z = np.zeros_like(activations)
    if k == 0:
        return Z
    idx = np.argpartition(-activations, k - 1, axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    Z[rows, idx] = activations[rows, idx]
    return Z


class UntiedSAE(BaseSAE):
    """Base of the linear-encoder SAEs. Not for direct use."""

    _parameter_constraints: dict = {
        **BaseSAE._parameter_constraints,
        "init": [StrOptions({"data", "random"})],
    }
    _array_names = ("components", "bias", "encoder", "encoder_bias")

    # ------------------------------------------------------------------ hooks
    def _activate(self, pre, params):  # pragma: no cover - abstract
        """Training codes from pre-activations (torch); may update buffers."""
        raise NotImplementedError

    def _activate_numpy(self, pre, arrays):  # pragma: no cover - abstract
        """Inference codes from pre-activations (NumPy) at the trained sparsity."""
        raise NotImplementedError

    def _extra_loss(self, params, xb, pre, z, x_hat):
        """Loss terms beyond the reconstruction error (0 by default)."""
        return 0.0

    def _init_buffers(self, n_components):
        """Initial buffers (non-trained state), by name."""
        return {}

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
        import torch

        rows = rng.choice(X.shape[0], min(X.shape[0], 2048), replace=False)
        sample = torch.from_numpy(np.asarray(X[np.sort(rows)], dtype=np.float64))
        params = {name: torch.from_numpy(np.asarray(v, dtype=np.float64))
                  for name, v in arrays.items()}
        with torch.no_grad():
            z = self._activate(self._pre(params, sample), params)
            target = sample - params["bias"]
            fit = z @ params["components"]
            denom = float((fit * fit).sum())
        scale = float((target * fit).sum()) / denom if denom > 0 else 1.0
        return scale if np.isfinite(scale) and scale > 0 else 1.0

    @staticmethod
    def _pre(params, xb):
        return (xb - params["bias"]) @ params["encoder"].T + params["encoder_bias"]

    def _reconstruction_loss(self, params, xb, z):
        x_hat = z @ params["components"] + params["bias"]
        return ((xb - x_hat) ** 2).sum(dim=1).mean(), x_hat

    def _batch_loss(self, params, xb, *, epoch, rng):
        pre = self._pre(params, xb)
        z = self._activate(pre, params)
        loss, x_hat = self._reconstruction_loss(params, xb, z)
        loss = loss + self._extra_loss(params, xb, pre, z, x_hat)
        return loss, (z.detach() != 0).sum(dim=0)

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

    def _encode(self, X, n_steps):
        from ._threads import blas_threads

        arrays = self._cast(X.dtype)
        W, b_enc = arrays["encoder"], arrays["encoder_bias"]
        with blas_threads(X.shape[0] * W.shape[0] * W.shape[1]):
            pre = (X - arrays["bias"]) @ W.T + b_enc
        if n_steps is None:
            return self._activate_numpy(pre, arrays)
        return top_k_codes(np.maximum(pre, 0), n_steps)


class AuxKMixin:
    """AuxK loss (Gao et al. 2024): dead latents learn to explain the residual.

    Latents that have not fired for ``dead_after`` samples are dead; the
    ``aux_k`` largest pre-activations among them reconstruct the residual
    ``x - x_hat`` (no gradient to the main path), scaled by its least-squares
    factor (at most 1, no gradient), and ``aux_coef`` times the mean squared
    error of that reconstruction is added to the loss. The count of
    samples since each latent last fired is the fitted ``samples_since_fired_``.
    """

    _auxk_constraints = {
        "aux_k": [Interval(Integral, 1, None, closed="left"), None],
        "aux_coef": [Interval(Real, 0, None, closed="left")],
        "dead_after": [Interval(Integral, 1, None, closed="left")],
    }

    def _auxk_buffers(self, n_components):
        return {"samples_since_fired": np.zeros(n_components)}

    def _auxk_loss(self, params, xb, pre, z, x_hat):
        import torch

        since = params["samples_since_fired"]
        with torch.no_grad():
            fired = (z != 0).any(dim=0)
            since += xb.shape[0]
            since[fired] = 0
        dead = since > self.dead_after
        n_dead = int(dead.sum())
        if self.aux_coef == 0 or n_dead == 0:
            return 0.0
        aux_k = min(self.aux_k or max(1, xb.shape[1] // 2), n_dead)
        # Only the dead latents learn from this loss: the shared decoder bias
        # enters their pre-activations without gradient.
        pre = (xb - params["bias"].detach()) @ params["encoder"].T + params["encoder_bias"]
        masked = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
        values, idx = masked.topk(aux_k, dim=1)
        z_aux = torch.zeros_like(pre).scatter(1, idx, values.clamp_min(0))
        residual = (xb - x_hat).detach()
        e_hat = z_aux @ params["components"]
        # Dead latents' activations come from x, and x is much larger than the
        # residual: fitted as they are, the loss mostly shrinks them (measured:
        # more dead latents with AuxK than without). Scaling the auxiliary
        # reconstruction by its least-squares factor, without gradient, makes
        # them learn residual directions instead.
        scale = ((residual * e_hat).sum() / (e_hat * e_hat).sum().clamp_min(1e-12)).detach()
        error = residual - e_hat * scale.clamp(0, 1)
        # In the units of the reconstruction loss, so aux_coef does not depend
        # on the scale of the data.
        return self.aux_coef * (error ** 2).sum(dim=1).mean()
