"""SAELens folders (``cfg.json`` + ``sae_weights.safetensors``) to and from skmpsae estimators.

SAELens stores ``W_enc`` as (d_in, d_sae), ``W_dec`` as (d_sae, d_in), ``b_enc``
(d_sae,) and ``b_dec`` (d_in,); its encoders compute ``(x - b_dec) @ W_enc +
b_enc`` (without ``- b_dec`` when ``apply_b_dec_to_input`` is false) and its
decoders ``z @ W_dec + b_dec``. skmpsae keeps ``encoder_ = W_enc.T`` and
decoder rows of unit norm where that changes no code: the norm of each
decoder row is folded into its encoder row and bias (and JumpReLU threshold)
whenever the selection of active latents does not depend on it.
"""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._common import (
    build_estimator,
    check_shape,
    dtype_name,
    fail,
    fitted_arrays,
    read_json,
    read_tensors,
    tensors_bytes,
    write_folder,
)

if TYPE_CHECKING:
    from .._base import BaseSAE

__all__ = ["load_saelens", "save_saelens"]

_FMT = "SAELens"
CONFIG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
_SUPPORTED = ("standard", "topk", "batchtopk", "matryoshka_batchtopk", "jumprelu",
              "matching_pursuit")


def _check_config(path, cfg):
    arch = cfg.get("architecture", "standard")
    if arch not in _SUPPORTED:
        fail(path, _FMT, f"architecture {arch!r} has no skmpsae counterpart; supported: "
                         f"{list(_SUPPORTED)}.")
    norm = cfg.get("normalize_activations", "none")
    if norm not in ("none", None):
        fail(path, _FMT, f"normalize_activations={norm!r} rescales each input outside the "
                         "weights; fold it first in SAELens (fold_activation_norm_scaling_"
                         "factor, fold_activation_whitening) and save again.")
    if cfg.get("reshape_activations", "none") not in ("none", None):
        fail(path, _FMT, f"reshape_activations={cfg['reshape_activations']!r} is not "
                         "supported; skmpsae encodes flat (n_samples, d_in) inputs.")
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            fail(path, _FMT, f"{CONFIG} must give a positive integer {key}, got "
                             f"{cfg.get(key)!r}.")
    return arch


def _scaling_factor(path, arrays):
    for key in ("scaling_factor", "finetuning_scaling_factor"):
        if key in arrays and not np.allclose(arrays.pop(key), 1):
            fail(path, _FMT, f"the weights hold a {key!r} other than 1 (an input rescaling); "
                             "fold it in SAELens and save again.")


def _fold(encoder, encoder_bias, decoder):
    """Unit decoder rows, their norms moved into the encoder (codes scale by the norms)."""
    norms = np.linalg.norm(decoder, axis=1)
    scale = np.where(norms > 0, norms, 1).astype(decoder.dtype)
    return {"components": decoder / scale[:, None], "encoder": encoder * scale[:, None],
            "encoder_bias": encoder_bias * scale}


def _threshold_array(threshold):
    # A uniform threshold (BatchTopK) is BatchTopKSAE's scalar threshold_.
    threshold = np.asarray(threshold).reshape(-1)
    return threshold[:1] if np.all(threshold == threshold[0]) else threshold


def _load_pursuit(path, cfg, arrays, d_in, d_sae):
    from .._mp_sae import MatchingPursuitSAE
    from .._pursuit._checks import check_unit_norms

    D = check_shape(path, _FMT, arrays, "W_dec", (d_sae, d_in))
    b = check_shape(path, _FMT, arrays, "b_dec", (d_in,))
    try:
        check_unit_norms(np.linalg.norm(D, axis=1))
    except ValueError as exc:
        fail(path, _FMT, f"matching pursuit needs unit-norm decoder rows: {exc}")
    k = cfg.get("max_iterations") or d_in
    bias = b if cfg.get("apply_b_dec_to_input", True) else np.zeros_like(b)
    return build_estimator(MatchingPursuitSAE, {"n_components": d_sae, "k": int(k)},
                           {"components": D, "bias": bias})


_THRESHOLD_CLASSES = ("BatchTopKSAE", "MatryoshkaSAE")
_THRESHOLD_TRAINING = ("batchtopk", "matryoshka_batchtopk")


def _is_batchtopk(cfg):
    """Whether a ``"jumprelu"`` folder is a BatchTopK's (or Matryoshka's) inference form."""
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    return (meta.get("skmpsae_class") in _THRESHOLD_CLASSES
            or meta.get("training_architecture") in _THRESHOLD_TRAINING)


def _positive(value, default):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        np.isfinite(value) and value > 0
    return float(value) if ok else default


def _load_jumprelu(path, cfg, arrays, weights, d_sae):
    from .._jumprelu_sae import JumpReLUSAE

    encoder, b_enc, W_dec, b_dec = weights
    if "log_threshold" in arrays:
        arrays["threshold"] = np.exp(arrays.pop("log_threshold"))
    threshold = check_shape(path, _FMT, arrays, "threshold", (d_sae,))
    # The step commutes with positive scaling: folding the decoder norms into
    # the encoder scales the thresholds alike and changes no code's support.
    out = _fold(encoder, b_enc, W_dec)
    norms = np.linalg.norm(W_dec, axis=1)
    threshold = threshold * np.where(norms > 0, norms, 1)
    # SAELens' codes are ReLU(pre) * (pre > threshold): a threshold <= 0 acts
    # as 0, which the log-threshold holds as the smallest positive normal number.
    tiny = np.finfo(W_dec.dtype).tiny
    out["log_threshold"] = np.log(np.maximum(threshold, tiny))
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    details = meta.get("training_architecture_details")
    details = details if isinstance(details, dict) else {}
    saved = meta.get("skmpsae_params") if isinstance(meta.get("skmpsae_params"), dict) else {}
    params = {"n_components": d_sae}
    bandwidth = saved.get("bandwidth", cfg.get("jumprelu_bandwidth",
                                                details.get("jumprelu_bandwidth")))
    params["bandwidth"] = _positive(bandwidth, JumpReLUSAE().bandwidth)
    k = saved.get("k", cfg.get("target_l0", details.get("target_l0")))
    if isinstance(k, (int, float)) and not isinstance(k, bool) and 1 <= k:
        params["k"] = max(1, int(round(k)))
    coef = saved.get("l0_coefficient", cfg.get("l0_coefficient",
                                                details.get("l0_coefficient")))
    out["sparsity_coefficient"] = np.array([_positive(coef, 1.0)])
    return build_estimator(JumpReLUSAE, params, {**out, "bias": b_dec})


def _load_linear(path, cfg, arrays, arch, d_in, d_sae):
    from .._matryoshka_sae import MatryoshkaSAE
    from .._relu_sae import ReLUSAE
    from .._topk_sae import BatchTopKSAE, TopKSAE

    W_enc = check_shape(path, _FMT, arrays, "W_enc", (d_in, d_sae))
    b_enc = check_shape(path, _FMT, arrays, "b_enc", (d_sae,))
    W_dec = check_shape(path, _FMT, arrays, "W_dec", (d_sae, d_in))
    b_dec = check_shape(path, _FMT, arrays, "b_dec", (d_in,))
    if not cfg.get("apply_b_dec_to_input", True):
        # x @ W_enc + b_enc == (x - b_dec) @ W_enc + (b_enc + b_dec @ W_enc)
        b_enc = b_enc + b_dec @ W_enc
    encoder = np.ascontiguousarray(W_enc.T)
    rescale = bool(cfg.get("rescale_acts_by_decoder_norm", False))
    params = {"n_components": d_sae}
    if arch == "standard":
        # ReLU commutes with positive scaling: folding changes no code's support.
        arrays_out = _fold(encoder, b_enc, W_dec)
        # The L1 weight only matters for further training, which adapts it anyway.
        l1 = cfg.get("l1_coefficient", 1.0)
        arrays_out["l1_coefficient"] = np.array([l1 if isinstance(l1, (int, float)) and l1 > 0
                                                 else 1.0])
        cls = ReLUSAE
    elif arch == "topk":
        k = cfg.get("k")
        if not isinstance(k, int) or not 1 <= k <= d_sae:
            fail(path, _FMT, f"k must be an integer in [1, d_sae={d_sae}], got {k!r}.")
        # Without rescaling the selection ranks unscaled pre-activations, so the
        # decoder is kept as it is (its rows may then not have unit norm).
        arrays_out = _fold(encoder, b_enc, W_dec) if rescale else \
            {"components": W_dec, "encoder": encoder, "encoder_bias": b_enc}
        cls, params = TopKSAE, {**params, "k": k}
    elif arch == "jumprelu" and not _is_batchtopk(cfg):
        return _load_jumprelu(path, cfg, arrays, (encoder, b_enc, W_dec, b_dec), d_sae)
    else:  # thresholds: BatchTopK's inference form; batchtopk / matryoshka training files
        if arch == "jumprelu":
            if "log_threshold" in arrays:
                arrays["threshold"] = np.exp(arrays.pop("log_threshold"))
            threshold = check_shape(path, _FMT, arrays, "threshold", (d_sae,))
            # Kept as stored: folding would scale the thresholds by the decoder norms
            # and turn BatchTopK's single threshold into one per latent.
            arrays_out = {"components": W_dec, "encoder": encoder, "encoder_bias": b_enc}
        else:
            threshold = np.full(d_sae, float(check_shape(path, _FMT, arrays, "topk_threshold",
                                                          ()).item()), dtype=W_dec.dtype)
            # With rescaling the threshold applies to the pre-activations times the
            # decoder norms: exactly the folded encoder's pre-activations.
            arrays_out = _fold(encoder, b_enc, W_dec) if rescale else \
                {"components": W_dec, "encoder": encoder, "encoder_bias": b_enc}
        arrays_out["threshold"] = _threshold_array(threshold)
        k = cfg.get("k")
        if isinstance(k, (int, float)) and 1 <= k <= d_sae:
            params["k"] = max(1, int(round(k)))
        else:
            params["k"] = min(16, d_sae)
        cls = BatchTopKSAE
        widths = cfg.get("matryoshka_widths")
        if arch == "matryoshka_batchtopk" and widths:
            if widths[-1] != d_sae:
                widths = [*widths, d_sae]
            cls, params = MatryoshkaSAE, {**params,
                                          "group_sizes": [int(w) for w in np.diff([0, *widths])]}
    return build_estimator(cls, params, {**arrays_out, "bias": b_dec})


def load_saelens(path: str | os.PathLike) -> "BaseSAE":
    """Load an SAE that SAELens saved (``save_model`` / ``save_inference_model``).

    The folder holds ``cfg.json`` and ``sae_weights.safetensors``; both are
    read without pickle. Architectures map to the skmpsae estimator with the
    same codes:

    - ``"standard"`` (ReLU) to :class:`~skmpsae.ReLUSAE`;
    - ``"topk"`` to :class:`~skmpsae.TopKSAE` (same ``k``);
    - ``"jumprelu"`` to :class:`~skmpsae.JumpReLUSAE` (thresholds as
      ``threshold_``; a threshold of 0 or below, which SAELens' ReLU makes
      0, becomes the smallest positive normal number), ``bandwidth``,
      ``k`` (``target_l0``) and the L0 weight taken from the config where it
      has them; but a ``"jumprelu"`` folder that SAELens wrote for a trained
      BatchTopK or Matryoshka (its ``metadata.training_architecture``), or
      that ``save_saelens`` wrote for one, to :class:`~skmpsae.BatchTopKSAE`,
      whose ``threshold_`` holds one value, or one per latent when the
      thresholds differ;
    - ``"batchtopk"`` and ``"matryoshka_batchtopk"`` training folders to
      :class:`~skmpsae.BatchTopKSAE` and :class:`~skmpsae.MatryoshkaSAE`
      (groups from ``matryoshka_widths``), with SAELens' inference threshold;
    - ``"matching_pursuit"`` to :class:`~skmpsae.MatchingPursuitSAE` with
      ``k = max_iterations`` (``d_in`` when unset). skmpsae runs ``k`` steps;
      SAELens' early stops (``residual_threshold``, ``stop_on_duplicate_support``)
      are not applied: with ``residual_threshold=0`` and
      ``stop_on_duplicate_support=False`` the codes are the same.

    Decoder row norms are folded into the encoder for ReLU and JumpReLU
    (and into JumpReLU's thresholds; codes are then SAELens' codes times the
    row norms) and where SAELens ranks or thresholds activations times those
    norms (``rescale_acts_by_decoder_norm``: the codes are SAELens' codes);
    otherwise (TopK without rescaling, BatchTopK's thresholds) the weights
    are kept as stored and the codes are SAELens' codes.
    Reconstructions are SAELens' in every case. Inputs normalised outside
    the weights (``normalize_activations`` other than ``"none"``) are refused.
    Hyperparameters that SAELens does not store (ReLUSAE's target ``k``, a
    JumpReLU's ``k`` without ``target_l0``) take skmpsae's defaults; they only matter for further
    training.

    Parameters
    ----------
    path : str or path-like
        Folder written by SAELens.

    Returns
    -------
    estimator : BaseSAE
        A fitted skmpsae estimator (``n_iter_ == 0``, no optimizer state).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import TopKSAE
    >>> from skmpsae.interop import load_saelens, save_saelens
    >>> X = load_digits().data / 16
    >>> sae = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_saelens(sae, tmp)
    ...     loaded = load_saelens(tmp)
    >>> type(loaded).__name__, loaded.k, bool((loaded.transform(X) == sae.transform(X)).all())
    ('TopKSAE', 4, True)
    """
    path = Path(path)
    cfg = read_json(path, CONFIG, _FMT)
    arch = _check_config(path, cfg)
    arrays = read_tensors(path, WEIGHTS, _FMT)
    _scaling_factor(path, arrays)
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    if arch == "matching_pursuit":
        return _load_pursuit(path, cfg, arrays, d_in, d_sae)
    return _load_linear(path, cfg, arrays, arch, d_in, d_sae)


def _export(estimator):
    """``(architecture, extra config, tensors)`` of a fitted skmpsae estimator."""
    from .._jumprelu_sae import JumpReLUSAE
    from .._matryoshka_sae import MatryoshkaSAE
    from .._mp_sae import MatchingPursuitSAE
    from .._relu_sae import ReLUSAE
    from .._topk_sae import BatchTopKSAE, TopKSAE

    arrays = fitted_arrays(estimator, (MatchingPursuitSAE, ReLUSAE, TopKSAE, JumpReLUSAE),
                           _FMT)
    tensors = {"W_dec": arrays["components"], "b_dec": arrays["bias"]}
    if isinstance(estimator, MatchingPursuitSAE):
        if not estimator.positive_code:
            raise ValueError("SAELens' matching pursuit has non-negative codes; an "
                             "estimator with positive_code=False has no SAELens form.")
        extra = {"max_iterations": int(estimator.k), "residual_threshold": 0.0,
                 "stop_on_duplicate_support": False}
        return "matching_pursuit", extra, tensors
    tensors.update(W_enc=arrays["encoder"].T, b_enc=arrays["encoder_bias"])
    if isinstance(estimator, BatchTopKSAE):  # MatryoshkaSAE too: its inference is the same
        n = arrays["components"].shape[0]
        tensors["threshold"] = np.broadcast_to(arrays["threshold"], (n,))
        extra = {}
        if isinstance(estimator, MatryoshkaSAE):
            extra["metadata"] = {"matryoshka_widths": np.cumsum(
                estimator.group_sizes_).tolist()}
        return "jumprelu", extra, tensors
    if isinstance(estimator, JumpReLUSAE):
        tensors["threshold"] = np.exp(arrays["log_threshold"])
        # SAELens' inference config has no field for these: kept for load_saelens.
        bandwidth = None if estimator.bandwidth is None else float(estimator.bandwidth)
        saved = {"k": int(estimator.k), "bandwidth": bandwidth,
                 "l0_coefficient": float(arrays["sparsity_coefficient"][0])}
        return "jumprelu", {"metadata": {"skmpsae_params": saved}}, tensors
    if isinstance(estimator, TopKSAE):
        return "topk", {"k": int(estimator.k), "rescale_acts_by_decoder_norm": False}, tensors
    return "standard", {}, tensors


def save_saelens(estimator: "BaseSAE", path: str | os.PathLike, *,
                 overwrite: bool = False) -> Path:
    """Write a fitted estimator as an SAELens folder that ``SAE.load_from_disk`` opens.

    :class:`~skmpsae.ReLUSAE` becomes ``"standard"``, :class:`~skmpsae.TopKSAE`
    ``"topk"``, :class:`~skmpsae.JumpReLUSAE` ``"jumprelu"`` (its thresholds;
    ``k``, ``bandwidth`` and the L0 weight in ``metadata.skmpsae_params``),
    :class:`~skmpsae.BatchTopKSAE` and :class:`~skmpsae.MatryoshkaSAE`
    ``"jumprelu"`` (their inference: one threshold on the activations), and
    :class:`~skmpsae.MatchingPursuitSAE` (``positive_code=True``)
    ``"matching_pursuit"`` with ``max_iterations=k`` and no early stop. The
    SAELens model gives the same codes and reconstructions.

    Parameters
    ----------
    estimator : BaseSAE
        A fitted ReLUSAE, JumpReLUSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE or
        MatchingPursuitSAE.
    path : str or path-like
        Folder to write ``cfg.json`` and ``sae_weights.safetensors`` into
        (created when missing).
    overwrite : bool, default=False
        Replace those two files when the folder already holds them.

    Returns
    -------
    path : pathlib.Path
        The folder.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.interop import save_saelens
    >>> X = load_digits().data / 16
    >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sorted(p.name for p in save_saelens(sae, Path(tmp) / "sae").iterdir())
    ['cfg.json', 'sae_weights.safetensors']
    """
    import json

    arch, extra, tensors = _export(estimator)
    version = sys.modules[__package__.split(".")[0]].__version__  # no import back
    metadata = {"exported_by": f"skmpsae {version}",
                "skmpsae_class": type(estimator).__name__, **extra.pop("metadata", {})}
    d_sae, d_in = tensors["W_dec"].shape
    cfg = {"architecture": arch, "d_in": int(d_in), "d_sae": int(d_sae),
           "dtype": dtype_name(tensors["W_dec"]), "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "none", **extra, "metadata": metadata}
    files = {CONFIG: json.dumps(cfg, indent=2).encode(), WEIGHTS: tensors_bytes(tensors)}
    return write_folder(path, files, _FMT, overwrite)
