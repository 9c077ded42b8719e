"""JumpReLUSAE: straight-through threshold gradients, target L0, NumPy/torch parity, persistence."""

import pickle

import numpy as np
import pytest
import torch

import skmpsae
from skmpsae import JumpReLUSAE
from skmpsae._jumprelu_sae import jump, step
from skmpsae.metrics import l0

FAST = dict(n_components=64, k=4, max_iter=3, batch_size=128, random_state=0)


def test_ste_threshold_gradient_points_the_right_way():
    bw = 0.1
    theta = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    # Latent 0 just above its threshold, latent 1 just below; both in the kernel.
    pre = torch.tensor([[1.02, 0.97]], dtype=torch.float64)
    z = jump(pre, theta, bw)
    assert z.tolist() == [[1.02, 0.0]]
    # The reconstruction wants larger codes (target 2): lowering the threshold helps.
    ((z - 2.0) ** 2).sum().backward()
    assert theta.grad[0] > 0 and theta.grad[1] > 0  # descent lowers both thresholds
    np.testing.assert_allclose(theta.grad.numpy(), [2 * 0.98 / bw, 2 * 2.0 / bw])
    # Codes that overshoot (target 0) raise the threshold of the active latent.
    theta.grad = None
    (jump(pre, theta, bw) ** 2).sum().backward()
    assert theta.grad[0] < 0 and theta.grad[1] == 0
    # The L0 through the same kernel always pushes thresholds up; nothing to pre.
    theta.grad = None
    pre_g = pre.clone().requires_grad_(True)
    count = step(pre_g, theta, bw).sum()
    assert count.item() == 1.0
    count.backward()
    np.testing.assert_allclose(theta.grad.numpy(), [-1 / bw, -1 / bw])
    assert pre_g.grad is None or not pre_g.grad.any()
    # Outside the kernel: no threshold gradient.
    theta.grad = None
    step(torch.tensor([[1.5, 0.2]], dtype=torch.float64), theta, bw).sum().backward()
    assert not theta.grad.any()


def test_pre_gradient_is_the_mask():
    theta = torch.tensor([0.5, 0.5], dtype=torch.float64)
    pre = torch.tensor([[0.7, 0.3]], dtype=torch.float64, requires_grad=True)
    jump(pre, theta, 1e-3).sum().backward()
    assert pre.grad.tolist() == [[1.0, 0.0]]


def test_training_moves_thresholds(digits):
    sae = JumpReLUSAE(**{**FAST, "max_iter": 1}).fit(digits)
    start = JumpReLUSAE(**{**FAST, "max_iter": 1, "learning_rate": 1e-12}).fit(digits)
    assert not np.allclose(sae.log_threshold_, start.log_threshold_)
    np.testing.assert_allclose(sae.threshold_, np.exp(sae.log_threshold_))
    assert sae.threshold_.shape == (64,) and (sae.threshold_ > 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_target_l0_reached_on_digits(digits, seed):
    sae = JumpReLUSAE(k=8, n_components=256, max_iter=30, random_state=seed).fit(digits)
    assert abs(l0(sae.transform(digits)) - 8) <= 0.05 * 8
    assert sae.score(digits) > 0.8


@pytest.mark.parametrize("scale", [1.0, 16.0, 1e2])
def test_default_training_does_not_depend_on_the_data_scale(digits, scale):
    # The relative kernel and the penalty in the data's units: the same
    # training L0 at any scale, which an absolute bandwidth misses.
    X = digits * scale
    sae = JumpReLUSAE(k=8, n_components=128, max_iter=20, random_state=0).fit(X)
    assert abs(l0(sae.transform(X)) - 8) <= 0.05 * 8
    assert sae.score(X) > 0.8
    np.testing.assert_allclose(sae.sparsity_coefficient_ / scale ** 2,
                               JumpReLUSAE(k=8, n_components=128, max_iter=1, random_state=0)
                               .fit(digits).sparsity_coefficient_, rtol=1e-6)


def test_controller_holds_l0_where_the_penalty_alone_drifts(digits):
    common = dict(k=8, n_components=128, max_iter=20, random_state=0, bandwidth=1e-3)
    held = JumpReLUSAE(**common).fit(digits * 16)
    drift = JumpReLUSAE(**common, threshold_adapt_rate=0).fit(digits * 16)
    assert abs(l0(held.transform(digits * 16)) - 8) <= 0.05 * 8
    assert abs(l0(drift.transform(digits * 16)) - 8) > 0.2 * 8


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_transform_equals_torch_path(digits, dtype):
    X = digits.astype(dtype)
    sae = JumpReLUSAE(**FAST).fit(X)
    Z = sae.transform(X)
    assert Z.dtype == dtype and (Z != 0).any() and (Z == 0).any()
    params = {name: torch.from_numpy(getattr(sae, name + "_").astype(dtype))
              for name in ("bias", "encoder", "encoder_bias", "log_threshold")}
    pre = JumpReLUSAE._pre(params, torch.from_numpy(X))
    ref = jump(pre, params["log_threshold"].exp(), 1e-3).numpy()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(Z != 0, ref != 0)
    np.testing.assert_allclose(Z, ref, **tol)
    # The base's torch selection (the _select hook) picks the same entries.
    rows, cols = sae._select(pre, params, training=False)
    mask = np.zeros(Z.shape, dtype=bool)
    mask[rows.numpy(), cols.numpy()] = True
    np.testing.assert_array_equal(mask, Z != 0)


def test_transform_n_steps_keeps_the_largest_jumped_codes(digits):
    sae = JumpReLUSAE(**FAST).fit(digits)
    Z = sae.transform(digits)
    for m in (1, 3, 64):
        Zm = sae.transform(digits, n_steps=m)
        counts = np.count_nonzero(Zm, axis=1)
        np.testing.assert_array_equal(counts, np.minimum(np.count_nonzero(Z, axis=1), m))
        assert ((Zm == 0) | (Zm == Z)).all()  # a subset of the codes, unchanged
        kept_min = np.where(Zm > 0, Zm, np.inf).min(axis=1)
        dropped_max = np.where((Zm == 0) & (Z > 0), Z, -np.inf).max(axis=1)
        assert (dropped_max <= kept_min).all()
    assert not sae.transform(digits, n_steps=0).any()
    np.testing.assert_array_equal(sae.transform(digits, n_steps=64), Z)


@pytest.mark.parametrize(("param", "value"), [
    ("bandwidth", 0.0), ("bandwidth", -1e-3), ("bandwidth", "wide"),
    ("sparsity_coefficient", -0.1), ("sparsity_coefficient", "big"),
    ("threshold_adapt_rate", -0.1), ("threshold_adapt_rate", "fast"),
    ("k", 0), ("learning_rate", 0.0), ("init", "zeros"),
])
def test_bad_parameters_are_rejected_by_name(digits, param, value):
    with pytest.raises((ValueError, TypeError), match=f"'{param}'"):
        JumpReLUSAE(**{**FAST, param: value}).fit(digits)


def test_save_load_and_pickle(digits, tmp_path):
    sae = JumpReLUSAE(**FAST).fit(digits)
    sae.save(tmp_path / "jr")
    for other in (skmpsae.load(tmp_path / "jr"), JumpReLUSAE.load(tmp_path / "jr"),
                  pickle.loads(pickle.dumps(sae))):
        assert type(other) is JumpReLUSAE and other.get_params() == sae.get_params()
        np.testing.assert_array_equal(other.threshold_, sae.threshold_)
        np.testing.assert_array_equal(other.sparsity_coefficient_, sae.sparsity_coefficient_)
        np.testing.assert_array_equal(other.transform(digits), sae.transform(digits))
    loaded = skmpsae.load(tmp_path / "jr")
    assert loaded.partial_fit(digits).n_iter_ == sae.n_iter_ + 1


def test_unfitted_threshold_is_an_attribute_error():
    assert not hasattr(JumpReLUSAE(), "threshold_")
