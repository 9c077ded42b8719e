"""Checkpoints, resume, Ctrl-C and warm_start: nothing already trained is lost."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from skmpsae import JumpReLUSAE, MatchingPursuitSAE, ReLUSAE, TopKSAE
from skmpsae.exceptions import TrainingInterruptedWarning

# 1797 digits / 256 rows: 8 steps an epoch, 24 in all.
PARAMS = {"n_components": 64, "k": 4, "max_iter": 3, "batch_size": 256, "random_state": 0}
CASES = [
    # atom dropout and revival draw from the random stream inside and after epochs
    (MatchingPursuitSAE, {"atom_dropout": 0.3, "revive_dead": True}),
    (TopKSAE, {"dead_after": 300}),  # a buffer updated every step
    (ReLUSAE, {}),  # another buffer: the adaptive L1 weight
    (JumpReLUSAE, {}),  # a trained threshold and an adaptive L0 weight
]


def _same_fit(a, b):
    for name in a._array_names:
        np.testing.assert_array_equal(getattr(a, name + "_"), getattr(b, name + "_"),
                                      err_msg=name)
    assert a.loss_curve_ == b.loss_curve_
    assert a.n_iter_ == b.n_iter_
    assert a._n_steps == b._n_steps


class _CrashError(RuntimeError):
    pass


def _raise():
    raise _CrashError("killed")


@pytest.mark.parametrize(("Estimator", "extra"), CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resume_after_crash_equals_uninterrupted_run(at_step, Estimator, extra, dtype, digits,
                                                     tmp_path):
    X = digits.astype(dtype)
    reference = Estimator(**PARAMS, **extra).fit(X)
    params = {**PARAMS, **extra, "checkpoint_dir": tmp_path, "checkpoint_every": 3}
    crashing = at_step(Estimator(**params), 13, _raise)  # mid-epoch 2, after a checkpoint at 12
    with pytest.raises(_CrashError):
        crashing.fit(X)
    assert not hasattr(crashing, "components_")  # a failed fit sets nothing
    assert (tmp_path / "latest").read_text() == "step-000000000012"
    resumed = Estimator(**params).fit(X)
    _same_fit(resumed, reference)


def test_checkpoint_folder_layout(digits, tmp_path):
    sae = MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "ck").fit(digits)
    folders = sorted(p.name for p in (tmp_path / "ck").iterdir())
    # Epoch ends only (no checkpoint_every); the two newest are kept.
    assert folders == ["latest", "run.json", "step-000000000016", "step-000000000024"]
    meta = json.loads((tmp_path / "ck" / "step-000000000024" / "checkpoint.json").read_text())
    assert meta["class"] == "MatchingPursuitSAE" and meta["n_iter"] == 3
    assert set(meta["adam"]) == {"components", "bias"}
    # A finished run found again is not trained again.
    again = MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "ck").fit(digits)
    _same_fit(again, sae)


def test_checkpoint_of_another_run_is_refused(digits, tmp_path):
    MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path).fit(digits)
    with pytest.raises(ValueError, match="run with k=4, but this one has k=5"):
        MatchingPursuitSAE(**{**PARAMS, "k": 5}, checkpoint_dir=tmp_path).fit(digits)
    with pytest.raises(ValueError, match="fit on other data"):
        MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path).fit(digits[:1000])
    with pytest.raises(ValueError, match="holds a MatchingPursuitSAE checkpoint"):
        TopKSAE(**PARAMS, checkpoint_dir=tmp_path).fit(digits)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_keeps_last_step_and_resumes(at_step, digits, tmp_path):
    params = {**PARAMS, "checkpoint_dir": tmp_path}
    sae = at_step(MatchingPursuitSAE(**params), 10,
                  lambda: signal.raise_signal(signal.SIGINT))
    with pytest.warns(TrainingInterruptedWarning, match="after optimizer step 10.*to resume"):
        sae.fit(digits)
    assert sae._n_steps == 10 and sae.n_iter_ == 1  # a usable estimator at step 10
    assert sae.transform(digits[:5]).shape == (5, 64)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = MatchingPursuitSAE(**params).fit(digits)
    _same_fit(resumed, MatchingPursuitSAE(**PARAMS).fit(digits))


@pytest.mark.usefixtures("default_sigint")
def test_second_ctrl_c_raises(at_step, digits):
    def twice():
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        at_step(MatchingPursuitSAE(**PARAMS), 2, twice).fit(digits)


_KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from skmpsae import MatchingPursuitSAE
    X = np.load(sys.argv[1])
    sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=3, batch_size=256, random_state=0,
                             checkpoint_dir=sys.argv[2], checkpoint_every=1)
    original, count = sae._after_step, [0]
    def after_step(params):
        original(params)
        count[0] += 1
        if count[0] == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
    sae._after_step = after_step
    sae.fit(X)
""")


def test_resume_after_sigkill(digits, tmp_path):
    np.save(tmp_path / "X.npy", digits)
    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "X.npy"),
                           str(tmp_path / "ck"), "11"], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert (tmp_path / "ck" / "latest").read_text() in {"step-000000000010",
                                                        "step-000000000011"}
    resumed = MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "ck").fit(digits)
    _same_fit(resumed, MatchingPursuitSAE(**PARAMS).fit(digits))


def test_warm_start(digits):
    sae = MatchingPursuitSAE(**PARAMS).fit(digits)
    first = sae.components_.copy()
    sae.set_params(warm_start=True, max_iter=2).fit(digits)
    assert sae.n_iter_ == 5 and len(sae.loss_curve_) == 5
    assert not np.array_equal(sae.components_, first)
    assert sae.loss_curve_[-1] <= sae.loss_curve_[2]
    with pytest.raises(ValueError, match="X has 10 features"):
        sae.fit(digits[:, :10])
    cold = clone(sae).set_params(warm_start=False).fit(digits)
    assert cold.n_iter_ == 2


def test_save_load_keeps_new_parameters_and_reads_older_folders(digits, tmp_path):
    sae = MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path / "ck", warm_start=True)
    sae.fit(digits).save(tmp_path / "model")
    loaded = MatchingPursuitSAE.load(tmp_path / "model")
    assert loaded.checkpoint_dir == str(tmp_path / "ck") and loaded.warm_start
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    for key in ("warm_start", "checkpoint_dir", "checkpoint_every"):
        del config["params"][key]  # as written before these parameters existed
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    old = MatchingPursuitSAE.load(tmp_path / "model")
    assert old.checkpoint_dir is None and old.warm_start is False


def test_warm_start_with_checkpoints_trains_and_resumes(at_step, digits, tmp_path):
    params = {**PARAMS, "checkpoint_dir": tmp_path, "warm_start": True}
    reference = MatchingPursuitSAE(**PARAMS, warm_start=True).fit(digits).fit(digits)
    sae = MatchingPursuitSAE(**params).fit(digits)
    # The finished first fit's checkpoint does not stop the warm-started one from training.
    crashing = at_step(sae, 12, _raise)  # in epoch 2 of the continuation
    with pytest.raises(_CrashError):
        crashing.fit(digits)
    assert sae.n_iter_ == 3  # the failed continuation changed nothing
    del sae._after_step
    assert (tmp_path / "latest").read_text() == "step-000000000032"  # its first epoch
    sae.fit(digits)  # resumes the continuation there
    _same_fit(sae, reference)
    with pytest.raises(ValueError, match="checkpoint of a warm-started fit"):
        MatchingPursuitSAE(**params).fit(digits)


def test_partial_fit_ignores_checkpoint_dir(digits, tmp_path):
    sae = MatchingPursuitSAE(**PARAMS, checkpoint_dir=tmp_path)
    sae.partial_fit(digits[:900]).partial_fit(digits[900:])
    assert sae.n_iter_ == 2 and not any(tmp_path.iterdir())


def test_ignored_sigint_is_left_alone(at_step, digits):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sae = at_step(MatchingPursuitSAE(**PARAMS), 3,
                      lambda: signal.raise_signal(signal.SIGINT))
        sae.fit(digits)  # no warning: the signal was ignored, training went on
        assert sae.n_iter_ == 3
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
