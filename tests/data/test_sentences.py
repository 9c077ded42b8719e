"""The offline sentence corpus and its MiniLM embeddings (skmpsae.datasets)."""

import numpy as np
import pytest

from skmpsae.datasets import load_docstring_sentences, load_sentence_embeddings
from skmpsae.embedders import SentenceEmbedder

MODULES = ["json", "csv", "textwrap"]


def test_corpus_is_prose_deduplicated_and_deterministic():
    data = load_docstring_sentences(modules=MODULES)
    assert len(data.texts) == len(data.source) > 20
    assert len({t.lower() for t in data.texts}) == len(data.texts)
    for text in data.texts:
        assert 25 <= len(text) <= 250 and text[0].isupper() and text[-1] in ".!?"
        assert ">>>" not in text and "=" not in text and " : " not in text
    assert all(s.split(".")[0] in MODULES for s in data.source)
    again = load_docstring_sentences(modules=MODULES)
    assert again.texts == data.texts and list(again.source) == list(data.source)


def test_draw_is_seeded_sorted_and_bounded():
    full = load_docstring_sentences(modules=MODULES)
    a = load_docstring_sentences(10, modules=MODULES, random_state=1)
    b = load_docstring_sentences(10, modules=MODULES, random_state=1)
    c = load_docstring_sentences(10, modules=MODULES, random_state=2)
    assert a.texts == b.texts and a.texts != c.texts
    positions = [full.texts.index(t) for t in a.texts]
    assert positions == sorted(positions)
    with pytest.raises(ValueError, match=rf"n_sentences=100000 exceeds the {len(full.texts)}"):
        load_docstring_sentences(100000, modules=MODULES)


@pytest.mark.parametrize("modules", ["json", [1, 2]])
def test_bad_modules_are_refused(modules):
    with pytest.raises(ValueError, match="modules must be a list of module names"):
        load_docstring_sentences(modules=modules)


def test_missing_modules_are_skipped():
    data = load_docstring_sentences(modules=["json", "no_such_module_skmpsae"])
    assert len(data.texts) > 5 and all(s.startswith("json.") for s in data.source)


def test_default_corpus_is_large():
    assert len(load_docstring_sentences().texts) > 20000


def test_embeddings_are_real_unit_norm_and_cached(tmp_path):
    data = load_sentence_embeddings(12, modules=MODULES, cache=tmp_path)
    assert data.X.shape == (12, 384) and data.X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(data.X, axis=1), 1, atol=1e-5)
    direct = SentenceEmbedder(verbose=0).transform(data.texts)
    np.testing.assert_allclose(data.X, direct, atol=1e-6)
    entries = sorted(p for p in tmp_path.rglob("output.pkl"))
    assert len(entries) == 1
    again = load_sentence_embeddings(12, modules=MODULES, cache=tmp_path)
    np.testing.assert_array_equal(again.X, data.X)
    assert sorted(p for p in tmp_path.rglob("output.pkl")) == entries  # loaded, not embedded again


def test_user_embedder_is_not_mutated(tmp_path):
    embedder = SentenceEmbedder(verbose=0, batch_size=4)
    load_sentence_embeddings(4, embedder=embedder, modules=MODULES, cache=tmp_path)
    assert embedder.memory is None and embedder.get_params()["batch_size"] == 4


def test_no_cache_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SKMPSAE_CACHE_DIR", str(tmp_path))
    load_sentence_embeddings(3, modules=MODULES, cache=False)
    assert not any(tmp_path.iterdir())


def test_main_job_on_sentences_and_photos(tmp_path, monkeypatch, capsys):
    from sklearn.utils import Bunch

    from skmpsae import datasets
    from skmpsae._cli import main

    monkeypatch.setenv("SKMPSAE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["--k", "2", "--max-iter", "1", "--n-components", "32", "--sae", "MP-SAE", "TopK"]
    assert main(["--data", "sentences", "--n-sentences", "150", *args,
                 "--plot", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert "all-MiniLM-L6-v2 embeddings of 150 docstring sentences" in out
    assert "Equal mean L0" in out and (tmp_path / "s.png").is_file()
    # Photos: the loader is tested in test_photos.py; here only its wiring into the job.
    rows = np.random.default_rng(0).random((120, 16), dtype=np.float32)
    monkeypatch.setattr(datasets, "load_photo_embeddings", lambda: Bunch(X=rows))
    assert main(["--data", "photos", *args, "--plot", str(tmp_path / "p.png")]) == 0
    assert "MobileNetV2 feature-map cells of photo crops (120 rows" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="'sentences', 'photos'"):
        main(["--data", "nothing.csv"])
