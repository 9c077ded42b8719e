"""DINOv2 (and ViT-like) image embeddings."""

from .._docs import with_shared_docs
from ._vision import BaseVisionEmbedder

__all__ = ["Dinov2Embedder"]


@with_shared_docs
class Dinov2Embedder(BaseVisionEmbedder):
    """DINOv2 embeddings of images: the class token, the mean patch token, or every patch.

    A scikit-learn transformer for the first step of a pipeline: images in,
    float32 rows out (``fit`` only checks). Images go through transformers'
    image processor for the model (PIL backend). Any transformers vision
    model that puts a class token (and possibly register tokens) before its
    patch tokens works, DINOv2 with registers included.

    Parameters
    ----------
    model : str or path-like, default="facebook/dinov2-small"
        A folder written by ``save_pretrained`` (model and image processor),
        or a Hugging Face Hub id, looked up in the local cache (and
        downloaded where the network allows it).
    batch_size : int, default=32
        Images run through the model at a time.
    {embedder_device}
    layer : int, default=None
        None: the final hidden states (after the final norm). An integer:
        that hidden state (0: patch embeddings, 1 to L: the blocks' outputs,
        before the final norm; negative counts from the end).
    tokens : {"cls", "mean", "all"}, default="cls"
        ``"cls"``: the class token; ``"mean"``: the mean of the patch tokens
        (register tokens excluded); ``"all"``: every patch token, one row
        each (the paper trains SAEs on all tokens): an image then gives
        ``n_patches`` rows; ``item_index(X)`` says which image each row
        comes from.
    {embedder_runtime}

    See Also
    --------
    ClipEmbedder : Images and texts in a joint space.

    Examples
    --------
    >>> from skmpsae.embedders import Dinov2Embedder
    >>> embed = Dinov2Embedder("facebook/dinov2-small", tokens="all")  # or a local folder
    >>> X = embed.fit_transform(images)                    # doctest: +SKIP
    >>> X.shape                                            # doctest: +SKIP
    (256 * len(images), 384)
    """

    def __init__(self, model="facebook/dinov2-small", *, batch_size=32, device="auto",
                 dtype="float32", normalize=True, local_files_only=False, layer=None,
                 tokens="cls", memory=None, verbose=1):
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

    def _load(self, transformers, source, state):
        state.model = self._pretrained(transformers.AutoModel, source)
        if not hasattr(state.model.config, "patch_size"):
            raise ValueError(
                f"model={source!r} is a {type(state.model).__name__} "
                f"(model_type {state.model.config.model_type!r}), not a vision transformer "
                "with patch tokens; Dinov2Embedder needs a model such as DINOv2."
            )
        state.image_processor = self._image_processor(transformers, source)

    def _embed_images(self, state, images):
        pixels = self._pixels(state, images)
        out = state.model(pixel_values=pixels, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        patch = state.model.config.patch_size
        n_patches = (pixels.shape[-2] // patch) * (pixels.shape[-1] // patch)
        # Sequence: class token, register tokens (if any), then the patches.
        return self._pool(hidden[:, 0], hidden[:, -n_patches:])

    def _output_dim(self, state):
        return state.model.config.hidden_size
