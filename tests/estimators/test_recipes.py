"""Recipe options of every SAE (init, AdamW weight decay, gradient clipping) and the presets."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from skmpsae import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatchingPursuitSAE,
    MatryoshkaSAE,
    ReLUSAE,
    TopKSAE,
)
from skmpsae._training._loop import EpochPosition, TrainState, _step
from skmpsae._training._schedule import warmup_cosine
from skmpsae.recipes import RECIPE_KEYS, default_recipe, paper_recipe

ALL = [MatchingPursuitSAE, TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE, JumpReLUSAE]
FAST = dict(n_components=32, k=4, max_iter=2, batch_size=128, random_state=0)


@pytest.fixture(scope="module")
def X(digits):  # noqa: N802 (the data, named as in scikit-learn)
    return digits[:400]


# -------------------------------------------------------------------- init
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_random_init_is_not_data(cls, X):
    best = {}
    for init in ("data", "random"):
        sae = cls(**FAST, init=init)
        arrays = sae._init_arrays(X.astype(np.float64), 32, np.random.RandomState(0))
        D = arrays["components"]
        np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-12)
        centred = X - arrays["bias"]
        centred /= np.linalg.norm(centred, axis=1, keepdims=True)
        best[init] = np.abs(D @ centred.T).max(axis=1).mean()  # closest sample per atom
    assert best["data"] > 0.95 > 0.6 > best["random"]  # data atoms are samples, random not
    sae = cls(**FAST, init="random").fit(X)
    assert np.isfinite(sae.components_).all() and sae.score(X) > 0


# ------------------------------------------------------------ weight decay
def test_adamw_first_step_matches_hand_computation():
    p0 = np.array([[1.0, -2.0, 0.5]])
    g = np.array([[0.3, -0.1, 0.0]])
    lr, wd, eps = 0.1, 0.01, 1e-8
    for decay in (0.0, wd):
        state = TrainState({"w": p0.copy()}, learning_rate=lr, device="cpu", weight_decay=decay)
        assert isinstance(state.optimizer, torch.optim.AdamW) == (decay > 0)
        (param,) = state.trained()
        param.grad = torch.as_tensor(g)
        state.optimizer.step()
        # First Adam step: bias-corrected moments are g and g^2.
        expected = p0 * (1 - lr * decay) - lr * g / (np.abs(g) + eps)
        np.testing.assert_allclose(param.detach().numpy(), expected, rtol=1e-12, atol=1e-15)


def test_weight_decay_zero_is_todays_adam(X):
    a = MatchingPursuitSAE(**FAST).fit(X)
    b = MatchingPursuitSAE(**FAST, weight_decay=0.0).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    c = MatchingPursuitSAE(**FAST, weight_decay=0.5).fit(X)
    assert not np.allclose(a.bias_, c.bias_)
    assert np.isfinite(c.components_).all()


def test_loaded_optimizer_state_takes_this_runs_decay():
    arrays = {"w": np.ones((2, 3))}
    old = TrainState(arrays, learning_rate=0.1, device="cpu")
    old.trained()[0].grad = torch.ones(2, 3, dtype=torch.float64)
    old.optimizer.step()
    new = TrainState(arrays, learning_rate=0.1, device="cpu", weight_decay=0.2,
                     optimizer_state=old.optimizer_state())
    group = new.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.2 and group.get("decoupled_weight_decay", True)
    back = TrainState(arrays, learning_rate=0.1, device="cpu",
                      optimizer_state=new.optimizer_state())
    assert back.optimizer.param_groups[0]["weight_decay"] == 0.0


# --------------------------------------------------------- gradient clipping
class _LinearLoss:
    """A stand-in estimator whose loss ``sum(w * c)`` has the gradient ``c``."""

    def __init__(self, c):
        self.c = torch.as_tensor(c)

    def _batch_loss(self, params, xb, *, epoch, rng):
        return (params["w"] * self.c).sum(), torch.zeros(1, dtype=torch.int64)

    def _after_step(self, params):
        pass


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm, expected_scale", [(None, 1.0), (10.0, 1.0), (1.0, 0.2)])
def test_clipping_scales_the_global_gradient(dtype, max_norm, expected_scale):
    c = np.array([[3.0, 4.0]], dtype=dtype)  # norm 5
    state = TrainState({"w": np.zeros((1, 2), dtype=dtype)}, learning_rate=1e-3, device="cpu",
                       max_grad_norm=max_norm)
    position = EpochPosition(1, "cpu")
    _step(_LinearLoss(c), state, np.zeros((1, 2), dtype=dtype), 1, 1, rng=None,
          schedule=lambda t: 1.0, epoch=0, position=position, sync=None)
    grad = state.trained()[0].grad.numpy()
    np.testing.assert_allclose(grad, c * expected_scale, rtol=1e-6)


def test_clipping_changes_a_fit_and_stays_finite(X):
    a = TopKSAE(**FAST).fit(X)
    b = TopKSAE(**FAST, max_grad_norm=1e-3).fit(X)
    assert not np.allclose(a.components_, b.components_)
    assert np.isfinite(b.components_).all() and np.isfinite(b.loss_curve_).all()


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("param, value", [("weight_decay", -1e-5), ("max_grad_norm", 0.0),
                                          ("max_grad_norm", -1.0), ("init", "zeros"),
                                          ("weight_decay", "high")])
def test_bad_recipe_options_are_rejected(cls, param, value, X):
    with pytest.raises(InvalidParameterError, match=param):
        cls(**FAST, **{param: value}).fit(X)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_recipe_options_in_params_and_not_mutated(cls, X):
    sae = cls(**FAST, weight_decay=1e-4, max_grad_norm=2.0, init="random")
    params = sae.get_params()
    assert params["weight_decay"] == 1e-4 and params["max_grad_norm"] == 2.0
    assert clone(sae).get_params() == params
    sae.fit(X)
    assert sae.get_params() == params


# --------------------------------------------------------------- persistence
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_recipe_options_saved_and_loaded(cls, X, tmp_path):
    sae = cls(**FAST, weight_decay=1e-4, max_grad_norm=2.0, init="random").fit(X)
    sae.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.get_params() == sae.get_params()
    np.testing.assert_array_equal(loaded.transform(X), sae.transform(X))


def test_model_saved_before_the_options_loads_with_defaults(X, tmp_path):
    import json

    sae = MatchingPursuitSAE(**FAST).fit(X)
    sae.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["params"]["weight_decay"], config["params"]["max_grad_norm"]
    config_path.write_text(json.dumps(config))
    loaded = MatchingPursuitSAE.load(tmp_path / "m")
    assert loaded.weight_decay == 0.0 and loaded.max_grad_norm is None


# ------------------------------------------------------------------- presets
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_paper_recipe_builds_every_sae(cls):
    sae = cls(k=8, **paper_recipe())
    params = sae.get_params()
    assert all(params[key] == value for key, value in paper_recipe().items())
    assert params["expansion_factor"] == 25 and params["weight_decay"] == 1e-5
    assert set(default_recipe(cls)) == set(RECIPE_KEYS) == set(paper_recipe())
    assert default_recipe(cls.__name__) == default_recipe(cls)


def test_paper_recipe_fits_at_25x(X):
    sae = MatchingPursuitSAE(k=4, random_state=0, **paper_recipe(batch_size=200, max_iter=1))
    sae.fit(X[:200])
    assert sae.n_components_ == 25 * X.shape[1]
    assert sae._optimizer_state["param_groups"][0]["weight_decay"] == 1e-5


def test_paper_schedule_runs_from_and_to_1e6():
    recipe = paper_recipe()
    factor = warmup_cosine(1000, recipe["warmup"])
    lr = recipe["learning_rate"]
    assert lr * factor(1000) == pytest.approx(1e-6)  # end of the cosine decay
    assert lr * factor(-1) == pytest.approx(1e-6)  # where the linear warmup starts
    assert lr * factor(49) == pytest.approx(5e-4)  # top of the warmup (50 steps)


def test_recipe_overrides_and_bad_input():
    assert paper_recipe(batch_size=512)["batch_size"] == 512
    assert default_recipe("ReLUSAE", max_iter=3)["max_iter"] == 3
    assert default_recipe()["learning_rate"] == MatchingPursuitSAE().learning_rate
    with pytest.raises(ValueError, match=r"unknown recipe parameter\(s\) \['k'\]"):
        paper_recipe(k=8)
    with pytest.raises(ValueError, match="estimator='PCA' is not an SAE"):
        default_recipe("PCA")
    with pytest.raises(ValueError, match="must be an SAE class"):
        default_recipe(dict)


# --------------------------------------------------------------- checkpoints
class _CrashError(RuntimeError):
    pass


def _fit_crashing_at(est, step, X):
    original, done = est._after_step, {"n": 0}

    def after_step(params):
        original(params)
        done["n"] += 1
        if done["n"] == step:
            raise _CrashError

    est._after_step = after_step
    with pytest.raises(_CrashError):
        est.fit(X)


@pytest.mark.parametrize("options", [{"weight_decay": 1e-3}, {"max_grad_norm": 0.05},
                                     {"weight_decay": 1e-3, "max_grad_norm": 0.05}])
@pytest.mark.parametrize("file_order", [list, reversed])
def test_resume_with_adamw_or_clipping_equals_uninterrupted_run(X, tmp_path, monkeypatch,
                                                                options, file_order):
    params = dict(FAST, max_iter=3, **options)
    reference = MatchingPursuitSAE(**params).fit(X)
    ckpt = dict(params, checkpoint_dir=tmp_path, checkpoint_every=2)
    _fit_crashing_at(MatchingPursuitSAE(**ckpt), 5, X)  # after the checkpoint at step 4
    # safetensors gives a file's tensors in no fixed order; the clipped norm sums
    # the parameters' norms in the fit's order, whichever order the file gave.
    import safetensors.numpy

    load = safetensors.numpy.load
    monkeypatch.setattr(safetensors.numpy, "load",
                        lambda data: dict(file_order(list(load(data).items()))))
    resumed = MatchingPursuitSAE(**ckpt).fit(X)
    np.testing.assert_array_equal(resumed.components_, reference.components_)
    assert resumed.loss_curve_ == reference.loss_curve_
    if "weight_decay" in options:
        with pytest.raises(ValueError, match="weight_decay=0.001, but this one has "
                                             "weight_decay=0.0"):
            MatchingPursuitSAE(**dict(ckpt, weight_decay=0.0)).fit(X)


def test_checkpoint_written_before_the_options_resumes(X, tmp_path):
    import json

    ckpt = dict(FAST, max_iter=2, checkpoint_dir=tmp_path)
    done = MatchingPursuitSAE(**ckpt).fit(X)
    for meta_path in tmp_path.glob("step-*/checkpoint.json"):
        meta = json.loads(meta_path.read_text())
        del meta["params"]["weight_decay"], meta["params"]["max_grad_norm"]
        meta_path.write_text(json.dumps(meta))
    again = MatchingPursuitSAE(**ckpt).fit(X)  # found finished: not trained again
    np.testing.assert_array_equal(again.components_, done.components_)
    with pytest.raises(ValueError, match="weight_decay=0.0, but this one has weight_decay=0.1"):
        MatchingPursuitSAE(**dict(ckpt, weight_decay=0.1)).fit(X)
