"""JumpReLUSAE: learned per-latent thresholds trained with straight-through estimators.

Codes are ``pre * (pre > threshold_)``, ``pre`` the linear encoder's output
(Rajamanoharan et al. 2024, arXiv 2407.14435). The step in the forward pass
has no useful derivative in the threshold; its pseudo-derivative uses a
rectangle kernel of width ``bandwidth`` around the threshold: only the
pre-activations within ``bandwidth / 2`` of their latent's threshold move it.
The L0 (active latents per sample) is penalised through the same estimator,
as its distance to a target; a controller of all thresholds holds the
training L0 at the target whatever the learning-rate schedule.
"""

import math
from numbers import Real

import numpy as np

from ._compat import Interval
from ._docs import with_shared_docs
from ._linear_sae import LinearSAE
from ._training._initial_values import subsample

__all__ = ["JumpReLUSAE"]

#: Kernel width as a share of each latent's threshold when ``bandwidth`` is
#: None. Measured at k=8 (digits raw and /16, 6000 MiniLM sentences): shares
#: from 0.05 to 0.5 reach the same training L0 and held-out R^2 within 0.005.
RELATIVE_BANDWIDTH = 0.2


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
    loss is the squared reconstruction error plus the target-L0 penalty
    ``sparsity_coefficient_ * ((L0 / k) - 1) ** 2`` (L0: the batch's mean
    count of active latents per sample), the form of dictionary_learning's
    and SAEBench's JumpReLU trainer. Both the jump and the L0 are steps in
    the threshold; their gradients come from a straight-through estimator
    with a rectangle kernel: a pre-activation within half the kernel's width
    of its threshold pulls it down when the reconstruction wants the latent
    on, and the penalty pushes it towards the target. The threshold is
    trained as its logarithm (``log_threshold_``), so it stays positive.

    Scale-free defaults. The kernel is ``0.2 * threshold`` wide for each
    latent (``bandwidth=None``), and ``sparsity_coefficient_`` is
    ``sparsity_coefficient`` times the mean squared norm of the centred
    training samples (the units of the reconstruction loss), so the same
    settings train the same model on ``X`` and on ``100 * X``. An absolute
    ``bandwidth`` (the JumpReLU paper's 1e-3, for inputs scaled to a mean
    squared norm of ``n_features``) is tied to the data's scale.

    Target L0. Adam moves a log-threshold by about the learning rate per
    step whatever the penalty's weight, and the encoder moves faster, so the
    penalty alone lets L0 drift from ``k`` (measured on 4800 MiniLM
    sentences at k=8: training L0 4.8 after 50 epochs) and cannot follow
    at the end of the cosine schedule. After each optimizer step every
    log-threshold therefore also moves by ``threshold_adapt_rate *
    log((L0 + 1) / (k + 1))``: the training L0 settles at ``k`` (8.0 to 8.1
    on digits, raw or scaled, and on the sentences). Held-out L0 is higher
    where the thresholds overfit a small training set (digits: 10; 4800
    sentences: 12): calibrate the comparison on held-out rows
    (:func:`skmpsae.comparison.budget_codes`). Each latent's threshold
    starts at the level its pre-activation exceeds on a share ``k /
    n_components`` of (up to 2048) training samples: training starts near
    the target sparsity, with every latent firing.

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
    bandwidth : float or None, default=None
        Width of the rectangle kernel of the straight-through estimator, in
        the units of the pre-activations (SAELens' ``jumprelu_bandwidth``).
        None: ``0.2`` times each latent's threshold, whatever the data's
        scale.
    sparsity_coefficient : float, default=1.0
        Weight of the target-L0 penalty, in units of the mean squared norm
        of the centred training samples (0: no penalty; the controller still
        holds L0 at ``k``).
    threshold_adapt_rate : float, default=0.05
        Rate of the controller that moves all log-thresholds after each step
        by ``rate * log((L0 + 1) / (k + 1))`` (0: off, the penalty alone).
    max_iter : int, default=50
        Training epochs.
    batch_size : int, default=256
        Samples per optimizer step.
    learning_rate : float, default=1e-2
        Peak Adam learning rate (linear warmup, then cosine decay).
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
        Weight of the target-L0 penalty in the loss: ``sparsity_coefficient``
        times the training samples' mean squared norm, set at the first fit.
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
        "bandwidth": [Interval(Real, 0, None, closed="neither"), None],
        "sparsity_coefficient": [Interval(Real, 0, None, closed="left")],
        "threshold_adapt_rate": [Interval(Real, 0, None, closed="left")],
    }
    _array_names = LinearSAE._array_names + ("log_threshold", "sparsity_coefficient")
    _buffer_names = ("sparsity_coefficient",)
    _array_shapes = {**LinearSAE._array_shapes, "log_threshold": ("c",),
                     "sparsity_coefficient": (1,)}

    def __init__(self, n_components=None, *, expansion_factor=8, k=16, bandwidth=None,
                 sparsity_coefficient=1.0, threshold_adapt_rate=0.05, max_iter=50,
                 batch_size=256, learning_rate=1e-2,
                 warmup=0.05, init="data", bias_init="geometric_median", random_state=None,
                 device="auto", verbose=0, sparse_output=False, warm_start=False,
                 checkpoint_dir=None, checkpoint_every=None, weight_decay=0.0,
                 max_grad_norm=None):
        self.n_components = n_components
        self.expansion_factor = expansion_factor
        self.k = k
        self.bandwidth = bandwidth
        self.sparsity_coefficient = sparsity_coefficient
        self.threshold_adapt_rate = threshold_adapt_rate
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
        # In the units of the reconstruction loss: the mean squared norm.
        sample = subsample(X, rng) - arrays["bias"]
        energy = float(np.mean(np.einsum("ij,ij->i", sample, sample)))
        arrays["sparsity_coefficient"] = np.array([self.sparsity_coefficient * energy])
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

    def _bandwidth(self, theta):
        """Kernel width: the absolute ``bandwidth``, or a share of each threshold (no gradient)."""
        if self.bandwidth is None:
            return RELATIVE_BANDWIDTH * theta.detach()
        return self.bandwidth

    def _batch_loss(self, params, xb, *, epoch, rng):
        from ._products import linear
        from ._sparse_codes import SparseCodes, dense_pre, gather_pre

        torch = _torch()
        xc = xb - params["bias"]
        W, b_enc = params["encoder"], params["encoder_bias"]
        theta = params["log_threshold"].exp()
        width = self._bandwidth(theta)
        with torch.no_grad():
            pre = linear(xc, W, b_enc)
            # Active entries and those within the kernel below the threshold:
            # the latter have zero codes but carry the threshold's gradient.
            rows, cols = (pre > theta - width / 2).nonzero(as_tuple=True)
        codes = SparseCodes.select(rows, cols, *pre.shape)
        if codes.dense:
            values = dense_pre(pre, xc, W, b_enc, rows, cols)
        else:
            values = gather_pre(pre, xc, W, b_enc, rows, cols, codes.row_offsets())
        th = theta[cols]
        width = width if self.bandwidth is not None else width[cols]
        codes = codes._replace(values=jump(values, th, width))
        x_hat = codes.decode(params["components"]) + params["bias"]
        loss = ((xb - x_hat) ** 2).sum(dim=1).mean()
        l0 = step(values.detach(), th, width).sum() / xb.shape[0]
        # Applied by _after_step, once the optimizer has stepped. Under
        # torch.distributed each rank shifts by its own batch's L0 (the
        # gradients are averaged, the shifts differ by the batches' noise)
        # until the epoch's end averages the parameters.
        self._threshold_shift = self.threshold_adapt_rate * math.log(
            (float(l0.detach()) + 1) / (self.k + 1))
        return loss + params["sparsity_coefficient"][0] * (l0 / self.k - 1) ** 2, codes.fired()

    def _after_step(self, params):
        super()._after_step(params)
        shift, self._threshold_shift = getattr(self, "_threshold_shift", 0.0), 0.0
        if shift:
            params["log_threshold"].add_(shift)

    # ------------------------------------------------------------ inference
    def _entries(self, X, n_steps):
        # The jump rule, not LinearSAE's selection: the codes of _encode, as entries.
        Z = self._encode(X, n_steps)
        rows, cols = np.nonzero(Z)
        return Z.shape, rows, cols, Z[rows, cols]

    def _encode(self, X, n_steps):
        arrays = self._cast(X.dtype)
        pre = self._pre_array(arrays, X)
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
