"""save never destroys what is not its own; load trusts nothing (issue 13)."""

import json
import os
import threading

import numpy as np
import pytest

import skmpsae
from skmpsae import MatchingPursuitSAE
from skmpsae.exceptions import ModelFileError


@pytest.fixture(scope="module")
def model(digits):
    return MatchingPursuitSAE(k=4, n_components=32, max_iter=1, random_state=0).fit(digits)


@pytest.mark.parametrize("bad", ["", "   ", None, "/", "."])
def test_save_refuses_empty_and_root_paths(model, bad):
    with pytest.raises((ValueError, TypeError), match="path"):
        model.save(bad)


def test_save_never_replaces_user_content(model, tmp_path):
    user_file = tmp_path / "notes.txt"
    user_file.write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        model.save(user_file)
    assert user_file.read_text() == "mine"

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print(1)")
    with pytest.raises(FileExistsError, match="project"):
        model.save(project)
    assert (project / "src" / "main.py").read_text() == "print(1)"

    # A model folder into which the user put a file of their own is not replaced either.
    model.save(tmp_path / "sae")
    (tmp_path / "sae" / "README.md").write_text("my notes")
    with pytest.raises(FileExistsError, match="README.md"):
        model.save(tmp_path / "sae")
    assert (tmp_path / "sae" / "README.md").read_text() == "my notes"

    # Another tool's JSON under our file name is not taken for a model.
    other = tmp_path / "hf"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FileExistsError, match="hf"):
        model.save(other)
    assert json.loads((other / "config.json").read_text()) == {"model_type": "bert"}

    link = tmp_path / "link"
    link.symlink_to(project)
    with pytest.raises(FileExistsError, match="link"):
        model.save(link)
    # No temporary folder is left behind by a refused save.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_into_empty_folder_and_over_own_model(model, digits, tmp_path):
    (tmp_path / "empty").mkdir()
    model.save(tmp_path / "empty")
    model.save(tmp_path / "empty")
    np.testing.assert_array_equal(skmpsae.load(tmp_path / "empty").components_,
                                  model.components_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_replacing_is_atomic_and_concurrent_saves_end_with_one_model(digits, tmp_path):
    a = MatchingPursuitSAE(k=2, n_components=16, max_iter=1, random_state=0).fit(digits[:300])
    b = MatchingPursuitSAE(k=2, n_components=16, max_iter=1, random_state=1).fit(digits[:300])
    path = tmp_path / "sae"
    a.save(path)
    stop, failures = threading.Event(), []

    def reader():
        while not stop.is_set():
            try:
                skmpsae.load(path)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(repr(exc))

    def writer(sae):
        try:
            for _ in range(15):
                sae.save(path)
        except Exception as exc:  # noqa: BLE001
            failures.append(repr(exc))

    threads = [threading.Thread(target=reader)]
    threads += [threading.Thread(target=writer, args=(sae,)) for sae in (a, b)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert failures == []
    loaded = skmpsae.load(path)
    assert any(np.array_equal(loaded.components_, s.components_) for s in (a, b))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae"]


def test_a_crash_while_replacing_leaves_a_model(model, digits, tmp_path, monkeypatch):
    other = MatchingPursuitSAE(k=2, n_components=16, max_iter=1, random_state=1).fit(digits)
    model.save(tmp_path / "sae")
    real_replace, real_rename, calls = os.replace, os.rename, {"n": 0}

    def crash_on_second(src, dst, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies between two moves
        return (real_replace if kind == "replace" else real_rename)(src, dst, *args, **kwargs)

    for kind in ("replace", "rename"):
        monkeypatch.setattr(os, kind, lambda *a, kind=kind, **k: crash_on_second(*a, **k))
    with pytest.raises(KeyboardInterrupt):
        other.save(tmp_path / "sae")
        raise KeyboardInterrupt  # a save that needed fewer than two moves
    monkeypatch.undo()
    loaded = skmpsae.load(tmp_path / "sae")  # the old or the new model, never nothing
    assert any(np.array_equal(loaded.components_, s.components_) for s in (model, other))


def test_nan_model_is_not_saved(model, tmp_path):
    import copy

    broken = copy.deepcopy(model)
    broken.components_ = broken.components_.copy()
    broken.components_[0, 0] = np.nan
    with pytest.raises(ValueError, match="components_ holds NaN"):
        broken.save(tmp_path / "nan")
    assert not (tmp_path / "nan").exists()


def _flip_bit(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # inside the last array's data
    path.write_bytes(bytes(data))


def test_load_refuses_a_flipped_bit(model, tmp_path):
    model.save(tmp_path / "sae")
    _flip_bit(tmp_path / "sae" / "arrays.safetensors")
    with pytest.raises(ModelFileError, match="arrays.safetensors.*checksum"):
        skmpsae.load(tmp_path / "sae")


def test_load_reads_only_regular_files(model, tmp_path):
    model.save(tmp_path / "sae")
    outside = tmp_path / "outside.safetensors"
    os.replace(tmp_path / "sae" / "arrays.safetensors", outside)
    (tmp_path / "sae" / "arrays.safetensors").symlink_to(outside)
    with pytest.raises(ModelFileError, match="arrays.safetensors.*symbolic link"):
        skmpsae.load(tmp_path / "sae")
    (tmp_path / "sae" / "arrays.safetensors").unlink()
    os.mkfifo(tmp_path / "sae" / "arrays.safetensors")
    with pytest.raises(ModelFileError, match="not a regular file"):
        skmpsae.load(tmp_path / "sae")  # a FIFO would block a plain open() forever
    (tmp_path / "sae" / "arrays.safetensors").unlink()
    (tmp_path / "sae" / "arrays.safetensors").mkdir()
    with pytest.raises(ModelFileError, match="not a regular file"):
        skmpsae.load(tmp_path / "sae")


def _edit(path, edit):
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(("edit", "match"), [
    (lambda c: c["params"].update(k=True), "invalid parameter.*'k'"),
    (lambda c: c["params"].update(device="mps"), "invalid parameter.*device"),
    (lambda c: c["params"].update(n_components=31), "n_components=31"),
    (lambda c: c.update(checksum="x"), "checksum"),
    (lambda c: c["fitted"].update(loss_curve_=[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]),
     "nested deeper"),
    (lambda c: c["fitted"].update(n_features_in_=0), "n_features_in_ must be at least 1"),
])
def test_load_checks_every_field(model, tmp_path, edit, match):
    model.save(tmp_path / "sae")
    _edit(tmp_path / "sae", edit)
    with pytest.raises(ModelFileError, match=match):
        skmpsae.load(tmp_path / "sae")


def test_load_checks_group_sizes_against_n_components(digits, tmp_path):
    sae = skmpsae.MatryoshkaSAE(n_components=16, k=2, group_sizes=[8, 8], max_iter=1,
                                random_state=0).fit(digits)
    sae.save(tmp_path / "m")
    _edit(tmp_path / "m", lambda c: c["params"].update(group_sizes=[8, 4]))
    with pytest.raises(ModelFileError, match="group_sizes"):
        skmpsae.load(tmp_path / "m")


def test_load_checks_unit_norm_atoms(model, tmp_path):
    from safetensors.numpy import save_file

    model.save(tmp_path / "sae")
    scaled = model.components_ * 2
    save_file({"components": scaled, "bias": model.bias_},
              str(tmp_path / "sae" / "arrays.safetensors"))
    _edit(tmp_path / "sae", lambda c: c.update(format_version=1, checksum=None) or c.pop(
        "checksum"))
    with pytest.raises(ModelFileError, match="unit-norm rows; row 0 has norm 2"):
        skmpsae.load(tmp_path / "sae")


def test_deeply_nested_json_is_refused_without_recursion_error(model, tmp_path):
    model.save(tmp_path / "sae")
    (tmp_path / "sae" / "config.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ModelFileError, match="config.json"):
        skmpsae.load(tmp_path / "sae")
