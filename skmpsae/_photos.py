"""Real photos that ship offline, cut into crops, and their embeddings, cached.

scikit-learn ships two photos (``load_sample_images``) and scikit-image's
wheel bundles a few more in ``skimage.data`` (the ones listed here need no
download). Crops at several scales, and their mirror images, turn 15 photos
into a few hundred images: enough spatial tokens of a real vision model to
train and look at a small SAE on a laptop.
"""

import os
from collections.abc import Sequence
from numbers import Real

import numpy as np
from sklearn.utils import Bunch

from ._docs import with_shared_docs

__all__ = ["load_photo_crops", "load_photo_embeddings"]

_SKIMAGE_HINT = 'install scikit-image (the embedders extra: pip install "skmpsae[embedders]")'
# Bundled in scikit-image's wheel (no pooch download): colour photos, then grey ones.
_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                   "immunohistochemistry", "camera", "coins", "brick", "grass", "gravel", "moon")
PHOTOS = ("china", "flower", *_SKIMAGE_PHOTOS)
# Bumped when the crops change, so that cached embeddings of old crops are not reused.
_CROPS_VERSION = 1


def _photo(name):
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    try:
        import skimage.data
    except ImportError as exc:
        raise ImportError(f"The photo {name!r} comes from scikit-image; {_SKIMAGE_HINT}.") from exc
    image = getattr(skimage.data, name)()
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def _check_args(photos, scales, size):
    photos = PHOTOS if photos is None else tuple(photos)
    unknown = sorted(set(photos) - set(PHOTOS))
    if unknown or not photos:
        raise ValueError(f"photos={list(photos)!r}: choose among {list(PHOTOS)} (or None: all).")
    scales = tuple(scales)
    if not scales or not all(isinstance(s, Real) and not isinstance(s, bool) and 0 < s <= 1
                             for s in scales):
        raise ValueError(f"scales={scales!r} must be numbers in (0, 1]: the crop side as a "
                         "share of the photo's shorter side.")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r} must be an int of at least 8 (pixels).")
    return photos, scales


def _starts(length, side):
    """As many crops as fit along a side, spread evenly over it (one: centred)."""
    count = max(1, round(length / side))
    if count == 1:
        return [(length - side) // 2]
    return np.linspace(0, length - side, count).round().astype(int).tolist()


def _crops_of(image, scales, size):
    from PIL import Image

    height, width = image.shape[:2]
    for scale in scales:
        side = max(1, int(round(scale * min(height, width))))
        tops, lefts = _starts(height, side), _starts(width, side)
        for top in tops:
            for left in lefts:
                crop = Image.fromarray(image[top:top + side, left:left + side])
                crop = crop.resize((size, size), Image.Resampling.BICUBIC)
                yield np.asarray(crop), (top, left, side)


def load_photo_crops(*, photos: Sequence | None = None, scales: Sequence[float] = (1.0, 0.5),
                     flip: bool = True, size: int = 224) -> Bunch:
    """Square crops of real photos at several scales, with their mirror images.

    At each scale ``s`` the crop side is ``s`` times the photo's shorter
    side, and as many crops as fit along each side are spread evenly over
    the photo (``s = 1``: one centred square for a landscape photo); each
    crop is resized to ``size`` pixels (bicubic). With ``flip`` every crop
    is followed by its left-right mirror image.

    Parameters
    ----------
    photos : sequence of str, default=None
        Names among :data:`PHOTOS`: scikit-learn's ``"china"`` and
        ``"flower"``, and scikit-image's bundled photos (``"astronaut"``,
        ``"chelsea"`` (a cat), ``"coffee"``, ``"rocket"``,
        ``"hubble_deep_field"``, ``"retina"``, ``"immunohistochemistry"``,
        and the grey ``"camera"``, ``"coins"``, ``"brick"``, ``"grass"``,
        ``"gravel"``, ``"moon"``, turned into RGB). None: all 15.
    scales : sequence of float, default=(1.0, 0.5)
        Crop sides as shares of the shorter side, in (0, 1].
    flip : bool, default=True
        Add the left-right mirror image of each crop.
    size : int, default=224
        Side in pixels of the returned crops.

    Returns
    -------
    crops : :class:`~sklearn.utils.Bunch`
        ``images``: list of (size, size, 3) uint8 arrays; ``photo``: the
        photo name of each crop; ``box``: (n, 3) int array of each crop's
        top, left and side in its photo's pixels; ``flipped``: bool array.

    Examples
    --------
    >>> from skmpsae.datasets import load_photo_crops
    >>> crops = load_photo_crops(photos=["china", "flower"], scales=[1.0, 0.5], size=64)
    >>> len(crops.images), crops.images[0].shape, crops.photo[:2].tolist()
    (28, (64, 64, 3), ['china', 'china'])
    >>> crops.box[2].tolist(), bool(crops.flipped[1])  # 427 px photos: 214 px crops at 0.5
    ([0, 0, 214], True)
    """
    photos, scales = _check_args(photos, scales, size)
    images, names, boxes, flipped = [], [], [], []
    for name in photos:
        for crop, box in _crops_of(_photo(name), scales, size):
            for mirror in ((False, True) if flip else (False,)):
                images.append(np.ascontiguousarray(crop[:, ::-1]) if mirror else crop)
                names.append(name)
                boxes.append(box)
                flipped.append(mirror)
    return Bunch(images=images, photo=np.array(names), box=np.array(boxes, dtype=np.int64),
                 flipped=np.array(flipped))


def _embed_crops(spec, crop_args, embedder):
    # Module-level for joblib.Memory; ``spec`` (model files, output settings) and
    # ``crop_args`` make the cache key, the embedder itself is ignored.
    crop_args = {name: value for name, value in crop_args.items() if name != "version"}
    crops = load_photo_crops(**crop_args)
    X = embedder.transform(crops.images)
    index = embedder.item_index(crops.images)
    grid = embedder.token_grid(crops.images) if getattr(embedder, "tokens", None) == "all" \
        and hasattr(embedder, "token_grid") else None
    return X, index, grid, crops


@with_shared_docs
def load_photo_embeddings(embedder: object = None, *, tokens: str | None = None,
                          photos: Sequence | None = None,
                          scales: Sequence[float] = (1.0, 0.5), flip: bool = True,
                          size: int = 224, cache: "str | os.PathLike | None" = None) -> Bunch:
    """Embed the crops of :func:`load_photo_crops` with a vision model, cached on disk.

    By default the real ImageNet MobileNetV2 (:class:`skmpsae.embedders.
    ImageEmbedder`) with one row per cell of its 7 x 7 feature map: about
    8,000 rows of 1280 features for the 160 default crops. The first call
    embeds (seconds to a minute on a CPU); the result is stored under the
    cache folder, keyed by the model's files, the embedder's output
    settings and the crop parameters, so later calls load it.

    Parameters
    ----------
    embedder : embedder, default=None
        Any skmpsae image embedder; None: ``ImageEmbedder(tokens=tokens)``.
    tokens : {"all", "pooled", "mean"}, default=None
        For the default embedder: ``"all"`` (None) gives one row per grid
        cell, ``"pooled"`` or ``"mean"`` one row per crop. Leave it None
        when passing an ``embedder`` (its own ``tokens`` apply).
    photos : sequence of str, default=None
        Photos to crop, as for :func:`load_photo_crops` (None: all 15).
    scales : sequence of float, default=(1.0, 0.5)
        Crop sides as shares of the shorter side.
    flip : bool, default=True
        Add the mirror image of each crop.
    size : int, default=224
        Side of the crops in pixels (the model's processor then resizes
        them to its own input size).
    {dataset_cache}

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X``: (n_rows, n_features) float32; ``item_index``: the crop of
        each row; ``grid``: (n_rows, 2) grid cell of each row (None unless
        one row per cell); ``crops``: the :func:`load_photo_crops` Bunch
        (``crops.images[item_index[i]]`` is the image behind row ``i``).

    Examples
    --------
    >>> from skmpsae.datasets import load_photo_embeddings
    >>> data = load_photo_embeddings(photos=["china"], scales=[1.0])
    >>> data.X.shape, data.item_index[[0, 48, 49]].tolist(), data.grid[50].tolist()
    ((98, 1280), [0, 0, 1], [0, 1])
    >>> load_photo_embeddings(photos=["china"], tokens="pooled", scales=[1.0]).X.shape
    (2, 1280)
    """
    import joblib

    from .embedders import ImageEmbedder
    from .embedders._cache import cache_dir

    if embedder is None:
        embedder = ImageEmbedder(tokens="all" if tokens is None else tokens, verbose=0)
    elif tokens is not None:
        raise ValueError(f"tokens={tokens!r} applies to the default embedder only; set "
                         "tokens on the embedder you pass instead.")
    _check_args(photos, scales, size)
    crop_args = {"photos": photos, "scales": tuple(scales), "flip": bool(flip), "size": size,
                 "version": _CROPS_VERSION}
    location = None if cache is False else os.fspath(cache_dir(cache) / "photo_embeddings")
    embed = joblib.Memory(location, verbose=0).cache(_embed_crops, ignore=["embedder"])
    X, index, grid, crops = embed(embedder._cache_spec(), crop_args, embedder)
    return Bunch(X=X, item_index=index, grid=grid, crops=crops)
