"""Embedders: raw images and texts in, embeddings out, as scikit-learn transformers.

The first step of a pipeline that ends in a sparse autoencoder::

    Pipeline([("embed", ClipEmbedder()), ("sae", MatchingPursuitSAE(k=32))])

Items are texts (``str``), PIL images, ``(H, W)`` or ``(H, W, C)`` arrays, or
:class:`pathlib.Path` image files. Models load through transformers (the
``embedders`` extra: ``pip install "skmpsae[embedders]"``), from a local
folder or the Hugging Face cache; transformers is imported only when a model
first runs.
"""

from ._dinov2 import Dinov2Embedder
from ._image import ImageEmbedder
from ._items import item_modality
from ._joint import ClipEmbedder, SiglipEmbedder
from ._mobilenet import convert_mobilenetv2, mobilenetv2_folder
from ._sentence import SentenceEmbedder

__all__ = ["ClipEmbedder", "Dinov2Embedder", "ImageEmbedder", "SentenceEmbedder", "SiglipEmbedder",
           "convert_mobilenetv2", "item_modality", "mobilenetv2_folder"]
