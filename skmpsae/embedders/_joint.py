"""Image-text models with a joint embedding space: CLIP and SigLIP."""

from .._docs import with_shared_docs
from ._items import IMAGE, TEXT
from ._vision import BaseVisionEmbedder

__all__ = ["ClipEmbedder", "SiglipEmbedder"]


# The parameters that CLIP and SigLIP document alike.
_JOINT_PARAMS = """\
    batch_size : int, default=32
        Items run through the model at a time; images and texts go in
        separate batches, texts grouped by length (less padding), and the
        output keeps the order of ``X``.
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Precision the model runs in; the output is float32 in any case.
    normalize : bool, default=True
        Scale each output row to unit Euclidean norm (the cosine geometry
        of the joint space).
    local_files_only : bool, default=False
        Never try to download: load from a folder or the local cache only.
    layer : int, default=None
        None: the final output, the joint image-text space. An integer: that
        hidden state of the image encoder (0: patch embeddings, 1 to L: the
        blocks' outputs, before the final norm; negative counts from the
        end). Texts only have the joint-space embedding (``layer=None``).
"""


class _JointEmbedder(BaseVisionEmbedder):
    """Images and texts into one space; subclasses say how each tower's output is pooled."""

    _accepts = (IMAGE, TEXT)
    _text_padding = "longest"
    _text_inputs = ("input_ids", "attention_mask")

    def __init__(self, model, *, batch_size=32, device="auto", dtype="float32", normalize=True,
                 local_files_only=False, layer=None, tokens="cls", memory=None, verbose=1):
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

    def _check_request(self, modalities):
        if self.layer is not None and TEXT in modalities:
            raise ValueError(
                f"layer={self.layer} selects a hidden state of the image encoder, but X holds "
                "texts, which only have the joint-space embedding: use layer=None for texts "
                "(or embed images and texts separately)."
            )

    def _load(self, transformers, source, state):
        state.model = self._pretrained(transformers.AutoModel, source)
        missing = [name for name in self._needs if not hasattr(state.model, name)]
        if missing:
            raise ValueError(
                f"model={source!r} is a {type(state.model).__name__} "
                f"(model_type {state.model.config.model_type!r}), not a {self._family} model "
                f"(it lacks {', '.join(missing)}); use the embedder for its family."
            )
        state.image_processor = self._image_processor(transformers, source)
        state.tokenizer = self._pretrained(transformers.AutoTokenizer, source)

    def _embed_images(self, state, images):
        pixels = self._pixels(state, images)
        out = state.model.vision_model(pixel_values=pixels,
                                       output_hidden_states=self.layer is not None)
        patch = state.model.config.vision_config.patch_size
        n_patches = (pixels.shape[-2] // patch) * (pixels.shape[-1] // patch)
        if self.layer is None:
            if self.tokens == "cls":
                return self._image_embedding(state.model, out)[:, None]
            patches = out.last_hidden_state[:, -n_patches:]
            return self._pool(None, self._project_tokens(state.model, patches))
        hidden = out.hidden_states[self.layer]
        return self._pool(hidden[:, 0], hidden[:, -n_patches:])

    def _embed_texts(self, state, texts):
        text_config = state.model.config.text_config
        max_length = min(state.tokenizer.model_max_length, text_config.max_position_embeddings)
        encoded = state.tokenizer(texts, padding=self._text_padding, truncation=True,
                                  max_length=max_length, return_tensors="pt")
        encoded = {name: value.to(state.device) for name, value in encoded.items()
                   if name in self._text_inputs}
        out = state.model.text_model(**encoded)
        return self._text_embedding(state.model, out)[:, None]


@with_shared_docs(joint_params=_JOINT_PARAMS)
class ClipEmbedder(_JointEmbedder):
    """CLIP embeddings of images and texts, in their joint space.

    A scikit-learn transformer for the first step of a pipeline: raw images
    and texts in, one float32 row per item out (``fit`` only checks). A mixed
    list is embedded in order; :func:`item_modality` (or ``modality(X)``)
    gives each row's modality for :func:`skmpsae.metrics.modality_score`.
    Images go through transformers' image processor for the model (PIL
    backend), texts through its tokenizer (truncated to the model's context).

    Parameters
    ----------
    model : str or path-like, default="openai/clip-vit-base-patch32"
        A folder written by ``save_pretrained`` (model, image processor and
        tokenizer), or a Hugging Face Hub id, looked up in the local cache
        (and downloaded where the network allows it).
    {joint_params}
    tokens : {"cls", "mean", "all"}, default="cls"
        For images, which tokens give the embedding.
        ``"cls"``: the class token, which CLIP projects into the joint space.
        ``"mean"``: the mean of the patch tokens. ``"all"``: every patch
        token, one row each (the paper trains SAEs on all tokens): an image
        then gives ``n_patches`` rows and a text one row; ``item_index(X)``
        and ``modality(X)`` say which item and modality each row comes from.
        With ``layer=None``, patch tokens go through the same final norm and
        projection as the class token.
    {embedder_runtime}

    See Also
    --------
    SiglipEmbedder : SigLIP, the same API.
    skmpsae.metrics.modality_score : Which latents fire for images, texts or both.

    Examples
    --------
    >>> from skmpsae.embedders import ClipEmbedder
    >>> embed = ClipEmbedder("openai/clip-vit-base-patch32")   # or a local folder
    >>> X = embed.fit_transform([image, "a photo of a cat"])   # doctest: +SKIP
    >>> X.shape                                                # doctest: +SKIP
    (2, 512)
    """

    _family = "CLIP"
    _needs = ("vision_model", "text_model", "visual_projection", "text_projection")

    def __init__(self, model="openai/clip-vit-base-patch32", *, batch_size=32, device="auto",
                 dtype="float32", normalize=True, local_files_only=False, layer=None,
                 tokens="cls", memory=None, verbose=1):
        super().__init__(model, batch_size=batch_size, device=device, dtype=dtype,
                         normalize=normalize, local_files_only=local_files_only, layer=layer,
                         tokens=tokens, memory=memory, verbose=verbose)

    def _image_embedding(self, model, out):
        return model.visual_projection(out.pooler_output)  # pooler_output: normed class token

    def _project_tokens(self, model, patches):
        return model.visual_projection(model.vision_model.post_layernorm(patches))

    def _text_embedding(self, model, out):
        return model.text_projection(out.pooler_output)

    def _output_dim(self, state):
        config = state.model.config
        return config.projection_dim if self.layer is None else config.vision_config.hidden_size


@with_shared_docs(joint_params=_JOINT_PARAMS)
class SiglipEmbedder(_JointEmbedder):
    """SigLIP embeddings of images and texts, in their joint space.

    A scikit-learn transformer for the first step of a pipeline, with the API
    of :class:`ClipEmbedder`. SigLIP has no class token: its image embedding
    is the output of an attention-pooling head over the patch tokens, and its
    texts are padded to the model's full context without an attention mask,
    as it was trained. Loading a SigLIP tokenizer needs ``sentencepiece`` and
    ``protobuf`` (in the ``embedders`` extra).

    Parameters
    ----------
    model : str or path-like, default="google/siglip-base-patch16-224"
        A folder written by ``save_pretrained`` (model, image processor and
        tokenizer), or a Hugging Face Hub id, looked up in the local cache
        (and downloaded where the network allows it).
    {joint_params}
    tokens : {"cls", "mean", "all"}, default="cls"
        For images, which tokens give the embedding.
        ``"cls"``: the pooled embedding, from the attention-pooling head
        (SigLIP has no class token; with a hidden ``layer``, use ``"mean"``
        or ``"all"``).
        ``"mean"``: the mean of the patch tokens. ``"all"``: every patch
        token, one row each (the paper trains SAEs on all tokens): an image
        then gives ``n_patches`` rows and a text one row; ``item_index(X)``
        and ``modality(X)`` say which item and modality each row comes from.
        With ``layer=None``, patch tokens are the final normed hidden states
        (the pooling head does not apply per token).
    {embedder_runtime}

    See Also
    --------
    ClipEmbedder : CLIP, the same API.

    Examples
    --------
    >>> from skmpsae.embedders import SiglipEmbedder
    >>> embed = SiglipEmbedder("google/siglip-base-patch16-224")  # or a local folder
    >>> X = embed.fit_transform([image, "a photo of a cat"])      # doctest: +SKIP
    >>> X.shape                                                   # doctest: +SKIP
    (2, 768)
    """

    _family = "SigLIP"
    _needs = ("vision_model", "text_model")
    # SigLIP was trained on texts padded to the full context, without an attention mask (its
    # pad token is its end token, and the text is pooled at the last position).
    _text_padding = "max_length"
    _text_inputs = ("input_ids",)

    def __init__(self, model="google/siglip-base-patch16-224", *, batch_size=32, device="auto",
                 dtype="float32", normalize=True, local_files_only=False, layer=None,
                 tokens="cls", memory=None, verbose=1):
        super().__init__(model, batch_size=batch_size, device=device, dtype=dtype,
                         normalize=normalize, local_files_only=local_files_only, layer=layer,
                         tokens=tokens, memory=memory, verbose=verbose)

    def _check_request(self, modalities):
        super()._check_request(modalities)
        if self.layer is not None and self.tokens == "cls":
            raise ValueError(
                f"tokens='cls' with layer={self.layer}: SigLIP has no class token, only the "
                "pooling head after the last layer; use tokens='mean' or 'all' with a hidden "
                "layer, or layer=None."
            )

    def _image_embedding(self, model, out):
        if out.pooler_output is None:
            raise ValueError("This SigLIP vision model has no pooling head "
                             "(vision_use_head=False): use tokens='mean' or 'all'.")
        return out.pooler_output

    def _project_tokens(self, model, patches):
        return patches  # last_hidden_state is already normed; there is no projection

    def _text_embedding(self, model, out):
        return out.pooler_output  # the text head is part of SigLIP's text model

    def _output_dim(self, state):
        return state.model.config.vision_config.hidden_size
