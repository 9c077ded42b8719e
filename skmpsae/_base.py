"""The estimator base shared by every SAE.

A variant provides four hooks and inherits the scikit-learn API (fit,
partial_fit, transform, inverse_transform, score, set_output, persistence):

- ``_init_arrays(X, n_components, rng)``: initial parameters as a dict of NumPy
  arrays; each becomes a fitted attribute ``name + "_"`` (``components_``,
  ``bias_``, ...);
- ``_batch_loss(params, xb, *, epoch, rng)``: the training loss of a batch and how
  often each latent fired;
- ``_after_step(params)`` and ``_end_epoch(state, X, result, *, epoch, last, rng)``:
  projections and revivals;
- ``_encode(X, n_steps)``: codes of validated samples (the encode hook).
"""

import functools
import os
from collections.abc import Iterable
from numbers import Integral, Real
from typing import TYPE_CHECKING, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from . import metrics
from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._device import validate_loaded_device
from ._validation import FLOATS, check_n_steps, naming
from ._validation import check_magnitude as _check_magnitude

if TYPE_CHECKING:  # annotations only
    import scipy.sparse

__all__ = ["BaseSAE"]



def _is_dask(X):
    """A dask array, recognised without importing dask."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


class _Cache:
    """Per-dtype derived arrays (cast dictionary, Gram matrix), rebuilt on demand.

    Held in one object so that transform does not change the estimator's
    ``__dict__``; dropped when pickling.
    """

    def __init__(self):
        self.by_dtype = {}


class BaseSAE(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the SAE estimators. Not for direct use."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "expansion_factor": [Interval(Real, 0, None, closed="neither")],
        "k": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "warmup": [Interval(Real, 0, 1, closed="both")],
        "bias_init": [StrOptions({"geometric_median", "mean", "zeros"})],
        "random_state": ["random_state"],
        "device": [str],
        "verbose": ["verbose"],
        "sparse_output": ["boolean"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "checkpoint_every": [Interval(Integral, 1, None, closed="left"), None],
        # Recipe options (skmpsae.recipes): AdamW's decay, clipping of the global gradient norm.
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    }

    #: Names of the fitted arrays; each is exposed as a fitted ``name + "_"``.
    _array_names = ("components", "bias")
    #: Those of ``_array_names`` that hooks update and the optimizer does not.
    _buffer_names = ()
    #: ``_encode(X, n_steps, selections=True)`` gives per-step ``(idx, coef)`` (pursuit).
    _selects = False

    # ------------------------------------------------------------------ hooks
    def _init_arrays(self, X, n_components, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_loss(self, params, xb, *, epoch, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, X, n_steps):  # pragma: no cover - abstract
        raise NotImplementedError

    def _after_step(self, params):
        """Called after each optimizer step, under ``torch.no_grad``."""

    def _end_epoch(self, state, X, result, *, epoch, last, rng):
        """Called after each epoch of ``fit`` (revival of dead latents, ...)."""

    def _check_n_steps(self, n_steps):
        """Validate the ``n_steps`` of transform; ``None`` means the trained ``k``."""
        if check_n_steps(n_steps) is None:
            return self.k
        from ._memory import check_fits_in_memory

        # Each encoded row keeps an index and a coefficient per step (the rows
        # themselves are counted once X is known: check_pursuit_memory).
        check_fits_in_memory(16 * int(n_steps), f"n_steps={n_steps}",
                             "choose a smaller n_steps")
        return int(n_steps)

    # ------------------------------------------------------------- properties
    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -------------------------------------------------------------- training
    def _resolve_n_components(self, n_features):
        if self.n_components is not None:
            n_components = int(self.n_components)
        else:
            n_components = max(1, int(round(self.expansion_factor * n_features)))
        from ._memory import check_fits_in_memory, training_bytes

        # A floor that holds for any data (float32, one-row batches); fit checks
        # again with the data's dtype and batch (check_training_memory).
        n_matrices = sum(self._array_shapes[name] == ("c", "f") for name in self._array_names)
        check_fits_in_memory(
            training_bytes(n_components, n_features, n_matrices, 0, 4),
            f"n_components={n_components} latents of {n_features} features "
            f"(n_components={self.n_components}, expansion_factor={self.expansion_factor})",
            "choose a smaller n_components or expansion_factor")
        # k > n_components is allowed: matching pursuit may select an atom again,
        # a top-k of all the latents keeps them all, and ReLUSAE's target L0
        # is then out of reach (its L1 weight falls to its floor).
        return n_components

    def _source(self, X, *, reset):
        """Validate ``X`` and wrap it as a training source (arrays, memmaps, iterables)."""
        from ._training._data import ArraySource, DaskBlocks, is_streamed, validated_stream

        if X is None:
            raise TypeError("X is None; pass training samples of shape (n_samples, n_features).")

        if _is_dask(X):  # streamed block by block, never computed whole
            return validated_stream(self, DaskBlocks(X), reset=reset)
        if is_streamed(X):
            return validated_stream(self, X, reset=reset)
        with naming("X"):
            X = validate_data(self, X, dtype=FLOATS, reset=reset)
        return ArraySource(_check_magnitude(X))

    def _previous_state(self):
        """The fitted state to continue from (``partial_fit``, ``warm_start``)."""
        return {"arrays": {name: getattr(self, name + "_") for name in self._array_names},
                "optimizer_state": self._optimizer_state, "step": self._n_steps,
                "n_components": self.n_components_, "loss_curve": self.loss_curve_,
                "n_iter": self.n_iter_}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike | Iterable, y: None = None) -> Self:
        """Train the SAE on ``X`` for ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like, memory-mapped array or iterable of arrays
            Training samples (embeddings) of shape (n_samples, n_features);
            float32 is kept as float32. A memory-mapped array
            (``np.load(path, mmap_mode="r")``) is streamed in shuffled batches
            with bounded memory. An iterable of 2-D chunks (a list of arrays,
            a generator, a torch ``DataLoader``) is cut into batches of
            ``batch_size`` rows in the order it yields them; a one-shot
            iterator allows one epoch. A dask array is read one row block
            at a time, in order.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> sae.components_.shape, sae.n_iter_, len(sae.loss_curve_)
        ((64, 64), 2, 2)
        """
        warm = self.warm_start and hasattr(self, "components_")
        source = self._source(X, reset=not warm)
        if getattr(source, "one_shot", False) and self.max_iter > 1:
            raise ValueError(
                f"X is a one-shot iterator (a generator), which can feed one epoch, but "
                f"max_iter={self.max_iter}; pass a re-iterable source (a list of arrays, a "
                "DataLoader) or set max_iter=1."
            )
        self._train(source, n_epochs=self.max_iter, cosine=True,
                    previous=self._previous_state() if warm else None)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike | Iterable, y: None = None) -> Self:
        """One epoch over ``X`` at the constant ``learning_rate``, continuing any earlier fit.

        Parameters
        ----------
        X : array-like, memory-mapped array or iterable of arrays
            A batch, a chunk of batches or a stream (see ``fit``).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, random_state=0)
        >>> for chunk in (X[:900], X[900:]):  # data that arrives in parts
        ...     sae = sae.partial_fit(chunk)
        >>> sae.n_iter_
        2
        """
        fresh = not hasattr(self, "components_")
        source = self._source(X, reset=fresh)
        self._train(source, n_epochs=1, cosine=False,
                    previous=None if fresh else self._previous_state())
        return self

    def _train(self, source, *, n_epochs, cosine, previous):
        import warnings

        from ._training._fit import train
        from .exceptions import TrainingInterruptedWarning

        outcome = train(self, source, n_epochs=n_epochs, cosine=cosine, previous=previous)
        # Fitted attributes change only once training has finished (or stopped cleanly).
        for name, value in outcome.arrays.items():
            setattr(self, name + "_", value)
        if source.streamed and previous is None:
            # validate_data sets these for in-memory arrays; streams are checked as read.
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = source.n_features
        self.n_components_ = outcome.n_components
        self.n_iter_ = outcome.n_iter
        self.loss_curve_ = outcome.loss_curve
        self._optimizer_state = outcome.optimizer_state
        self._n_steps = outcome.step
        self._cache = _Cache()
        from ._model_card import PendingFitMetrics

        # Reported by the model card; measured when first read (fit_metrics_).
        self.__dict__.pop("_fit_metrics", None)
        self._pending_fit_metrics = PendingFitMetrics(self, source)
        if outcome.interrupted:
            where = (f"; fit again with checkpoint_dir={str(self.checkpoint_dir)!r} to resume"
                     if self.checkpoint_dir is not None else "")
            warnings.warn(
                f"{type(self).__name__} training was interrupted {outcome.interrupted}; the "
                f"estimator holds the parameters of that step{where}.",
                TrainingInterruptedWarning, stacklevel=3,
            )

    # ------------------------------------------------------------- inference
    def _cast(self, dtype):
        """Fitted arrays cast to ``dtype`` (cached)."""
        cache = self._cache.by_dtype
        if dtype not in cache:
            cache[dtype] = {name: getattr(self, name + "_").astype(dtype, copy=False)
                            for name in self._array_names}
        return cache[dtype]

    def _validate_input(self, X):
        check_is_fitted(self)
        with naming("X"):
            return _check_magnitude(validate_data(self, X, dtype=FLOATS, reset=False))

    def _blockwise(self, X, method, n_columns, n_expected, **kwargs):
        """Apply ``method`` block by block to a dask array (lazy; rows stay chunked)."""
        check_is_fitted(self)
        if X.ndim != 2 or X.shape[1] != n_expected:
            raise ValueError(f"X has shape {X.shape}; expected (n_samples, {n_expected}).")
        dtype = X.dtype if X.dtype in FLOATS else np.dtype(np.float64)
        from ._transform import block_meta

        return X.rechunk({1: -1}).map_blocks(
            functools.partial(method, **kwargs), dtype=dtype,
            chunks=(X.chunks[0], (n_columns,)), meta=block_meta(self, method, dtype))

    def transform(self, X: ArrayLike | Iterable,
                  n_steps: int | None = None) -> "np.ndarray | scipy.sparse.csr_matrix":
        """Sparse codes of ``X``.

        Parameters
        ----------
        X : array-like, memory-mapped array or iterable of arrays
            Samples to encode, (n_samples, n_features). A memory-mapped array
            or an iterable of 2-D chunks is read, validated and encoded chunk
            by chunk (a progress bar when ``verbose``). A dask array gives a
            dask array, encoded block by block when computed.
        n_steps : int, default=None
            Sparsity at inference (the trained ``k`` when None).

        Returns
        -------
        codes : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_components)
            Codes in the dtype of ``X``; a CSR matrix, built chunk by chunk
            without the dense array, when ``sparse_output=True``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import TopKSAE
        >>> X = load_digits().data / 16
        >>> sae = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> codes = sae.transform(X)
        >>> codes.shape, int(np.count_nonzero(codes, axis=1).max())
        ((1797, 64), 4)
        >>> int(np.count_nonzero(sae.transform(X, n_steps=2), axis=1).max())
        2
        """
        if _is_dask(X):
            return self._blockwise(X, self.transform, self.n_components_, self.n_features_in_,
                                   n_steps=n_steps)
        from ._transform import transform_codes

        return transform_codes(self, X, n_steps)

    def _decode(self, Z):
        arrays = self._cast(Z.dtype)
        if sp.issparse(Z) and Z.format == "csr":
            from ._sparse_codes import decode_csr

            return decode_csr(Z, arrays["components"]) + arrays["bias"]
        return Z @ arrays["components"] + arrays["bias"]

    def _metric_codes(self, X, n_steps):
        """Codes of ``X`` for the end-of-fit metrics: dense, or CSR where cheaper.

        A pursuit's per-step selections give the CSR codes without the dense
        (rows, n_components) block, its scans and its dense decode.
        """
        if not self._selects:
            return self._encode(X, n_steps)
        from ._sparse import CSRBuilder

        builder = CSRBuilder(self.n_components_, X.dtype)
        builder.add_selections(*self._encode(X, n_steps, selections=True))
        return builder.build()

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Reconstruction ``X @ components_ + bias_`` of codes ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform`` (a dask array gives a dask array).

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
            Reconstructed samples, in the dtype of the codes.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> from skmpsae.metrics import r2_score
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> X_hat = sae.inverse_transform(sae.transform(X))
        >>> X_hat.shape
        (1797, 64)
        >>> r2_score(X, X_hat) == sae.score(X)
        True
        """
        if _is_dask(X):
            return self._blockwise(X, self.inverse_transform, self.n_features_in_,
                                   self.n_components_)
        check_is_fitted(self)
        with naming("X"):  # sparse codes (sparse_output=True) are decoded as they are
            Z = check_array(X, dtype=FLOATS, input_name="X", accept_sparse="csr")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns but {type(self).__name__} has "
                f"n_components_={self.n_components_}; pass codes from transform."
            )
        return self._decode(Z)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Explained variance R^2 of the reconstruction of ``X`` at the trained ``k``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to reconstruct.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            ``skmpsae.metrics.r2_score(X, inverse_transform(transform(X)))``.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0)
        >>> 0.5 < sae.fit(X[:1500]).score(X[1500:]) < 1  # held-out R^2
        True
        """
        from ._transform import validated_codes

        X = self._validate_input(X)
        return metrics.r2_score(X, self._decode(validated_codes(self, X, None)))

    # ----------------------------------------------------------- persistence
    #: Fitted arrays whose rows the class promises to be of unit norm.
    _unit_norm_arrays = ("components",)
    #: Shape of each fitted array, from "c" (n_components), "f" (n_features) or ints.
    _array_shapes = {"components": ("c", "f"), "bias": ("f",), "encoder": ("c", "f"),
                     "encoder_bias": ("c",), "samples_since_fired": ("c",),
                     "threshold": (1,), "l1_coefficient": (1,)}

    def _fitted_array_shapes(self, n_components, n_features):
        """Expected shape of each of ``_array_names`` (checked by ``load``)."""
        sizes = {"c": n_components, "f": n_features}
        return {name: tuple(sizes.get(d, d) for d in self._array_shapes[name])
                for name in self._array_names}

    def _fitted_state(self):
        """``(arrays, scalars)`` that ``save`` writes: the fitted arrays by name, and the rest."""
        arrays = {name: np.ascontiguousarray(getattr(self, name + "_"))
                  for name in self._array_names}
        fitted = {"n_features_in_": int(self.n_features_in_),
                  "n_components_": int(self.n_components_), "n_iter_": int(self.n_iter_),
                  "loss_curve_": [float(v) for v in self.loss_curve_]}
        if hasattr(self, "feature_names_in_"):
            fitted["feature_names_in_"] = [str(v) for v in self.feature_names_in_]
        if getattr(self, "fit_metrics_", None) is not None:
            fitted["fit_metrics_"] = dict(self.fit_metrics_)
        return arrays, fitted

    def _restore_fitted(self, arrays, fitted):
        """Set the fitted attributes from checked ``_fitted_state`` output (``load``)."""
        for name, value in arrays.items():
            setattr(self, name + "_", value)
        for key, value in fitted.items():
            setattr(self, key, np.asarray(value, dtype=object) if key == "feature_names_in_"
                    else value)
        self._optimizer_state, self._n_steps = None, 0
        self._cache = _Cache()

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model to the folder ``path`` (safetensors + JSON, no pickle).

        The folder holds ``config.json`` (the class, its parameters, fitted
        scalars and a checksum of the arrays), ``arrays.safetensors`` (the
        fitted arrays) and a model card ``README.md`` (class, parameters,
        training data, the R^2, L0 and dead fraction measured at the end of
        fit, how to load); it loads with :func:`skmpsae.load` or the class's
        ``load``, without executing code. ``path`` may be new, an empty
        folder or a folder an earlier ``save`` wrote (replaced in one step:
        ``load`` finds the old or the new model at every instant); anything
        else (a file, a link, a folder with other content) is refused with a
        ``FileExistsError`` naming it, and a model holding NaN or inf with a
        ``ValueError``.

        The new folder is always written beside ``path`` first and renamed
        into place. Replacing a model is one atomic exchange of the two
        folders on Linux (``renameat2(RENAME_EXCHANGE)``); where the platform
        or the file system cannot exchange folders (macOS, Windows, some
        network file systems), the old folder is first moved aside (into a
        hidden ``.<name>.*.old`` folder beside it, as its ``model``), the new
        one renamed into place and the old one removed: a crash between those two
        renames leaves no model at ``path`` but the old one whole in that
        hidden folder (move it back by hand). A new ``path`` (or an empty
        folder) is one rename everywhere.

        Parameters
        ----------
        path : str or path-like
            Folder to create or replace.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sae.save(Path(tmp) / "digits-sae")
        ...     sorted(p.name for p in (Path(tmp) / "digits-sae").iterdir())
        ['README.md', 'arrays.safetensors', 'config.json']
        """
        from ._persistence import save

        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BaseSAE":
        """Load a model saved with ``save``; the saved class must be ``cls``.

        Parameters
        ----------
        path : str or path-like
            Folder written by ``save``.

        Returns
        -------
        estimator : BaseSAE
            The fitted estimator.

        Examples
        --------
        >>> import tempfile
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skmpsae import MatchingPursuitSAE
        >>> X = load_digits().data / 16
        >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sae.save(tmp)
        ...     loaded = MatchingPursuitSAE.load(tmp)
        >>> bool(np.array_equal(loaded.transform(X), sae.transform(X)))
        True
        """
        from ._persistence import load

        return load(path, expected_class=cls)

    @property
    def fit_metrics_(self) -> dict:
        """R², mean L0 and dead fraction at the end of ``fit``, on up to 4096 training rows.

        A dict with ``n_samples_fit`` (``None`` for a stream of unknown
        length), ``metric_rows``, ``r2``, ``l0`` and ``dead_fraction``; the
        model card reports it. Measured on first access (or at ``save`` or
        pickling), on rows kept at the end of ``fit``, at the parameters of
        that fit. Absent for a model that skmpsae did not fit (converted).
        """
        metrics = self.__dict__.get("_fit_metrics")
        if metrics is None:
            pending = self.__dict__.get("_pending_fit_metrics")
            if pending is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute "
                                     "'fit_metrics_'")
            metrics = self.fit_metrics_ = pending.measure(self)
        return metrics

    @fit_metrics_.setter
    def fit_metrics_(self, value):
        self.__dict__.pop("_pending_fit_metrics", None)
        self.__dict__["_fit_metrics"] = value

    @fit_metrics_.deleter
    def fit_metrics_(self):
        if self.__dict__.pop("_fit_metrics", None) is None and \
                self.__dict__.pop("_pending_fit_metrics", None) is None:
            raise AttributeError("fit_metrics_")
        self.__dict__.pop("_pending_fit_metrics", None)

    def __getstate__(self):
        # Measure the fit's metrics first: the pickle keeps them, not the rows.
        getattr(self, "fit_metrics_", None)
        # object.__getstate__ returns the live __dict__: copy before dropping the cache.
        state = dict(super().__getstate__())
        state.pop("_cache", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.device = validate_loaded_device(self.device)
        if hasattr(self, "components_"):
            self._cache = _Cache()
