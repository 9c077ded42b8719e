"""Pickle/joblib round trips and save/load as safetensors + JSON."""

import json
import pickle

import joblib
import numpy as np
import pytest

import skmpsae
from skmpsae import MatchingPursuitSAE
from skmpsae.exceptions import DeviceFallbackWarning


@pytest.fixture(scope="module")
def model(digits):
    return MatchingPursuitSAE(k=4, n_components=48, max_iter=2, random_state=0).fit(digits)


def assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.bias_, b.bias_)
    assert a.get_params() == b.get_params()
    for name in ("n_iter_", "loss_curve_", "n_features_in_"):
        assert getattr(a, name) == getattr(b, name)
    np.testing.assert_array_equal(a.transform(X, n_steps=7), b.transform(X, n_steps=7))


def test_pickle_and_joblib(model, digits, tmp_path):
    assert_same_model(model, pickle.loads(pickle.dumps(model)), digits)
    joblib.dump(model, tmp_path / "m.joblib")
    restored = joblib.load(tmp_path / "m.joblib")
    assert_same_model(model, restored, digits)
    # Optimizer state travels with a pickle, so partial_fit continues the same way.
    model_copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(model_copy.partial_fit(digits).components_,
                                  pickle.loads(pickle.dumps(model)).partial_fit(digits).components_)


def test_pickled_tensors_are_on_cpu(model):
    state = model.__getstate__()
    assert "_cache" not in state
    for entry in state["_optimizer_state"]["state"].values():
        for value in entry.values():
            assert not hasattr(value, "device") or value.device.type == "cpu"


def test_save_load_round_trip(model, digits, tmp_path):
    model.save(tmp_path / "sae")
    assert sorted(p.name for p in (tmp_path / "sae").iterdir()) == [
        "README.md", "arrays.safetensors", "config.json"]
    assert_same_model(model, MatchingPursuitSAE.load(tmp_path / "sae"), digits)
    assert_same_model(model, skmpsae.load(tmp_path / "sae"), digits)
    model.save(tmp_path / "sae")  # overwriting an existing save works
    loaded = skmpsae.load(tmp_path / "sae")
    loaded.partial_fit(digits)  # a loaded model trains on
    assert loaded.n_iter_ == model.n_iter_ + 1


def test_save_keeps_feature_names(digits, tmp_path):
    import pandas as pd

    frame = pd.DataFrame(digits, columns=[f"px{i}" for i in range(64)])
    sae = MatchingPursuitSAE(k=2, n_components=16, max_iter=1, random_state=0).fit(frame)
    sae.save(tmp_path / "named")
    loaded = skmpsae.load(tmp_path / "named")
    assert list(loaded.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(loaded.transform(frame), sae.transform(frame))


def _edit_config(path, edit):
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.update(extra=1), "exactly the keys"),
        (lambda c: c["params"].update(surprise=3), "'params' must hold exactly"),
        (lambda c: c["params"].update(k=-2), "invalid parameter.*'k'"),
        (lambda c: c["params"].update(k="many"), "invalid parameter.*'k'"),
        (lambda c: c.update({"class": "Unknown"}), "unknown class 'Unknown'"),
        (lambda c: c.update(format_version=99), "unsupported format"),
        (lambda c: c["fitted"].update(n_components_=5), "array 'components' has shape"),
        (lambda c: c["fitted"].update(n_iter_=-1), "n_iter_ must be a non-negative integer"),
        (lambda c: c["fitted"].update(loss_curve_="low"), "loss_curve_ must be a list"),
        (lambda c: c["fitted"].pop("n_features_in_"), "'fitted' must hold the keys"),
    ],
)
def test_load_rejects_malformed_config(model, tmp_path, edit, match):
    model.save(tmp_path / "sae")
    _edit_config(tmp_path / "sae", edit)
    with pytest.raises(ValueError, match=match):
        skmpsae.load(tmp_path / "sae")


def test_load_rejects_bad_files(model, tmp_path):
    from safetensors.numpy import save_file

    with pytest.raises(ValueError, match="not a folder"):
        skmpsae.load(tmp_path / "missing")
    model.save(tmp_path / "sae")
    (tmp_path / "sae" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        skmpsae.load(tmp_path / "sae")
    model.save(tmp_path / "sae")
    save_file({"components": model.components_}, str(tmp_path / "sae" / "arrays.safetensors"))
    with pytest.raises(ValueError, match="must hold exactly"):
        skmpsae.load(tmp_path / "sae")
    model.save(tmp_path / "sae")
    bad = model.components_.copy()
    bad[0, 0] = np.nan
    arrays_file = str(tmp_path / "sae" / "arrays.safetensors")
    save_file({"components": bad, "bias": model.bias_}, arrays_file)
    with pytest.raises(ValueError, match="NaN or inf"):
        skmpsae.load(tmp_path / "sae")
    model.save(tmp_path / "sae")
    (tmp_path / "sae" / "arrays.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        skmpsae.load(tmp_path / "sae")


def test_save_unfitted_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MatchingPursuitSAE().save(tmp_path / "x")


def test_gpu_model_loads_on_cpu_with_warning(model, digits, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the fallback cannot happen here")
    model.save(tmp_path / "sae")
    _edit_config(tmp_path / "sae", lambda c: c["params"].update(device="cuda"))
    with pytest.warns(DeviceFallbackWarning, match="CUDA is not available"):
        loaded = skmpsae.load(tmp_path / "sae")
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.transform(digits), model.transform(digits))
    gpu_pickle = pickle.loads(pickle.dumps(model))
    gpu_pickle.device = "cuda"
    with pytest.warns(DeviceFallbackWarning):
        restored = pickle.loads(pickle.dumps(gpu_pickle))
    assert restored.device == "cpu"
