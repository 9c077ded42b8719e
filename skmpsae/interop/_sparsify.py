"""EleutherAI sparsify folders (``cfg.json`` + ``sae.safetensors``) to and from TopKSAE.

sparsify's ``SparseCoder`` stores ``encoder.weight`` (num_latents, d_in),
``encoder.bias`` (num_latents,), ``W_dec`` (num_latents, d_in) and ``b_dec``
(d_in,); it encodes ``TopK(ReLU((x - b_dec) @ encoder.weight.T +
encoder.bias))`` and decodes ``sum of top_acts * W_dec rows + b_dec``: the
codes of :class:`~skmpsae.TopKSAE`, with the same array layout.
"""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._common import (
    build_estimator,
    check_shape,
    fail,
    fitted_arrays,
    read_json,
    read_tensors,
    tensors_bytes,
    write_folder,
)

if TYPE_CHECKING:
    from .._base import BaseSAE

__all__ = ["load_sparsify", "save_sparsify"]

_FMT = "sparsify"
CONFIG = "cfg.json"
WEIGHTS = "sae.safetensors"


def load_sparsify(path: str | os.PathLike) -> "BaseSAE":
    """Load a sparse autoencoder that sparsify saved (``SparseCoder.save_to_disk``).

    Folders with ``activation="topk"`` that are autoencoders (not
    transcoders, no skip connection) become a :class:`~skmpsae.TopKSAE` with
    the same ``k``, encoder and decoder, hence the same codes. The decoder is
    kept as stored (sparsify normalises its rows to unit norm within float
    error); both files are read without pickle.

    Parameters
    ----------
    path : str or path-like
        Folder holding ``cfg.json`` and ``sae.safetensors`` (for a model saved
        per hookpoint, the hookpoint's folder).

    Returns
    -------
    estimator : TopKSAE
        A fitted estimator (``n_iter_ == 0``, no optimizer state).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import TopKSAE
    >>> from skmpsae.interop import load_sparsify, save_sparsify
    >>> X = load_digits().data / 16
    >>> sae = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_sparsify(sae, tmp)
    ...     loaded = load_sparsify(tmp)
    >>> loaded.k, bool((loaded.transform(X) == sae.transform(X)).all())
    (4, True)
    """
    from .._topk_sae import TopKSAE

    path = Path(path)
    cfg = read_json(path, CONFIG, _FMT)
    if cfg.get("activation", "topk") != "topk":
        fail(path, _FMT, f"activation={cfg['activation']!r}; only 'topk' has a skmpsae "
                         "counterpart (TopKSAE).")
    for key, why in (("transcode", "a transcoder predicts another layer's output"),
                     ("skip_connection", "a skip connection adds x @ W_skip.T")):
        if cfg.get(key):
            fail(path, _FMT, f"{key}=True: {why}, which no skmpsae SAE has.")
    d_in, k = cfg.get("d_in"), cfg.get("k")
    if not isinstance(d_in, int) or d_in < 1:
        fail(path, _FMT, f"{CONFIG} must give a positive integer d_in, got {d_in!r}.")
    arrays = read_tensors(path, WEIGHTS, _FMT)
    if np.ndim(arrays.get("encoder.weight")) != 2:
        fail(path, _FMT, f"the weights need a 2-D 'encoder.weight' (found {sorted(arrays)}).")
    W = check_shape(path, _FMT, arrays, "encoder.weight", (len(arrays["encoder.weight"]), d_in))
    n_latents = W.shape[0]
    if not isinstance(k, int) or not 1 <= k <= n_latents:
        fail(path, _FMT, f"k must be an integer in [1, {n_latents}], got {k!r}.")
    return build_estimator(TopKSAE, {"n_components": n_latents, "k": k}, {
        "components": check_shape(path, _FMT, arrays, "W_dec", (n_latents, d_in)),
        "bias": check_shape(path, _FMT, arrays, "b_dec", (d_in,)),
        "encoder": W,
        "encoder_bias": check_shape(path, _FMT, arrays, "encoder.bias", (n_latents,)),
    })


def save_sparsify(estimator: "BaseSAE", path: str | os.PathLike, *,
                  overwrite: bool = False) -> Path:
    """Write a fitted :class:`~skmpsae.TopKSAE` as a folder that sparsify opens.

    Only the per-sample TopK SAE has a sparsify form (BatchTopK's inference
    threshold and matching pursuit do not). sparsify's model gives the same
    top-k codes and reconstructions.

    Parameters
    ----------
    estimator : TopKSAE
        A fitted TopKSAE (not a BatchTopKSAE or MatryoshkaSAE).
    path : str or path-like
        Folder to write ``cfg.json`` and ``sae.safetensors`` into.
    overwrite : bool, default=False
        Replace those two files when the folder already holds them.

    Returns
    -------
    path : pathlib.Path
        The folder.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import TopKSAE
    >>> from skmpsae.interop import save_sparsify
    >>> X = load_digits().data / 16
    >>> sae = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sorted(p.name for p in save_sparsify(sae, tmp).iterdir())
    ['cfg.json', 'sae.safetensors']
    """
    from .._topk_sae import BatchTopKSAE, TopKSAE

    if isinstance(estimator, BatchTopKSAE):
        raise ValueError(f"sparsify's TopK keeps k latents per sample; a "
                         f"{type(estimator).__name__} thresholds activations instead and has "
                         "no sparsify form (save_saelens writes it as JumpReLU).")
    arrays = fitted_arrays(estimator, (TopKSAE,), _FMT)
    n_latents, d_in = arrays["components"].shape
    cfg = {"activation": "topk", "expansion_factor": max(1, n_latents // d_in),
           "normalize_decoder": True, "num_latents": int(n_latents), "k": int(estimator.k),
           "multi_topk": False, "skip_connection": False, "transcode": False,
           "d_in": int(d_in)}
    tensors = {"encoder.weight": arrays["encoder"], "encoder.bias": arrays["encoder_bias"],
               "W_dec": arrays["components"], "b_dec": arrays["bias"]}
    files = {CONFIG: json.dumps(cfg).encode(), WEIGHTS: tensors_bytes(tensors)}
    return write_folder(path, files, _FMT, overwrite)
