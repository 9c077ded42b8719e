"""Runs that cannot go wrong silently: checkpoints bound to one run, non-finite
training caught, interrupted fits usable, parameters that pass validation work (issue 13)."""

import json
import signal
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skmpsae import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatchingPursuitSAE,
    MatryoshkaSAE,
    ReLUSAE,
    TopKSAE,
)
from skmpsae.exceptions import (
    CheckpointFallbackWarning,
    ModelFileError,
    TrainingDivergedError,
    TrainingInterruptedWarning,
)

PARAMS = {"n_components": 32, "k": 4, "max_iter": 2, "batch_size": 256, "random_state": 0}
ALL = [MatchingPursuitSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE, JumpReLUSAE]


# ------------------------------------------------------- checkpoints bound to their run
def test_checkpoint_of_other_rows_of_the_same_shape_is_refused(digits, tmp_path):
    MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path).fit(digits[:800])
    with pytest.raises(ValueError, match="other data.*rows_sha256"):
        MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path).fit(digits[800:1600])


def test_search_folds_never_share_a_run(digits, tmp_path):
    search = GridSearchCV(MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path),
                          {"k": [4]}, cv=2, error_score="raise", refit=False)
    with pytest.raises(ValueError, match="other data"):
        search.fit(digits[:1600])  # two folds of 800 rows: same shape, other rows


def _fit_with_checkpoints(digits, path):
    return MatchingPursuitSAE(**{**PARAMS, "max_iter": 3}, checkpoint_dir=path).fit(digits)


@pytest.mark.parametrize("damage", [
    lambda f: (f / "state.safetensors").write_bytes(b""),
    lambda f: (f / "state.safetensors").write_bytes((f / "state.safetensors").read_bytes()[:100]),
    lambda f: (f / "checkpoint.json").write_text(""),
    lambda f: (f / "checkpoint.json").write_text(json.dumps(
        {k: v for k, v in json.loads((f / "checkpoint.json").read_text()).items()
         if k != "loss_curve"})),
    lambda f: (f / "checkpoint.json").write_text(json.dumps(
        {**json.loads((f / "checkpoint.json").read_text()), "n_components": 7})),
], ids=["empty-state", "truncated-state", "empty-meta", "missing-key", "wrong-shapes"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous(digits, tmp_path, damage):
    _fit_with_checkpoints(digits, tmp_path)
    newest, previous = sorted(tmp_path.glob("step-*"))[::-1]  # 8 steps an epoch: 24 and 16
    damage(newest)
    with pytest.warns(CheckpointFallbackWarning, match=f"{newest.name}.*{previous.name}"):
        resumed = MatchingPursuitSAE(**{**PARAMS, "max_iter": 3}, checkpoint_dir=tmp_path)
        resumed.fit(digits)
    assert resumed.n_iter_ == 3


def test_latest_naming_no_checkpoint_falls_back(digits, tmp_path):
    _fit_with_checkpoints(digits, tmp_path)
    (tmp_path / "latest").write_text("../../etc")
    with pytest.warns(CheckpointFallbackWarning, match="latest names"):
        _fit_with_checkpoints(digits, tmp_path)


def test_no_intact_checkpoint_fails_naming_the_file_before_training(digits, tmp_path):
    _fit_with_checkpoints(digits, tmp_path)
    for folder in tmp_path.glob("step-*"):
        (folder / "state.safetensors").write_bytes(b"")
    sae = MatchingPursuitSAE(**{**PARAMS, "max_iter": 3}, checkpoint_dir=tmp_path)
    with pytest.raises(ModelFileError, match="state.safetensors"):
        sae.fit(digits)
    assert not hasattr(sae, "components_")


def test_checkpoint_dir_is_checked_up_front(digits, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir=.*is a file"):
        MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "file").fit(digits)
    with pytest.raises(ValueError, match="checkpoint_dir=.*cannot be created"):
        MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "file" / "sub").fit(digits)
    with pytest.raises(ValueError, match="checkpoint_dir=''"):
        MatchingPursuitSAE(**PARAMS, checkpoint_dir="").fit(digits)


def test_user_folders_are_never_taken_for_checkpoints(digits, tmp_path):
    mine = tmp_path / "step-000000000001"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (tmp_path / "step-data").mkdir()
    _fit_with_checkpoints(digits, tmp_path)  # prunes old checkpoints, never these
    assert (mine / "notes.txt").read_text() == "mine"
    assert (tmp_path / "step-data").is_dir()
    again = _fit_with_checkpoints(digits, tmp_path)
    assert again.n_iter_ == 3


# ------------------------------------------------------------ non-finite training
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_input_whose_squares_overflow_is_refused(cls, digits):
    X = digits * np.float32(1e19)
    with pytest.raises(ValueError, match="X holds values of magnitude up to 1e"):
        cls(**PARAMS).fit(X)
    sae = cls(**PARAMS).fit(digits)
    with pytest.raises(ValueError, match="X holds values of magnitude"):
        sae.transform(X)


def test_tol_never_turns_an_overflowing_norm_into_zero_codes(digits):
    sae = MatchingPursuitSAE(**PARAMS).fit(digits)
    with pytest.raises(ValueError, match="X holds values of magnitude"):
        sae.transform(digits * np.float32(3e18), tol=0.1)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_divergent_learning_rate_stops_with_an_error(cls, digits):
    sae = cls(**{**PARAMS, "learning_rate": 1e30})
    with pytest.raises(TrainingDivergedError, match="NaN or inf") as caught:
        sae.fit(digits)
    assert not hasattr(sae, "components_")  # never a NaN model
    assert all(np.isfinite(v).all() for v in caught.value.arrays.values())
    with pytest.raises(TrainingDivergedError, match="learning_rate"):
        cls(**{**PARAMS, "learning_rate": 1e300}).fit(digits)  # Adam's step overflows float32


def test_relu_l1_adaptation_cannot_overflow(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sae = ReLUSAE(**{**PARAMS, "k": 1}, l1_adapt_rate=1e6).fit(digits)
    assert np.isfinite(sae.l1_coefficient_).all() and sae.l1_coefficient_[0] > 0


# ----------------------------------------------------------- interrupted fits usable
@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize("cls", [BatchTopKSAE, MatryoshkaSAE], ids=lambda c: c.__name__)
def test_interrupt_in_first_epoch_leaves_a_threshold(at_step, cls, digits):
    sae = at_step(cls(**PARAMS), 2, lambda: signal.raise_signal(signal.SIGINT))
    with pytest.warns(TrainingInterruptedWarning):
        sae.fit(digits)
    assert sae.threshold_[0] > 0
    mean_l0 = np.count_nonzero(sae.transform(digits), axis=1).mean()
    assert mean_l0 < 2 * PARAMS["k"]  # near k, as documented (not most latents)


@pytest.mark.usefixtures("default_sigint")
def test_interrupt_during_setup_is_handled(digits, monkeypatch):
    from skmpsae._linear_sae import LinearSAE

    original = LinearSAE._init_arrays

    def init_then_ctrl_c(self, X, n_components, rng):
        arrays = original(self, X, n_components, rng)
        signal.raise_signal(signal.SIGINT)
        return arrays

    monkeypatch.setattr(LinearSAE, "_init_arrays", init_then_ctrl_c)
    sae = BatchTopKSAE(**PARAMS)
    with pytest.warns(TrainingInterruptedWarning, match="during setup"):
        sae.fit(digits)
    assert sae._n_steps == 0 and sae.threshold_[0] > 0
    assert np.count_nonzero(sae.transform(digits), axis=1).mean() < 2 * PARAMS["k"]


# ------------------------------------------------------ parameters that pass validation work
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("param", ["k", "n_components", "max_iter", "batch_size",
                                   "learning_rate", "checkpoint_every"])
def test_bools_are_not_numbers(cls, param, digits):
    with pytest.raises(ValueError, match=f"'{param}' parameter.*not a bool"):
        cls(**{**PARAMS, param: True}).fit(digits[:50])


@pytest.mark.parametrize("device", ["mps", "meta", "xla", "nonsense"])
def test_devices_other_than_cpu_and_cuda_fail_at_fit(device, digits):
    with pytest.raises(ValueError, match=f"device='{device}'"):
        MatchingPursuitSAE(**PARAMS, device=device).fit(digits[:50])


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_k_above_n_components(cls, digits):
    sae = cls(**{**PARAMS, "n_components": 8, "k": 32}).fit(digits)
    Z = sae.transform(digits)
    assert Z.shape == (len(digits), 8) and np.isfinite(Z).all()
    assert sae.score(digits) > 0
