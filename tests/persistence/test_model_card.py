"""The model card that save writes, the end-of-fit metrics it reports, and push_to_hub's folder."""

import json
import pickle
import sys
import types

import numpy as np
import pytest
from sklearn.datasets import load_digits

import skmpsae
from skmpsae import MatchingPursuitSAE, TopKSAE
from skmpsae.metrics import dead_fraction, l0, r2_score


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data / 16).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(digits):
    return MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(digits)


def test_fit_metrics_are_those_of_the_training_rows(fitted, digits):
    m = fitted.fit_metrics_
    assert m["n_samples_fit"] == len(digits) and m["metric_rows"] == len(digits)
    Z = fitted.transform(digits)
    assert m["r2"] == pytest.approx(r2_score(digits, fitted.inverse_transform(Z)), abs=1e-6)
    assert m["l0"] == pytest.approx(l0(Z)) and m["dead_fraction"] == pytest.approx(dead_fraction(Z))


def test_card_written_by_save(fitted, tmp_path):
    fitted.save(tmp_path / "digits-sae")
    card = (tmp_path / "digits-sae" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: skmpsae\n")
    m = fitted.fit_metrics_
    for text in ("`skmpsae.MatchingPursuitSAE`", "| latents (`n_components_`) | 64 |",
                 "| trained sparsity (`k`) | 4 |", f"{len(load_digits().data)} samples of 64",
                 f"| R² (explained variance) | {m['r2']:.4f} |", f"{m['l0']:.2f}",
                 f"skmpsae version | {skmpsae.__version__}", "| `max_iter` | `2` |",
                 'skmpsae.load("digits-sae")'):
        assert text in card, text
    loaded = skmpsae.load(tmp_path / "digits-sae")
    assert loaded.fit_metrics_ == m
    loaded.save(tmp_path / "again")  # the metrics survive a save / load / save
    assert (tmp_path / "again" / "README.md").read_text().count(f"{m['r2']:.4f}") == 1


def test_streamed_fit_and_converted_models(digits, tmp_path):
    sae = TopKSAE(n_components=32, k=4, max_iter=1, random_state=0).fit(
        digits[i:i + 500] for i in range(0, len(digits), 500))
    assert sae.fit_metrics_["n_samples_fit"] is None  # a generator does not say its length
    sae.save(tmp_path / "gen")
    assert "An unknown number of samples" in (tmp_path / "gen" / "README.md").read_text()
    del sae.fit_metrics_  # e.g. a model converted from SAELens
    sae.save(tmp_path / "conv")
    assert "Not recorded" in (tmp_path / "conv" / "README.md").read_text()


def test_malformed_metrics_are_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["fitted"]["fit_metrics_"]["r2"] = "high"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="fit_metrics_ is malformed"):
        skmpsae.load(tmp_path / "m")


def test_push_to_hub_uploads_the_saved_folder(fitted, digits, tmp_path, monkeypatch):
    calls = {}

    class FakeApi:  # nothing can reach a hub here: record what would be uploaded
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["create"] = (repo_id, kwargs)

        def upload_folder(self, *, repo_id, folder_path, commit_message, repo_type):
            import shutil

            shutil.copytree(folder_path, tmp_path / "uploaded")
            calls["upload"] = (repo_id, commit_message, repo_type)
            return "commit"

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=FakeApi))
    assert skmpsae.push_to_hub(fitted, "me/digits-sae", token="t") == "commit"
    assert calls["create"] == ("me/digits-sae", {"private": False, "exist_ok": True,
                                                 "repo_type": "model"})
    assert sorted(p.name for p in (tmp_path / "uploaded").iterdir()) == [
        "README.md", "arrays.safetensors", "config.json"]
    loaded = skmpsae.load(tmp_path / "uploaded")
    np.testing.assert_array_equal(loaded.transform(digits), fitted.transform(digits))
    with pytest.raises(ValueError, match="owner/name"):
        skmpsae.push_to_hub(fitted, "no-owner")


def test_fit_metrics_are_measured_on_first_read_as_of_the_fit(digits):
    """Later changes to the training array or the parameters do not reach the metrics."""
    X = digits.copy()
    sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    assert "_fit_metrics" not in vars(sae)  # not measured yet
    expected = MatchingPursuitSAE(n_components=64, k=4, max_iter=2,
                                  random_state=0).fit(digits).fit_metrics_
    X[:] = 0.0
    sae.set_params(k=12, positive_code=False)
    assert sae.fit_metrics_ == expected
    assert sae.k == 12 and not sae.positive_code  # the parameters set stay set
    assert "_pending_fit_metrics" not in vars(sae)  # the rows are let go once measured


def test_pickle_keeps_the_metrics_not_the_rows(digits):
    sae = TopKSAE(n_components=32, k=4, max_iter=1, random_state=0).fit(digits)
    state = sae.__getstate__()
    assert "_pending_fit_metrics" not in state and state["_fit_metrics"] == sae.fit_metrics_
    assert pickle.loads(pickle.dumps(sae)).fit_metrics_ == sae.fit_metrics_


def test_partial_fit_replaces_read_metrics(digits):
    sae = TopKSAE(n_components=32, k=4, max_iter=1, random_state=0).fit(digits)
    before = sae.fit_metrics_
    sae.partial_fit(digits[:400])
    after = sae.fit_metrics_
    assert after["metric_rows"] == 400 and after != before
