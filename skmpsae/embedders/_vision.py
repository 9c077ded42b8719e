"""What the image embedders share: image processors, pixels, patch grids, token pooling."""

import numpy as np

from ._base import BaseEmbedder
from ._items import IMAGE
from ._loading import import_pil

__all__ = ["BaseVisionEmbedder"]


class BaseVisionEmbedder(BaseEmbedder):
    """An embedder whose images go through a transformers image processor and a vision model."""

    def _image_processor(self, transformers, source):
        # transformers' PIL processors: the torchvision ones need a torchvision that matches
        # torch, and PIL gives the same pixels everywhere.
        major = int(transformers.__version__.split(".")[0])
        backend = {"backend": "pil"} if major >= 5 else {"use_fast": False}
        return self._pretrained(transformers.AutoImageProcessor, source, **backend)

    def _vision_config(self, state):
        config = state.model.config
        return getattr(config, "vision_config", config)

    def _n_layers(self, state):
        return self._vision_config(state).num_hidden_layers

    def _pixels(self, state, images):
        pixels = state.image_processor(images=images, return_tensors="pt")["pixel_values"]
        return pixels.to(device=state.device, dtype=state.dtype)

    def _blank_pixels(self, state):
        """Pixels of one blank image: the processor's output size without a real image."""
        return self._pixels(state, [import_pil().new("RGB", (64, 64))])

    def _n_patches(self, state):
        """Patch tokens per image: the processor's output size over the patch size."""
        if "n_patches" not in state.extra:
            height, width = self._blank_pixels(state).shape[-2:]
            patch = self._vision_config(state).patch_size
            state.extra["n_patches"] = (height // patch) * (width // patch)
        return state.extra["n_patches"]

    def _rows_per_item(self, state, items, modalities):
        """Rows each item gives with ``tokens="all"``: an image its patch tokens, a text one."""
        n_patches = self._n_patches(state) if IMAGE in modalities else 0
        return np.where(modalities == IMAGE, n_patches, 1)

    def _pool(self, cls, patches):
        """(b, rows, dim) for ``tokens``: the CLS token, the mean of the patches, or all."""
        if self.tokens == "cls":
            return cls[:, None]
        if self.tokens == "mean":
            return patches.float().mean(dim=1, keepdim=True)
        return patches
