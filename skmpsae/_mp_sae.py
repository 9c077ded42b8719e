"""MatchingPursuitSAE: the sparse autoencoder whose encoder is unrolled matching pursuit."""

import weakref
from collections.abc import Iterable
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._base import BaseSAE, _is_dask
from ._budget import calibrate, calibrated_stop, check_threshold
from ._compat import Interval, StrOptions
from ._device import resolve_device
from ._docs import with_shared_docs
from ._pursuit._core import encode, pursue
from ._pursuit._gram import gram_matrix
from ._pursuit._plan import DEFAULT_MEMORY_BUDGET, choose_backend, gram_fits

if TYPE_CHECKING:  # annotations only
    import scipy.sparse

__all__ = ["MatchingPursuitSAE"]

# The selection's buffers (Gram matrix, correlations) of each training run,
# by the id of the run's dictionary parameter: reused from step to step, freed
# with the run's parameters.
_WORKSPACES = {}


def _workspace(param):
    key = id(param)
    workspace = _WORKSPACES.get(key)
    if workspace is None:
        workspace = _WORKSPACES[key] = {}
        weakref.finalize(param, _WORKSPACES.pop, key, None)
    return workspace


@with_shared_docs
class MatchingPursuitSAE(BaseSAE):
    """Matching-pursuit sparse autoencoder (MP-SAE).

    The encoder runs ``k`` steps of matching pursuit over a dictionary of
    unit-norm atoms ``components_``: each step picks the atom most correlated
    with the residual, adds the correlation to its code and subtracts that
    atom's contribution. The decoder is the same dictionary plus the pre-bias
    ``bias_`` (tied weights). Training minimises the mean squared error with
    Adam (linear warmup, cosine decay); indices are selected without autograd
    by Gram-matrix updates and coefficients are recomputed differentiably from
    the selected atoms (Costa et al., NeurIPS 2025, arXiv 2506.03093).

    Parameters
    ----------
    n_components : int, default=None
        Number of atoms (``d_sae``); ``expansion_factor * n_features`` when None.
    expansion_factor : float, default=8
        Atoms per input feature when ``n_components`` is None.
    k : int, default=16
        Pursuit steps in training, and the default sparsity of ``transform``.
        ``k > n_components`` is allowed: an atom may be selected again (its
        coefficients add up), so a sample still has at most
        ``n_components`` nonzero codes.
    positive_code : bool, default=True
        Non-negative codes (the paper's MP-SAE); False gives signed MP.
    max_iter : int, default=50
        Training epochs.
    batch_size : int, default=256
        Samples per optimizer step.
    learning_rate : float, default=5e-3
        Peak Adam learning rate; decays to ``2e-3 * learning_rate``. Chosen by
        a sweep on digits and natural-image patches (raw and unit-norm rows):
        5e-3 to 1e-2 gave the best held-out R^2, 5e-4 about 0.01 less.
    warmup : float, default=0.05
        Share of the optimizer steps spent in linear warmup.
    init : {"data", "random"}, default="data"
        Initial atoms: centred training samples, or Gaussian directions.
    bias_init : {"geometric_median", "mean", "zeros"}, default="geometric_median"
        Initial pre-bias, from a sample of the data.
    atom_dropout : float, default=0.0
        Probability of hiding each atom from the pursuit, per batch, in the
        first epoch (the MNIST study uses 0.75).
    revive_dead : bool, default=True
        At the end of each epoch but the last, atoms that were never selected
        are reset to the normalised residuals of badly reconstructed samples.
    residual_threshold : float, default=None
        Budget mode (absolute residual stop): in training and, by default, in
        ``transform``, a sample's pursuit stops once ``||r||^2 <=
        residual_threshold``, with ``k`` as the cap. One level for every
        sample, so flat samples get fewer atoms than textured ones (a mean
        budget, as threshold SAEs spend). None: ``k`` steps per sample.
    coef_threshold : float, default=None
        Budget mode (global coefficient stop): a sample's pursuit stops
        instead of adding a coefficient of magnitude below
        ``coef_threshold`` (training and, by default, ``transform``; ``k`` is
        the cap). To reach a target mean L0 at inference, see
        ``calibrate_budget``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and dropout.
    device : str, default="auto"
        Torch device for training and encoding: ``"auto"`` (CUDA when
        available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    verbose : int, default=0
        Show a progress bar when positive.
    {training_control}
    {optimizer_options}

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Unit-norm atoms (the decoder ``W_dec``, tied to the encoder).
    bias_ : ndarray of shape (n_features,)
        Pre-bias subtracted before encoding and added after decoding.
    n_components_ : int
        Number of atoms.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
    n_iter_ : int
        Epochs run (``fit`` and ``partial_fit`` together).
    loss_curve_ : list of float
        Mean training loss of each epoch.
    budget_threshold_ : float
        Set by ``calibrate_budget``: the threshold of ``budget_mode_``
        (``"coef"`` or ``"residual"``) that gives mean L0 ``budget_l0_`` on
        the calibration rows with at most ``budget_n_steps_`` steps; used by
        ``transform(X, budget="calibrated")``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> X = load_digits().data
    >>> sae = MatchingPursuitSAE(k=8, max_iter=5, random_state=0).fit(X)
    >>> codes = sae.transform(X)
    >>> codes.shape
    (1797, 512)
    >>> bool((codes != 0).sum(axis=1).max() <= 8)
    True
    >>> sae.transform(X, n_steps=16).shape  # adaptive sparsity at inference
    (1797, 512)
    """

    _parameter_constraints: dict = {
        **BaseSAE._parameter_constraints,
        "positive_code": ["boolean"],
        "init": [StrOptions({"data", "random"})],
        "atom_dropout": [Interval(Real, 0, 1, closed="left")],
        "revive_dead": ["boolean"],
        "residual_threshold": [Interval(Real, 0, None, closed="left"), None],
        "coef_threshold": [Interval(Real, 0, None, closed="left"), None],
    }
    _selects = True

    def __init__(self, n_components=None, *, expansion_factor=8, k=16, positive_code=True,
                 max_iter=50, batch_size=256, learning_rate=5e-3, warmup=0.05, init="data",
                 bias_init="geometric_median", atom_dropout=0.0, revive_dead=True,
                 residual_threshold=None, coef_threshold=None, random_state=None,
                 device="auto", verbose=0, sparse_output=False, warm_start=False,
                 checkpoint_dir=None, checkpoint_every=None, weight_decay=0.0,
                 max_grad_norm=None):
        self.n_components = n_components
        self.expansion_factor = expansion_factor
        self.k = k
        self.positive_code = positive_code
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup = warmup
        self.init = init
        self.bias_init = bias_init
        self.atom_dropout = atom_dropout
        self.revive_dead = revive_dead
        self.residual_threshold = residual_threshold
        self.coef_threshold = coef_threshold
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.sparse_output = sparse_output
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm

    # ------------------------------------------------------------- training
    def _init_arrays(self, X, n_components, rng):
        from ._training._initial_values import initial_bias, initial_dictionary

        bias = initial_bias(X, self.bias_init, rng)
        return {"components": initial_dictionary(X, bias, n_components, self.init, rng),
                "bias": bias}

    def _batch_loss(self, params, xb, *, epoch, rng):
        import torch

        from ._pursuit._train_pass import pursuit_loss, select_atoms, select_budgeted

        D, b = params["components"], params["bias"]
        workspace = _workspace(D)
        if self.atom_dropout > 0 and epoch == 0:
            keep = torch.from_numpy(rng.random(D.shape[0]) >= self.atom_dropout)
            D = D * keep.to(device=D.device, dtype=D.dtype).unsqueeze(1)
        steps = None
        if self.residual_threshold is None and self.coef_threshold is None:
            idx, _ = select_atoms(D.detach(), b.detach(), xb, self.k, self.positive_code,
                                  workspace=workspace)
        else:
            idx, steps = select_budgeted(D.detach(), b.detach(), xb, self.k, self.positive_code,
                                         residual_threshold=self.residual_threshold,
                                         coef_threshold=self.coef_threshold,
                                         workspace=workspace)
            steps = steps.to(xb.device)
        idx = idx.to(xb.device)
        loss, coef = pursuit_loss(D, b, xb, idx, self.positive_code, steps)
        fired = torch.bincount(idx[coef.detach() != 0], minlength=D.shape[0])
        return loss, fired

    def _after_step(self, params):
        D = params["components"]
        D.div_(D.norm(dim=1, keepdim=True).clamp_min(1e-12))

    def _end_epoch(self, state, X, result, *, epoch, last, rng):
        if not self.revive_dead or last:
            return
        from ._training._revive import revive_atoms

        dead = np.flatnonzero(result.fired == 0)
        if dead.size:
            revive_atoms(state, X, dead, k=self.k, positive=self.positive_code,
                         batch_size=self.batch_size, rng=rng)

    # ------------------------------------------------------------ inference
    def _encode(self, X, n_steps, tol=None, residual_threshold=None, coef_threshold=None,
                defaults=True, selections=False):
        if defaults:  # the trained budget stops, unless the caller gives its own
            if residual_threshold is None:
                residual_threshold = self.residual_threshold
            if coef_threshold is None:
                coef_threshold = self.coef_threshold
        arrays = self._cast(X.dtype)
        D, b = arrays["components"], arrays["bias"]
        device = resolve_device(self.device)
        backend = choose_backend("auto", device=device)
        fits = gram_fits(D.shape[0], D.dtype.itemsize, DEFAULT_MEMORY_BUDGET)
        if backend == "cupy" and fits:
            from ._pursuit import _cupy

            # Dictionary, bias and Gram matrix (computed there) stay on the GPU
            # between calls instead of crossing the bus on each one.
            if "gpu" not in arrays:
                arrays["gpu"] = _cupy.upload(D, b, device)
            D, b, gram = arrays["gpu"]
        else:
            gram = arrays.get("gram")
            # Cached when it fits the budget; otherwise pursuit uses per-step products.
            if gram is None and fits:
                gram = arrays["gram"] = gram_matrix(D)
        # selections: per-step (idx, coef) that sparse outputs are built from.
        return (pursue if selections else encode)(
            X, D, n_steps=n_steps, bias=b, positive=self.positive_code, tol=tol, gram=gram,
            backend=backend, device=device, residual_threshold=residual_threshold,
            coef_threshold=coef_threshold)

    def transform(self, X: ArrayLike | Iterable, n_steps: int | None = None,
                  tol: float | None = None, residual_threshold: float | None = None,
                  coef_threshold: float | None = None,
                  budget: str | None = None) -> "np.ndarray | scipy.sparse.csr_matrix":
        """Sparse codes of ``X`` by matching pursuit.

        Parameters
        ----------
        X : array-like, memory-mapped array or iterable of arrays
            Samples to encode, (n_samples, n_features); memory-mapped arrays
            and iterables of chunks are encoded chunk by chunk.
        n_steps : int, default=None
            Pursuit steps (the trained ``k`` when None). May exceed ``k``:
            reconstruction error never increases with more steps.
        tol : float, default=None
            Stop a sample early once ``||r||^2 <= tol * ||x - bias_||^2``.
        residual_threshold : float, default=None
            Stop a sample once ``||r||^2 <= residual_threshold`` (the same
            level for all samples); None: the estimator's parameter.
        coef_threshold : float, default=None
            Stop a sample instead of adding a coefficient of magnitude below
            it; None: the estimator's parameter.
        budget : {"calibrated"}, default=None
            ``"calibrated"``: the stop set by ``calibrate_budget`` (its mode,
            threshold and step cap; ``n_steps`` overrides the cap). The other
            stops must then be None.

        Returns
        -------
        codes : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_components)
            At most ``n_steps`` nonzeros per row, in the dtype of ``X``; CSR
            (built from the pursuit's selections, chunk by chunk) when
            ``sparse_output=True``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> from skmpsae.metrics import l0, r2_score
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> def r2(Z):
        ...     return r2_score(X, sae.inverse_transform(Z))
        >>> r2(sae.transform(X)) < r2(sae.transform(X, n_steps=16))  # more steps, less error
        True
        >>> early = sae.transform(X, n_steps=64, tol=0.1)  # stop at 10% residual energy
        >>> l0(early) < 64
        True
        >>> flat_or_not = sae.transform(X, n_steps=16, coef_threshold=0.5)  # a mean budget
        >>> bool(np.ptp((flat_or_not != 0).sum(axis=1)) > 0)
        True
        """
        if _is_dask(X):
            return self._blockwise(X, self.transform, self.n_components_, self.n_features_in_,
                                   n_steps=n_steps, tol=tol, residual_threshold=residual_threshold,
                                   coef_threshold=coef_threshold, budget=budget)
        from ._transform import transform_codes

        for name, value in (("tol", tol), ("residual_threshold", residual_threshold),
                            ("coef_threshold", coef_threshold)):
            check_threshold(value, name)
        if budget is None:
            return transform_codes(self, X, n_steps, tol=tol,
                                   residual_threshold=residual_threshold,
                                   coef_threshold=coef_threshold)
        kw = calibrated_stop(self, budget, tol, residual_threshold, coef_threshold)
        n_steps = self.budget_n_steps_ if n_steps is None else self._check_n_steps(n_steps)
        return transform_codes(self, X, n_steps, defaults=False, **kw)

    def _fitted_state(self):
        from ._budget import budget_state

        arrays, fitted = super()._fitted_state()
        return arrays, {**fitted, **budget_state(self)}  # the calibrated budget, when set

    def calibrate_budget(self, X: ArrayLike, target_l0: float, *, mode: str = "coef",
                         n_steps: int | None = None) -> "MatchingPursuitSAE":
        """Choose the budget threshold that gives mean L0 ``target_l0`` on ``X``.

        The stop of ``mode`` (``"coef"``: the global coefficient stop,
        ``"residual"``: the absolute residual stop) is set so that the mean
        number of nonzero codes per row of ``X`` is as close to ``target_l0``
        as a threshold can make it (L0 is a step function of the threshold),
        with at most ``n_steps`` steps per sample; ``transform(X,
        budget="calibrated")`` then uses it. This is the MP-SAE counterpart
        of BatchTopK's ``threshold_``: equal mean L0, not equal L0 per sample.

        Pass held-out rows (a validation split), not the training rows: MP
        fits its training rows better than new ones, so their coefficients
        and residuals fall faster, and a threshold calibrated there gives a
        higher mean L0 on new data than the target.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Calibration rows (held out from training).
        target_l0 : float
            Target mean number of nonzero codes per row, in ``(0, n_steps]``.
        mode : {"coef", "residual"}, default="coef"
            Which stop to calibrate.
        n_steps : int, default=None
            Step cap; ``max(2 * k, ceil(2 * target_l0))`` when None.

        Returns
        -------
        self : MatchingPursuitSAE
            With ``budget_mode_``, ``budget_threshold_``, ``budget_n_steps_``,
            ``budget_l0_`` (the mean L0 reached on ``X``) and ``budget_n_iter_``
            (the epochs trained when calibrated) set; ``save``/``load`` and
            pickling keep them.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> from skmpsae.metrics import l0
        >>> X = load_digits().data / 16
        >>> X_train, X_val = X[:1400], X[1400:]
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0)
        >>> sae = sae.fit(X_train).calibrate_budget(X_val, target_l0=6)
        >>> round(sae.budget_l0_)
        6
        >>> codes = sae.transform(X_val, budget="calibrated")
        >>> bool(abs(l0(codes) - 6) < 0.5)
        True
        """
        X = self._validate_input(X)
        calibrate(self, X, target_l0, mode, n_steps)
        return self
