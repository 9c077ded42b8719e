"""Budget modes in MatchingPursuitSAE: training with a stop, transform, calibration."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skmpsae import MatchingPursuitSAE, mp_encode
from skmpsae._pursuit._core import pursue
from skmpsae._pursuit._train_pass import pursuit_loss, recompute_residual, select_budgeted
from skmpsae._pursuit._train_pass_numba import pursuit_residual_sq
from skmpsae.metrics import l0


def torch_problem(dtype=torch.float64, seed=0, n=40, n_features=10, n_components=60):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_components, n_features, generator=g, dtype=dtype)
    D /= D.norm(dim=1, keepdim=True)
    X = torch.randn(n, n_features, generator=g, dtype=dtype) * torch.linspace(0.2, 2, n,
                                                                            dtype=dtype)[:, None]
    b = 0.1 * torch.randn(n_features, generator=g, dtype=dtype)
    return D, b, X


@pytest.mark.parametrize("stop", [dict(coef_threshold=0.4), dict(residual_threshold=2.0)])
@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_training_selection_matches_mp_encode(positive, stop):
    D, b, X = torch_problem()
    idx, steps = select_budgeted(D, b, X, 8, positive, **stop)
    ref_idx, coef = pursue(X.numpy(), D.numpy(), n_steps=8, bias=b.numpy(), positive=positive,
                           backend="numpy", **stop)
    assert steps.min() < steps.max() <= 8  # budget moves between samples
    assert_array_equal(steps.numpy(), (coef != 0).sum(axis=1))
    assert_array_equal(idx.numpy(), ref_idx)
    # Per-step products (a tiny memory budget) select the same atoms.
    idx_p, steps_p = select_budgeted(D, b, X, 8, positive, memory_budget=64, **stop)
    assert_array_equal(steps_p, steps)
    for s, m in enumerate(steps.tolist()):
        assert_array_equal(idx_p[s, :m], idx[s, :m])


@pytest.mark.parametrize("positive", [True, False], ids=["pos", "signed"])
def test_stopped_loss_and_gradients_match_autograd(positive):
    # The numba kernels (CPU training path) against recompute_residual under
    # autograd, with steps cut short per sample.
    D, b, X = torch_problem(seed=3)
    idx, steps = select_budgeted(D, b, X, 6, positive, coef_threshold=0.3)
    assert steps.min() < 6
    grads = []
    for fast in (True, False):
        Dv, bv = D.clone().requires_grad_(), b.clone().requires_grad_()
        if fast:
            resid_sq, coef = pursuit_residual_sq(Dv, bv, X, idx, positive, steps)
            loss = resid_sq.mean()
        else:
            residual, coef = recompute_residual(Dv, bv, X, idx, positive, steps)
            loss = (residual * residual).sum(dim=1).mean()
        loss.backward()
        assert not coef.detach()[torch.arange(6) >= steps[:, None]].any()
        grads.append((loss.detach(), coef.detach(), Dv.grad, bv.grad))
    for fast, slow in zip(*grads, strict=True):
        assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-10, atol=1e-12)
    # The loss is the squared residual of mp_encode's stopped codes.
    Z = mp_encode(X.numpy(), D.numpy(), n_steps=6, bias=b.numpy(), positive=positive,
                  coef_threshold=0.3, backend="numpy")
    r = X.numpy() - b.numpy() - Z @ D.numpy()
    assert_allclose(grads[0][0].item(), (r * r).sum(axis=1).mean(), rtol=1e-10)
    full, _ = pursuit_loss(D, b, X, idx, positive)  # without steps: every step counts
    assert full.item() != grads[0][0].item()


@pytest.mark.parametrize("stop", [dict(coef_threshold=0.3), dict(residual_threshold=2.0)])
def test_fit_with_a_budget_stop(digits, stop):
    X = digits[:600]
    sae = MatchingPursuitSAE(n_components=64, k=8, max_iter=3, random_state=0, **stop).fit(X)
    assert np.isfinite(sae.loss_curve_).all()
    assert sae.loss_curve_[-1] < sae.loss_curve_[0]
    Z = sae.transform(X)  # the trained stop is transform's default
    per_row = (Z != 0).sum(axis=1)
    assert per_row.max() <= 8 and per_row.min() < per_row.max()
    ref = mp_encode(X, sae.components_, n_steps=8, bias=sae.bias_, **stop)
    assert_array_equal(Z, ref)
    name = next(iter(stop))
    assert_array_equal(sae.transform(X, **{name: 0.0}),
                       mp_encode(X, sae.components_, n_steps=8, bias=sae.bias_,
                                 **{name: 0.0}))


@pytest.fixture(scope="module")
def fitted(digits):
    # A random split: the digits' row order follows their collection.
    rows = np.random.default_rng(0).permutation(digits.shape[0])
    X_train, X_val, X_test = (digits[rows[:1200]], digits[rows[1200:1500]],
                              digits[rows[1500:]])
    sae = MatchingPursuitSAE(n_components=128, k=8, max_iter=8, random_state=0).fit(X_train)
    return sae, X_train, X_val, X_test


@pytest.mark.parametrize("mode", ["coef", "residual"])
@pytest.mark.parametrize("target", [4, 8])
def test_calibrated_budget_lands_near_target_on_held_out_rows(fitted, mode, target):
    sae, _, X_val, X_test = fitted
    sae.calibrate_budget(X_val, target_l0=target, mode=mode)
    assert sae.budget_mode_ == mode and sae.budget_n_steps_ == 16
    assert abs(sae.budget_l0_ - target) < 0.05 * target
    Z_val = sae.transform(X_val, budget="calibrated")
    assert l0(Z_val) == pytest.approx(sae.budget_l0_)
    Z_test = sae.transform(X_test, budget="calibrated")
    assert abs(l0(Z_test) - target) < 0.15 * target  # held-out rows: near the target
    per_row = (Z_test != 0).sum(axis=1)
    assert per_row.min() < per_row.max() <= 16  # a mean budget, not k per sample


def test_calibration_errors_and_staleness(fitted):
    sae, X_train, X_val, _ = fitted
    fresh = MatchingPursuitSAE(n_components=16, k=2, max_iter=1, random_state=0)
    fresh.fit(X_train[:200])
    with pytest.raises(ValueError, match="calibrate_budget"):
        fresh.transform(X_val, budget="calibrated")
    with pytest.raises(ValueError, match="mode"):
        fresh.calibrate_budget(X_val, target_l0=2, mode="l1")
    with pytest.raises(ValueError, match="target_l0"):
        fresh.calibrate_budget(X_val, target_l0=0)
    with pytest.raises(ValueError, match="n_steps"):
        fresh.calibrate_budget(X_val, target_l0=9, n_steps=4)
    fresh.calibrate_budget(X_val, target_l0=2)
    with pytest.raises(ValueError, match="coef_threshold=None"):
        fresh.transform(X_val, budget="calibrated", coef_threshold=0.1)
    with pytest.raises(ValueError, match="budget must be"):
        fresh.transform(X_val, budget="mean")
    with pytest.raises(ValueError, match="residual_threshold"):
        fresh.transform(X_val, residual_threshold=-1.0)
    fresh.partial_fit(X_train[:200])
    with pytest.raises(ValueError, match="calibrate_budget again"):
        fresh.transform(X_val, budget="calibrated")


def test_calibration_leaves_inputs_alone(fitted):
    sae, _, X_val, _ = fitted
    X = X_val.copy()
    params = sae.get_params()
    sae.calibrate_budget(X, target_l0=5.5)
    assert_array_equal(X, X_val)
    assert sae.get_params() == params


def test_calibrating_on_training_rows_overshoots_held_out_l0(fitted):
    # Why calibrate_budget asks for held-out rows: MP fits its training rows
    # better, so a threshold set there stops later on new rows.
    sae, X_train, X_val, X_test = fitted
    on_test = {}
    for name, rows in (("train", X_train), ("val", X_val)):
        sae.calibrate_budget(rows, target_l0=8, mode="residual")
        on_test[name] = l0(sae.transform(X_test, budget="calibrated"))
    assert on_test["train"] > 8 + 1 > on_test["val"]


def _calibrated(digits):
    sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(digits[:1400])
    return sae.calibrate_budget(digits[1400:], target_l0=6, mode="residual")


def test_calibrated_budget_survives_save_load_and_pickle(digits, tmp_path):
    import pickle

    import skmpsae
    from skmpsae._budget import BUDGET_ATTRIBUTES

    sae = _calibrated(digits)
    want = sae.transform(digits[1400:], budget="calibrated")
    sae.save(tmp_path / "mp")
    for other in (skmpsae.load(tmp_path / "mp"), pickle.loads(pickle.dumps(sae))):
        for name in BUDGET_ATTRIBUTES:
            assert getattr(other, name) == getattr(sae, name), name
            assert type(getattr(other, name)) is type(getattr(sae, name)), name
        assert_array_equal(other.transform(digits[1400:], budget="calibrated"), want)
    # An uncalibrated model saves and loads without them.
    plain = MatchingPursuitSAE(n_components=16, k=2, max_iter=1, random_state=0).fit(digits)
    plain.save(tmp_path / "plain")
    assert not hasattr(skmpsae.load(tmp_path / "plain"), "budget_threshold_")


@pytest.mark.parametrize(("edit", "match"), [
    (lambda f: f.update(budget_mode_="l1"), "budget_mode_ must be 'coef' or 'residual'"),
    (lambda f: f.update(budget_threshold_=-1.0), "budget_threshold_ must be a finite"),
    (lambda f: f.update(budget_threshold_="NaN"), "budget_threshold_ must be a finite"),
    (lambda f: f.update(budget_n_steps_=0), "budget_n_steps_ must be a positive integer"),
    (lambda f: f.update(budget_n_steps_=True), "budget_n_steps_ must be a positive integer"),
    (lambda f: f.update(budget_l0_=[1]), "budget_l0_ must be a finite"),
    (lambda f: f.update(budget_n_iter_=-2), "budget_n_iter_ must be a non-negative"),
    (lambda f: f.pop("budget_l0_"), "missing \\['budget_l0_'\\]"),
])
def test_load_checks_the_budget_entries(digits, tmp_path, edit, match):
    import json

    import skmpsae
    from skmpsae.exceptions import ModelFileError

    _calibrated(digits).save(tmp_path / "mp")
    config = json.loads((tmp_path / "mp" / "config.json").read_text())
    edit(config["fitted"])
    (tmp_path / "mp" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=match):
        skmpsae.load(tmp_path / "mp")


def test_budget_entries_on_another_class_are_refused(digits, tmp_path):
    import json

    import skmpsae
    from skmpsae import TopKSAE
    from skmpsae.exceptions import ModelFileError

    TopKSAE(n_components=16, k=2, max_iter=1, random_state=0).fit(digits).save(tmp_path / "t")
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    config["fitted"].update({"budget_mode_": "coef", "budget_threshold_": 0.1,
                             "budget_n_steps_": 4, "budget_l0_": 2.0, "budget_n_iter_": 1})
    (tmp_path / "t" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="belong to a MatchingPursuitSAE"):
        skmpsae.load(tmp_path / "t")
