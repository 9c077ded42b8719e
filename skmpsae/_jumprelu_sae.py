"""JumpReLUSAE: learned per-latent thresholds trained with straight-through estimators.

Codes are ``pre * (pre > threshold_)``, ``pre`` the linear encoder's output
(Rajamanoharan et al. 2024, arXiv 2407.14435). The step in the forward pass
has no useful derivative in the threshold; its pseudo-derivative uses a
rectangle kernel of width ``bandwidth`` around the threshold: only the
pre-activations within ``bandwidth / 2`` of their latent's threshold move it.
The L0 (active latents per sample) is penalised through the same estimator.
"""

import math
from numbers import Real

import numpy as np

from ._compat import Interval
from ._docs import with_shared_docs
from ._linear_sae import LinearSAE
from ._training._initial_values import subsample

__all__ = ["JumpReLUSAE"]


def _torch():
    import torch

    return torch


def _functions():
    """The two autograd functions (built on first use: torch is imported lazily)."""
    if hasattr(_functions, "cache"):
        return _functions.cache
    torch = _torch()

    def window(pre, theta, bandwidth):
        # Rectangle kernel K((pre - theta) / bandwidth) / bandwidth.
        return ((pre - theta).abs() < bandwidth / 2).to(pre.dtype) / bandwidth

    class Jump(torch.autograd.Function):
        """``pre * (pre > theta)``; d/dpre the mask, d/dtheta ``-theta * K / bandwidth``."""

        @staticmethod
        def forward(ctx, pre, theta, bandwidth):
            mask = pre > theta
            ctx.save_for_backward(pre, theta, mask)
            ctx.bandwidth = bandwidth
            return pre * mask

        @staticmethod
        def backward(ctx, grad):
            pre, theta, mask = ctx.saved_tensors
            grad_pre = grad * mask if ctx.needs_input_grad[0] else None
            grad_theta = (-grad * theta * window(pre, theta, ctx.bandwidth)
                          if ctx.needs_input_grad[1] else None)
            return grad_pre, grad_theta, None

    class Step(torch.autograd.Function):
        """``pre > theta`` as numbers; d/dtheta ``-K / bandwidth``, nothing to ``pre``."""

        @staticmethod
        def forward(ctx, pre, theta, bandwidth):
            ctx.save_for_backward(pre, theta)
            ctx.bandwidth = bandwidth
            return (pre > theta).to(pre.dtype)

        @staticmethod
        def backward(ctx, grad):
            pre, theta = ctx.saved_tensors
            grad_theta = (-grad * window(pre, theta, ctx.bandwidth)
                          if ctx.needs_input_grad[1] else None)
            return None, grad_theta, None

    _functions.cache = (Jump.apply, Step.apply)
    return _functions.cache


def jump(pre, theta, bandwidth):
    """JumpReLU ``pre * (pre > theta)`` with the straight-through threshold gradient (torch)."""
    return _functions()[0](pre, theta, bandwidth)


def step(pre, theta, bandwidth):
    """Heaviside ``pre > theta`` with the straight-through threshold gradient (torch)."""
    return _functions()[1](pre, theta, bandwidth)


@with_shared_docs
class JumpReLUSAE(LinearSAE):
    """JumpReLU sparse autoencoder (Rajamanoharan et al. 2024, arXiv 2407.14435).

    Codes are ``pre * (pre > threshold_)`` with ``pre = (x - bias_) @
    encoder_.T + encoder_bias_`` and one learned threshold per latent. The
    loss is the squared reconstruction error plus ``sparsity_coefficient_ *
    L0`` (the batch's mean count of active latents per sample). Both the
    jump and the L0 are steps in the threshold; their gradients come from a
    straight-through estimator with a rectangle kernel of width
    ``bandwidth``: a pre-activation within ``bandwidth / 2`` of its threshold
    pulls it down when the reconstruction wants the latent on, and the L0
    term pushes it up. The threshold is trained as its logarithm
    (``log_threshold_``), so it stays positive.

    Target L0: after each batch the coefficient is multiplied by ``((L0 + 1)
    / (k + 1)) ** sparsity_adapt_rate`` (the rule of ``ReLUSAE``'s adaptive
    L1), so that it grows while the batch's mean L0 exceeds ``k`` and shrinks
    below it. Each latent's threshold starts at the level its
    pre-activation exceeds on a share ``k / n_components`` of (up to 2048)
    training samples: training starts at the target sparsity, with every
    latent firing.

    ``transform(X, n_steps=m)`` keeps the ``m`` largest of each sample's
    codes (above threshold: possibly fewer than ``m``).

    Parameters
    ----------
    n_components : int, default=None
        Number of latents; ``expansion_factor * n_features`` when None.
    expansion_factor : float, default=8
        Latents per input feature when ``n_components`` is None.
    k : int, default=16
        Target mean L0 (active latents per sample).
    bandwidth : float, default=1e-3
        Width of the rectangle kernel of the straight-through estimator, in
        the units of the pre-activations (the JumpReLU paper's value, for
        inputs scaled to a mean squared norm of ``n_features``).
    sparsity_adapt_rate : float, default=0.05
        Exponent of the multiplicative update of the L0 coefficient (0 keeps
        it at its initial value: a fixed L0 penalty).
    max_iter : int, default=50
        Training epochs.
    batch_size : int, default=256
        Samples per optimizer step.
    learning_rate : float, default=1e-2
        Peak Adam learning rate (linear warmup, then cosine decay). Adam
        moves the log-thresholds by about this much per step whatever the
        L0 weight, so short schedules need a rate this high to follow it (on
        digits at k=8, 50 epochs: training L0 7.2 with 1e-2, 10.1 with 5e-3).
    warmup : float, default=0.05
        Share of the optimizer steps spent in linear warmup.
    init : {"data", "random"}, default="data"
        Initial decoder rows; the encoder starts as their transpose.
    bias_init : {"geometric_median", "mean", "zeros"}, default="geometric_median"
        Initial decoder bias.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling.
    device : str, default="auto"
        Torch device for training.
    verbose : int, default=0
        Show a progress bar when positive.
    {training_control}
    {optimizer_options}

    Attributes
    ----------
    components_, bias_, encoder_, encoder_bias_ : ndarray
        Decoder rows (unit norm), decoder bias, encoder weights and bias.
    log_threshold_ : ndarray of shape (n_components,)
        Logarithm of each latent's threshold (the trained parameter).
    threshold_ : ndarray of shape (n_components,)
        ``exp(log_threshold_)``: each latent fires when its pre-activation
        exceeds it.
    sparsity_coefficient_ : ndarray of shape (1,)
        L0 weight reached in training.
    n_components_, n_features_in_, n_iter_, loss_curve_
        As in ``MatchingPursuitSAE``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import JumpReLUSAE
    >>> X = load_digits().data / 16
    >>> sae = JumpReLUSAE(k=8, max_iter=3, random_state=0).fit(X)
    >>> sae.transform(X).shape, sae.threshold_.shape
    ((1797, 512), (512,))
    """

    _parameter_constraints: dict = {
        **LinearSAE._parameter_constraints,
        "bandwidth": [Interval(Real, 0, None, closed="neither")],
        "sparsity_adapt_rate": [Interval(Real, 0, None, closed="left")],
    }
    _array_names = LinearSAE._array_names + ("log_threshold", "sparsity_coefficient")
    _buffer_names = ("sparsity_coefficient",)
    _array_shapes = {**LinearSAE._array_shapes, "log_threshold": ("c",),
                     "sparsity_coefficient": (1,)}

    def __init__(self, n_components=None, *, expansion_factor=8, k=16, bandwidth=1e-3,
                 sparsity_adapt_rate=0.05, max_iter=50, batch_size=256, learning_rate=1e-2,
                 warmup=0.05, init="data", bias_init="geometric_median", random_state=None,
                 device="auto", verbose=0, sparse_output=False, warm_start=False,
                 checkpoint_dir=None, checkpoint_every=None, weight_decay=0.0,
                 max_grad_norm=None):
        self.n_components = n_components
        self.expansion_factor = expansion_factor
        self.k = k
        self.bandwidth = bandwidth
        self.sparsity_adapt_rate = sparsity_adapt_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup = warmup
        self.init = init
        self.bias_init = bias_init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.sparse_output = sparse_output
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm

    @property
    def threshold_(self):
        """Each latent's threshold, ``exp(log_threshold_)``."""
        if not hasattr(self, "log_threshold_"):
            raise AttributeError("threshold_ is set by fit; this JumpReLUSAE is not fitted.")
        return np.exp(self.log_threshold_)

    # ------------------------------------------------------------- training
    def _init_buffers(self, n_components):
        # Placeholders: _encoder_scale sets the thresholds from the data.
        return {"log_threshold": np.zeros(n_components), "sparsity_coefficient": np.ones(1)}

    def _init_arrays(self, X, n_components, rng):
        arrays = super()._init_arrays(X, n_components, rng)
        # About the reconstruction loss one latent accounts for at the target L0.
        sample = subsample(X, rng) - arrays["bias"]
        energy = float(np.mean(np.einsum("ij,ij->i", sample, sample)))
        arrays["sparsity_coefficient"] = np.array([max(energy / self.k, 1e-8)])
        return arrays

    def _encoder_scale(self, X, arrays, rng):
        # Each latent's initial threshold is the level its pre-activation
        # exceeds on a share k / n_components of a data sample: the mean L0
        # starts at k and every latent fires (one level for all would leave
        # the latents with small pre-activations dead, out of the kernel's
        # reach). Pre-activations, and so those levels, scale with the
        # encoder, so the levels are set first and scaled after.
        torch = _torch()
        rows = np.sort(rng.choice(X.shape[0], min(X.shape[0], 2048), replace=False))
        with torch.no_grad():
            params = {name: torch.from_numpy(np.asarray(arrays[name], dtype=np.float64))
                      for name in ("bias", "encoder", "encoder_bias")}
            pre = self._pre(params, torch.from_numpy(np.asarray(X[rows], dtype=np.float64)))
            share = min(self.k / pre.shape[1], 1.0)
            level = torch.quantile(pre, 1.0 - share, dim=0).numpy()
            floor = 0.01 * float(pre.abs().mean()) or 1.0
        level = np.where(np.isfinite(level) & (level > floor), level, floor)
        arrays["log_threshold"] = np.log(level)
        scale = super()._encoder_scale(X, arrays, rng)
        arrays["log_threshold"] += math.log(scale)
        return scale

    def _select(self, pre, params, *, training):
        # At inference, and for the encoder's initial scale.
        return (pre > params["log_threshold"].exp()).nonzero(as_tuple=True)

    def _batch_loss(self, params, xb, *, epoch, rng):
        from ._sparse_codes import SparseCodes, gather_pre

        torch = _torch()
        xc = xb - params["bias"]
        W, b_enc = params["encoder"], params["encoder_bias"]
        theta = params["log_threshold"].exp()
        with torch.no_grad():
            pre = torch.addmm(b_enc, xc, W.T)
            # Active entries and those within the kernel below the threshold:
            # the latter have zero codes but carry the threshold's gradient.
            rows, cols = (pre > theta - self.bandwidth / 2).nonzero(as_tuple=True)
        codes = SparseCodes.select(rows, cols, *pre.shape)
        if codes.dense:
            values = (xc @ W.T + b_enc)[rows, cols]
        else:
            values = gather_pre(pre, xc, W, b_enc, rows, cols, codes.row_offsets())
        th = theta[cols]
        codes = codes._replace(values=jump(values, th, self.bandwidth))
        x_hat = codes.decode(params["components"]) + params["bias"]
        loss = ((xb - x_hat) ** 2).sum(dim=1).mean()
        l0 = step(values.detach(), th, self.bandwidth).sum() / xb.shape[0]
        coef = params["sparsity_coefficient"]
        self._adapt(coef, float(l0.detach()))
        return loss + coef[0] * l0, codes.fired()

    def _adapt(self, coef, l0):
        # Bounded step and range, as ReLUSAE's L1 weight.
        torch = _torch()
        log_step = self.sparsity_adapt_rate * math.log((l0 + 1) / (self.k + 1))
        coef.mul_(math.exp(min(max(log_step, -50.0), 50.0)))
        info = torch.finfo(coef.dtype)
        coef.clamp_(min=info.tiny ** 0.5, max=info.max ** 0.5)

    # ------------------------------------------------------------ inference
    def _entries(self, X, n_steps):
        # The jump rule, not LinearSAE's selection: the codes of _encode, as entries.
        Z = self._encode(X, n_steps)
        rows, cols = np.nonzero(Z)
        return Z.shape, rows, cols, Z[rows, cols]

    def _encode(self, X, n_steps):
        from ._threads import blas_threads

        arrays = self._cast(X.dtype)
        W, b_enc = arrays["encoder"], arrays["encoder_bias"]
        with blas_threads(X.shape[0] * W.shape[0] * W.shape[1]):
            pre = (X - arrays["bias"]) @ W.T + b_enc
        Z = np.where(pre > np.exp(arrays["log_threshold"]), pre, 0).astype(X.dtype, copy=False)
        if n_steps is None:
            return Z
        out = np.zeros_like(Z)
        if n_steps == 0:
            return out
        idx = np.argpartition(-Z, n_steps - 1, axis=1)[:, :n_steps]
        rows = np.arange(Z.shape[0])[:, None]
        out[rows, idx] = Z[rows, idx]
        return out
