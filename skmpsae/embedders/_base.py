"""Shared machinery of the embedders: parameters, batching, caching, rows per item."""

import os
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_memory

from .._compat import Interval, StrOptions
from ._items import IMAGE, TEXT, check_items, items_cache_key, load_image
from ._loading import (
    import_torch,
    import_transformers,
    load_pretrained,
    model_source,
    quiet_loading,
)

__all__ = ["BaseEmbedder"]

# Runtime settings that do not change what an embedding is (kept out of cache keys).
_RUNTIME_PARAMS = ("batch_size", "device", "verbose", "memory", "local_files_only")

_DTYPES = ("float32", "float16", "bfloat16")

# verbose=1 shows the progress bar only once a run has lasted this long.
_PROGRESS_DELAY_S = 5.0


@dataclass
class _Loaded:
    """A model with its preprocessors, cached on the embedder (never pickled)."""

    key: tuple
    model: Any
    device: Any
    dtype: Any
    image_processor: Any = None
    tokenizer: Any = None
    extra: dict = field(default_factory=dict)


def _fingerprint(source):
    """A folder's files with their time and size, so a re-saved model misses the cache."""
    source, is_folder = model_source(source)
    if not is_folder:
        return source
    folder = Path(source).resolve()
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return str(folder), [(p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files]


def _embed_cached(spec, key, embedder, items, modalities):
    # Module-level so joblib.Memory can identify it; ``spec`` and ``key`` make the cache key.
    return embedder._embed(items, modalities)


class BaseEmbedder(TransformerMixin, BaseEstimator):
    """Raw items in, one float32 row per item (or per token) out; subclasses run the model."""

    _parameter_constraints: dict = {
        "model": [str, os.PathLike],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "dtype": [StrOptions(set(_DTYPES))],
        "normalize": ["boolean"],
        "local_files_only": ["boolean"],
        "layer": [Integral, None],
        "tokens": [StrOptions({"cls", "mean", "all"})],
        "memory": "no_validation",  # checked by sklearn's check_memory, as Pipeline does
        "verbose": ["verbose"],
    }
    _accepts = (IMAGE,)

    # -- scikit-learn API ---------------------------------------------------------------------

    def fit(self, X: object, y: None = None) -> "BaseEmbedder":
        """Check the parameters and the items; nothing is learned and no model is loaded.

        Parameters
        ----------
        X : sequence of items
            Texts (``str``), PIL images, ``(H, W)`` or ``(H, W, C)`` arrays
            (uint8, or float in [0, 1]), or :class:`pathlib.Path` image files.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The embedder.

        Examples
        --------
        Shown with :class:`SentenceEmbedder`, which runs offline; every
        embedder behaves the same.

        >>> from skmpsae.embedders import SentenceEmbedder
        >>> embed = SentenceEmbedder().fit(["A cat sleeps.", "Rates rose."])  # loads nothing
        >>> embed.fit([3.14])
        Traceback (most recent call last):
        ...
        TypeError: X[0]: items must be str (text), PIL images, ... got float.
        """
        self._validate_params()
        self._check(X)
        return self

    def transform(self, X: object) -> np.ndarray:
        """Embed the items, in order.

        The model loads at the first call and stays on the embedder. With
        ``memory``, the embeddings of a sequence of items already seen (same
        model, same output settings, same files and pixels) come from the
        cache and the model is not run, nor even loaded.

        Parameters
        ----------
        X : sequence of items
            Texts (``str``), PIL images, ``(H, W)`` or ``(H, W, C)`` arrays
            (uint8, or float in [0, 1]), or :class:`pathlib.Path` image files.

        Returns
        -------
        embeddings : ndarray of shape (n_rows, n_features), float32
            One row per item, in the order of ``X``; with ``tokens="all"``
            one row per token of each item, items one after the other (see
            ``item_index`` and ``modality``).

        Examples
        --------
        Shown with :class:`SentenceEmbedder`, which runs offline; every
        embedder behaves the same.

        >>> import numpy as np
        >>> from skmpsae.embedders import SentenceEmbedder
        >>> X = SentenceEmbedder(verbose=0).transform(["A cat sleeps.", "Rates rose."])
        >>> X.shape, X.dtype, np.linalg.norm(X, axis=1).round(3)
        ((2, 384), dtype('float32'), array([1., 1.], dtype=float32))
        """
        self._validate_params()
        items, modalities = self._check(X)
        memory = check_memory(self.memory)
        if getattr(memory, "location", "") is None:  # joblib.Memory(None): no caching
            return self._embed(items, modalities)
        cached = memory.cache(_embed_cached, ignore=["embedder", "items", "modalities"])
        return cached(self._cache_spec(), items_cache_key(items), self, items, modalities)

    def item_index(self, X: object) -> np.ndarray:
        """Position in ``X`` of the item each row of ``transform(X)`` comes from.

        ``arange(len(X))`` unless ``tokens="all"``, where each item gives one
        row per token. Nothing is embedded (a tokenizer or an image processor
        may run to count tokens).

        Parameters
        ----------
        X : sequence of items
            As for ``transform``.

        Returns
        -------
        index : ndarray of shape (n_rows,), int64
            For each row, the position of its item in ``X``.

        Examples
        --------
        >>> from skmpsae.embedders import SentenceEmbedder
        >>> texts = ["A cat.", "Two dogs bark."]
        >>> embed = SentenceEmbedder(tokens="all", verbose=0)
        >>> embed.item_index(texts)  # one row per token, special tokens included
        array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
        >>> embed.transform(texts).shape
        (11, 384)
        """
        self._validate_params()
        items, modalities = self._check(X)
        if self.tokens != "all":
            return np.arange(len(items))
        counts = self._rows_per_item(self._state(), items, modalities)
        return np.repeat(np.arange(len(items)), counts)

    def modality(self, X: object) -> np.ndarray:
        """Modality (``"image"`` or ``"text"``) of each row of ``transform(X)``.

        The labels :func:`skmpsae.metrics.modality_score` expects: the
        modality of each item, repeated once per row with ``tokens="all"``.

        Parameters
        ----------
        X : sequence of items
            As for ``transform``.

        Returns
        -------
        modality : ndarray of shape (n_rows,), dtype str
            ``"image"`` or ``"text"`` for each row.

        Examples
        --------
        Labels for :func:`skmpsae.metrics.modality_score`, aligned with the
        rows of ``transform(X)`` (a text-only embedder gives only ``"text"``):

        >>> from skmpsae.embedders import SentenceEmbedder
        >>> embed = SentenceEmbedder(tokens="all", verbose=0)
        >>> embed.modality(["A cat.", "Hi."])
        array(['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text',
               'text'], dtype='<U4')
        >>> len(embed.modality(["A cat.", "Hi."])) == len(embed.transform(["A cat.", "Hi."]))
        True
        """
        _, modalities = self._check(X)
        return modalities[self.item_index(X)]

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Get the names of the output columns: the class name in lower case and a number.

        Parameters
        ----------
        input_features : None
            Ignored (the input is raw items, not features).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per embedding dimension (the model is loaded to know it).

        Examples
        --------
        >>> from skmpsae.embedders import SentenceEmbedder
        >>> names = SentenceEmbedder(verbose=0).get_feature_names_out()
        >>> len(names), names[0]
        (384, 'sentenceembedder0')
        """
        prefix = type(self).__name__.lower()
        dim = self._output_dim(self._state())
        return np.asarray([f"{prefix}{i}" for i in range(dim)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = TEXT in self._accepts
        tags.requires_fit = False  # nothing is learned: transform works without fit
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_loaded", None)  # a model is reloaded where the embedder is unpickled
        return state

    # -- hooks for subclasses -------------------------------------------------------------------

    def _source(self):
        """The folder or Hub id to load (a subclass may map a name to a packaged copy)."""
        return self.model

    def _load(self, transformers, source, state):
        """Fill ``state.model`` and its preprocessors."""
        raise NotImplementedError

    def _check_request(self, modalities):
        """Reject parameter combinations that do not apply to these items (before loading)."""

    def _embed_images(self, state, images):
        """Embeddings of a list of RGB PIL images: a (b, rows, dim) tensor or a list."""
        raise NotImplementedError

    def _embed_texts(self, state, texts):
        """Embeddings of a list of texts: a (b, rows, dim) tensor or a list of (rows, dim)."""
        raise NotImplementedError

    def _output_dim(self, state):
        raise NotImplementedError

    def _rows_per_item(self, state, items, modalities):
        """Rows each item gives with ``tokens="all"``."""
        raise NotImplementedError

    # -- shared helpers ---------------------------------------------------------------------------

    def _check(self, X):
        items, modalities = check_items(X, self._accepts, type(self).__name__)
        self._check_request(modalities)
        return items, modalities

    def _cache_spec(self):
        params = self.get_params()
        for name in _RUNTIME_PARAMS:
            params.pop(name)
        params["model"] = _fingerprint(self._source())
        return type(self).__qualname__, params

    def _state(self):
        """The loaded model, loaded now if the model, device or dtype changed."""
        from .._device import resolve_device

        torch = import_torch()
        source = self._source()
        device = resolve_device(self.device)
        dtype = getattr(torch, self.dtype)
        key = (os.fspath(source), str(device), self.dtype, self.local_files_only)
        state = getattr(self, "_loaded", None)
        if state is None or state.key != key:
            state = _Loaded(key=key, model=None, device=device, dtype=dtype)
            transformers = import_transformers()
            with quiet_loading(transformers, quiet=self.verbose < 2):
                self._load(transformers, source, state)
            state.model.eval().to(device=device, dtype=dtype)
            self._loaded = state
        self._check_layer(state)  # layer may have changed since the model loaded
        return state

    def _pretrained(self, loader, source, **kwargs):
        return load_pretrained(loader, source, local_files_only=self.local_files_only,
                               owner=type(self).__name__, **kwargs)

    def _n_layers(self, state):
        raise NotImplementedError

    def _check_layer(self, state):
        if self.layer is None:
            return
        n_layers = self._n_layers(state)
        if not -(n_layers + 1) <= self.layer <= n_layers:
            raise ValueError(
                f"layer={self.layer} is out of range: this model has {n_layers} layers, so "
                f"layer is 0 (embeddings) to {n_layers} (last block), or -{n_layers + 1} to -1, "
                "or None for the final output."
            )

    def _batches(self, items, modalities):
        """Index lists of one modality each: images in order, texts by length (less padding)."""
        images = [i for i in range(len(items)) if modalities[i] == IMAGE]
        texts = sorted((i for i in range(len(items)) if modalities[i] == TEXT),
                       key=lambda i: -len(items[i]))
        size = self.batch_size
        return [group[start:start + size] for group in (images, texts)
                for start in range(0, len(group), size)]

    def _embed(self, items, modalities):
        torch = import_torch()
        state = self._state()
        rows = [None] * len(items)
        with torch.inference_mode():
            for index in _progress(self._batches(items, modalities), self.verbose,
                                   type(self).__name__):
                if modalities[index[0]] == IMAGE:
                    out = self._embed_images(state, [load_image(items[i], i) for i in index])
                else:
                    out = self._embed_texts(state, [items[i] for i in index])
                for i, block in zip(index, self._finish(out), strict=True):
                    rows[i] = block
        return np.concatenate(rows, axis=0)

    def _finish(self, out):
        """Per-item float32 arrays, rows scaled to unit norm with ``normalize``."""
        torch = import_torch()
        blocks = list(out)
        sizes = [len(block) for block in blocks]
        rows = torch.cat(blocks).float()
        if self.normalize:
            rows = torch.nn.functional.normalize(rows, dim=-1)
        return np.split(rows.cpu().numpy(), np.cumsum(sizes)[:-1])


def _progress(iterable, verbose, name):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=name, unit="batch", disable=not verbose, leave=False,
                delay=0 if verbose >= 2 else _PROGRESS_DELAY_S)
