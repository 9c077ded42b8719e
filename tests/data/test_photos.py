"""The photo data set: crops of photos that ship offline, real MobileNetV2 embeddings, cached."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skmpsae.datasets import load_photo_crops, load_photo_embeddings
from skmpsae.embedders import ImageEmbedder


def test_crops_geometry_and_flips():
    crops = load_photo_crops(photos=["china", "flower"], scales=[1.0, 0.5], size=32)
    # 427 x 640: one 427 px square, then 2 x 3 squares of 214 px; each with its mirror
    assert len(crops.images) == 2 * (1 + 6) * 2
    assert crops.box[:4].tolist() == [[0, 106, 427], [0, 106, 427], [0, 0, 214], [0, 0, 214]]
    assert crops.box[12].tolist() == [213, 426, 214]  # the last crop ends at the border
    assert crops.flipped.tolist()[:4] == [False, True, False, True]
    assert_array_equal(crops.images[1], crops.images[0][:, ::-1])
    assert all(image.shape == (32, 32, 3) and image.dtype == np.uint8 for image in crops.images)
    from PIL import Image
    from sklearn.datasets import load_sample_image
    whole = np.asarray(Image.fromarray(load_sample_image("china.jpg")[:, 106:533]).resize(
        (32, 32), Image.Resampling.BICUBIC))
    assert_array_equal(crops.images[0], whole)
    assert len(load_photo_crops(photos=["china"], scales=[1.0], flip=False).images) == 1


def test_all_photos_are_bundled():
    pytest.importorskip("skimage", reason="scikit-image comes with the test extra")
    crops = load_photo_crops(scales=[1.0], flip=False, size=16)
    assert len(set(crops.photo)) == 15 and 15 <= len(crops.images) <= 20
    assert np.std([image.mean() for image in crops.images]) > 5  # different photos


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"photos=\['lena'\]: choose among"):
        load_photo_crops(photos=["lena"])
    with pytest.raises(ValueError, match=r"scales=\(0.0,\) must be numbers in \(0, 1\]"):
        load_photo_crops(scales=(0.0,))
    with pytest.raises(ValueError, match="size=4 must be an int"):
        load_photo_crops(size=4)
    with pytest.raises(ValueError, match="tokens='all' applies to the default embedder only"):
        load_photo_embeddings(ImageEmbedder(), tokens="all")


def test_embeddings_are_real_tokens_and_cached(mobilenetv2, tmp_path, monkeypatch):
    embedder = ImageEmbedder(mobilenetv2, tokens="all", verbose=0)
    args = dict(photos=["china"], scales=[1.0, 0.5], size=96, cache=tmp_path)
    data = load_photo_embeddings(embedder, **args)
    n_crops = 14
    assert len(data.crops.images) == n_crops
    # the processor resizes every crop to 224 px: a 7 x 7 feature map
    assert data.X.shape == (n_crops * 49, 1280)
    assert_array_equal(data.item_index, np.repeat(np.arange(n_crops), 49))
    assert data.grid[:49].tolist() == [[r, c] for r in range(7) for c in range(7)]
    direct = embedder.transform(data.crops.images[:2])
    assert_allclose(data.X[:98], direct, atol=1e-6)
    def model_runs(self, *args):
        raise RuntimeError("the model ran")

    monkeypatch.setattr(ImageEmbedder, "_embed", model_runs)
    again = load_photo_embeddings(embedder, **args)  # from the cache: the model does not run
    assert np.array_equal(again.X, data.X)
    assert_array_equal(again.crops.images[3], data.crops.images[3])
    # other output settings miss the cache
    with pytest.raises(RuntimeError, match="the model ran"):
        load_photo_embeddings(ImageEmbedder(mobilenetv2, tokens="mean", verbose=0), **args)
    with pytest.raises(RuntimeError, match="the model ran"):
        load_photo_embeddings(embedder, **{**args, "scales": [1.0]})


def test_default_embedder_and_no_cache(mobilenetv2, monkeypatch, tmp_path):
    import shutil

    shutil.copytree(mobilenetv2, tmp_path / "mobilenetv2-imagenet")
    monkeypatch.setenv("SKMPSAE_CACHE_DIR", str(tmp_path))
    data = load_photo_embeddings(tokens="pooled", photos=["flower"], scales=[1.0], size=64,
                                 cache=False)
    assert data.X.shape == (2, 1280) and data.grid is None
    assert_allclose(np.linalg.norm(data.X, axis=1), 1, rtol=1e-5)
    assert not (tmp_path / "photo_embeddings").exists()
