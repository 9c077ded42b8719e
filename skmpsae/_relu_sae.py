"""ReLUSAE: the "vanilla" SAE, a ReLU encoder with an L1 penalty tuned to a target L0."""

import math
from numbers import Real

import numpy as np

from ._compat import Interval, StrOptions
from ._docs import with_shared_docs
from ._linear_sae import LinearSAE
from ._training._initial_values import subsample

__all__ = ["ReLUSAE"]


@with_shared_docs
class ReLUSAE(LinearSAE):
    """ReLU ("vanilla") sparse autoencoder with an adaptive L1 penalty.

    Codes are ``ReLU((x - bias_) @ encoder_.T + encoder_bias_)``. With
    ``l1_mode="decoder_norm"`` the decoder rows are free in
    training and the loss adds ``l1_coefficient_ * sum_i z_i * ||d_i||``, the
    decoder-norm-weighted L1 of Anthropic's April 2024 update; at the end of
    each fit the norms are folded into the encoder (row and bias of latent
    ``i`` times ``||d_i||``, decoder row over it), which changes neither the
    reconstructions nor the penalty, so ``components_`` has unit-norm rows.
    ``l1_mode="unit"`` (the default) projects the decoder rows back to unit
    norm after each step and penalises ``sum(z)``. After
    each batch the coefficient is multiplied by ``((L0 + 1) / (k + 1)) **
    l1_adapt_rate``, so that it grows while the batch's mean L0 exceeds ``k``
    and shrinks below it (the paper's adaptive L1 for its vanilla baseline).

    On digits (``load_digits().data / 16``, 80/20 split, 512 latents, k=8,
    seeds 0-2, ``benchmarks/bench_relu.py``) ``l1_mode="decoder_norm",
    learning_rate=3e-2`` reaches held-out R^2 0.81 at mean L0 9.7 with 32
    near-duplicate atom pairs (``|cos| > 0.9``) where the defaults reach 0.41
    at mean L0 11.0 with 410 pairs. It is not the default because on
    unit-norm embeddings it fails: on 4,000 MiniLM sentence embeddings
    (3,072 latents, k=8) it leaves 99.6% of the latents dead (held-out R^2
    0.07; 0.39 with 43% dead at ``learning_rate=1e-2``), where the defaults
    reach 0.61 (mean L0 28, 1.5% dead). Scale such data before using it.

    Parameters
    ----------
    n_components : int, default=None
        Number of latents; ``expansion_factor * n_features`` when None.
    expansion_factor : float, default=8
        Latents per input feature when ``n_components`` is None.
    k : int, default=16
        Target mean L0 (active latents per sample). Above ``n_components``
        the target cannot be reached: the L1 weight falls to its floor.
    l1_adapt_rate : float, default=0.05
        Exponent of the multiplicative update of the L1 coefficient.
    l1_mode : {"decoder_norm", "unit"}, default="unit"
        Free decoder norms and an L1 weighted by them, or unit-norm decoder
        rows and a plain L1 (see above).
    revive_dead : bool, default=False
        At the end of each epoch in the first half of ``max_iter`` (not the
        last), latents that never fired in it are pointed at the residuals of
        badly reconstructed samples (drawn by squared error), with an encoder
        bias that lets them fire on a share ``k / n_components`` of the
        samples. On digits (as above) it cuts the near-duplicate pairs (32 to
        20; 0.5 with 200 epochs) but not the held-out R^2 (0.809 against
        0.811), and latents die again once revivals stop (36 dead against 39).
    max_iter : int, default=50
        Training epochs.
    batch_size : int, default=256
        Samples per optimizer step.
    learning_rate : float, default=1e-2
        Peak Adam learning rate (linear warmup, then cosine decay). The
        decoder-norm L1 wants a rate that depends on the data: on digits at
        k=8 (two seeds) held-out R^2 0.24 with 3e-3, 0.60 with 1e-2, 0.81
        with 3e-2, 0.84 with 1e-1 but 234 of 512 latents dead, diverged with
        3e-1; on 4,800 MiniLM sentence embeddings (3,072 latents, k=8, R^2
        of the 8 largest codes) 0.05 with 3e-2 (99% dead), 0.50 with 1e-2
        (57% dead), 0.53 with 3e-3 (25% dead), against 0.54 for the
        defaults (``l1_mode="unit"``, 1e-2) and 0.57 for ``TopKSAE``.
    warmup : float, default=0.05
        Share of the optimizer steps spent in linear warmup.
    init : {"data", "random"}, default="data"
        Initial decoder rows; the encoder starts as their transpose. On
        digits (as above) "random" reconstructs better and leaves almost no
        near-duplicate pairs (held-out R^2 0.838 at mean L0 9.2, 2 pairs) but
        leaves 296 of 512 latents dead (39 with "data").
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
        Decoder rows (unit norm, whatever ``l1_mode``), decoder bias, encoder
        weights and bias.
    l1_coefficient_ : ndarray of shape (1,)
        L1 weight reached in training.
    n_components_, n_features_in_, n_iter_, loss_curve_
        As in ``MatchingPursuitSAE``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import ReLUSAE
    >>> X = load_digits().data / 16
    >>> sae = ReLUSAE(k=8, max_iter=3, random_state=0).fit(X)
    >>> sae.transform(X).shape
    (1797, 512)
    """

    _parameter_constraints: dict = {
        **LinearSAE._parameter_constraints,
        "l1_adapt_rate": [Interval(Real, 0, None, closed="left")],
        "l1_mode": [StrOptions({"decoder_norm", "unit"})],
        "revive_dead": ["boolean"],
    }
    _array_names = LinearSAE._array_names + ("l1_coefficient",)
    _buffer_names = ("l1_coefficient",)

    def __init__(self, n_components=None, *, expansion_factor=8, k=16, l1_adapt_rate=0.05,
                 l1_mode="unit", revive_dead=False, max_iter=50, batch_size=256,
                 learning_rate=1e-2, warmup=0.05, init="data",
                 bias_init="geometric_median", random_state=None, device="auto", verbose=0,
                 sparse_output=False, warm_start=False, checkpoint_dir=None,
                 checkpoint_every=None, weight_decay=0.0, max_grad_norm=None):
        self.n_components = n_components
        self.expansion_factor = expansion_factor
        self.k = k
        self.l1_adapt_rate = l1_adapt_rate
        self.l1_mode = l1_mode
        self.revive_dead = revive_dead
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

    def _init_arrays(self, X, n_components, rng):
        arrays = super()._init_arrays(X, n_components, rng)
        # Start near the size of a typical correlation with a unit atom.
        spread = np.abs(subsample(X, rng) - arrays["bias"]).mean()
        arrays["l1_coefficient"] = np.array([max(float(spread), 1e-8)])
        return arrays

    def _select(self, pre, params, *, training):
        return (pre > 0).nonzero(as_tuple=True)

    def _after_step(self, params):
        if self.l1_mode == "unit":
            super()._after_step(params)

    def _end_epoch(self, state, X, result, *, epoch, last, rng):
        if self.l1_mode == "decoder_norm" and last:
            _fold_decoder_norms(state)
        if self.revive_dead and not last and epoch < _REVIVE_UNTIL * self.max_iter:
            dead = np.flatnonzero(result.fired == 0)
            if dead.size:
                _revive_latents(self, state, X, dead, rng)

    def _penalty(self, params, codes):
        coef = params["l1_coefficient"]
        l0 = codes.rows.numel() / codes.n_rows
        # Bounded step and range: the weight can neither overflow (math.exp
        # raises past 709, the float32 buffer turns inf) nor reach 0, whatever
        # l1_adapt_rate or k (k > n_components cannot be reached).
        log_step = self.l1_adapt_rate * math.log((l0 + 1) / (self.k + 1))
        coef.mul_(math.exp(min(max(log_step, -50.0), 50.0)))
        import torch

        info = torch.finfo(coef.dtype)
        coef.clamp_(min=info.tiny ** 0.5, max=info.max ** 0.5)
        values = codes.values
        if self.l1_mode == "decoder_norm":
            values = values * params["components"].norm(dim=1)[codes.cols]
        return coef[0] * values.sum() / codes.n_rows


def _fold_decoder_norms(state):
    """Give the decoder unit-norm rows again, the codes scaled to match (exactly).

    ``z_i * d_i = (n_i z_i) (d_i / n_i)`` and ``n_i ReLU(a) = ReLU(n_i a)``:
    the encoder's row and bias of latent ``i`` are multiplied by ``n_i =
    ||d_i||``, so reconstructions and the penalty ``sum_i z_i ||d_i||`` are
    unchanged. Adam's moments follow (gradients scale as ``1 / n_i`` where the
    weights scale as ``n_i``), so that a warm start goes on alike.
    """
    import torch

    params = state.params
    with torch.no_grad():
        norms = params["components"].norm(dim=1).clamp_min(torch.finfo(
            params["components"].dtype).tiny ** 0.5)
        factors = {"components": 1 / norms[:, None], "encoder": norms[:, None],
                   "encoder_bias": norms}
        for name, factor in factors.items():
            params[name].mul_(factor)
            entry = state.optimizer.state.get(params[name])
            if entry:
                entry["exp_avg"].div_(factor)
                entry["exp_avg_sq"].div_(factor * factor)


#: Revivals stop after this share of the epochs, leaving the rest to settle.
_REVIVE_UNTIL = 0.5
#: Encoder norm of a revived latent, as a share of the live latents' mean.
_REVIVED_ENCODER_SCALE = 0.2
_REVIVAL_SAMPLES = 2048


def _revive_latents(est, state, X, dead, rng):
    """Point the ``dead`` latents at the residuals of badly reconstructed samples.

    Samples are drawn with probability proportional to their squared error;
    a revived latent's decoder row is the sample's normalised residual (times
    the live rows' mean norm when the norms are free), its encoder row the same
    direction at a fifth of the live encoder rows' mean norm, its encoder bias
    zero, and Adam's moments of those rows are reset.
    """
    import torch

    params = state.params
    D, W, b_enc = params["components"], params["encoder"], params["encoder_bias"]
    rows = np.sort(rng.choice(X.shape[0], min(X.shape[0], _REVIVAL_SAMPLES), replace=False))
    with torch.no_grad():
        xb = torch.from_numpy(np.ascontiguousarray(X[rows])).to(D.device, D.dtype)
        residual = xb - (est._pre(params, xb).clamp_min(0) @ D + params["bias"])
        err = (residual * residual).sum(dim=1).double().cpu().numpy()
        if not np.isfinite(err).all() or err.sum() <= 0:
            return
        n_new = min(dead.size, int(np.count_nonzero(err)))
        picked = torch.from_numpy(rng.choice(len(rows), n_new, replace=False,
                                             p=err / err.sum())).to(D.device)
        new = residual[picked]
        new = new / new.norm(dim=1, keepdim=True).clamp_min(1e-12)
        alive = torch.ones(D.shape[0], dtype=torch.bool, device=D.device)
        target = torch.from_numpy(dead[:n_new]).to(D.device)
        alive[torch.from_numpy(dead).to(D.device)] = False
        if not bool(alive.any()):
            return
        decoder_norm = D[alive].norm(dim=1).mean() if est.l1_mode == "decoder_norm" else 1.0
        D[target] = new * decoder_norm
        W[target] = new * (_REVIVED_ENCODER_SCALE * W[alive].norm(dim=1).mean())
        # A bias that lets each revived latent fire on a share k / n_components
        # of the samples, as a live latent does on average (zero would make it
        # fire on most samples).
        pre = (xb - params["bias"]) @ W[target].T
        share = min(est.k / D.shape[0], 1.0)
        b_enc[target] = -torch.quantile(pre, 1.0 - share, dim=0)
    for name in ("components", "encoder", "encoder_bias"):
        state.reset_moments(name, target)
