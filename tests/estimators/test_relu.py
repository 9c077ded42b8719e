"""ReLUSAE's decoder-norm L1: folding the norms, the strong baseline, revival of dead latents."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split

import skmpsae
from skmpsae import ReLUSAE
from skmpsae._relu_sae import _fold_decoder_norms, _revive_latents
from skmpsae._training._loop import TrainState
from skmpsae.metrics import l0, near_duplicate_count

FAST = dict(k=8, n_components=128, max_iter=3, random_state=0)


def _state(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arrays = {"components": rng.normal(size=(6, 4)) * rng.uniform(0.2, 3, size=(6, 1)),
              "bias": rng.normal(size=4), "encoder": rng.normal(size=(6, 4)),
              "encoder_bias": rng.normal(size=6), "l1_coefficient": np.array([0.1])}
    arrays = {n: v.astype(dtype) for n, v in arrays.items()}
    return TrainState(arrays, learning_rate=1e-3, device="cpu",
                      buffer_names=("l1_coefficient",))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_folding_keeps_reconstructions_and_penalty(dtype):
    state = _state(dtype=dtype)
    est = ReLUSAE(k=2)
    X = torch.from_numpy(np.random.default_rng(1).normal(size=(20, 4)).astype(dtype))
    p = state.params
    with torch.no_grad():
        before_z = est._pre(p, X).clamp_min(0)
        before = before_z @ p["components"] + p["bias"]
        before_pen = (before_z * p["components"].norm(dim=1)).sum()
        _fold_decoder_norms(state)
        after_z = est._pre(p, X).clamp_min(0)
        after = after_z @ p["components"] + p["bias"]
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(after, before, **tol)
    torch.testing.assert_close(after_z.sum(), before_pen, **tol)  # unit rows: plain L1
    torch.testing.assert_close(p["components"].norm(dim=1),
                               torch.ones(6, dtype=p["components"].dtype), **tol)


@pytest.mark.parametrize("mode", ["decoder_norm", "unit"])
def test_fitted_decoder_has_unit_rows_and_persists(digits, mode, tmp_path):
    sae = ReLUSAE(**FAST, l1_mode=mode).fit(digits)
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1, atol=1e-6)
    sae.save(tmp_path / "relu")
    other = skmpsae.load(tmp_path / "relu")
    assert other.get_params() == sae.get_params()
    np.testing.assert_array_equal(other.transform(digits), sae.transform(digits))
    # A warm start goes on from the folded state (and folds again).
    sae.set_params(warm_start=True, max_iter=4).fit(digits)
    assert sae.n_iter_ == 7  # 3 + max_iter more
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1, atol=1e-6)


def test_decoder_norm_mode_trains_the_norms(digits):
    # Without the folding at the end, the norms would stay free: the last
    # epoch's steps leave them off 1 before it.
    import skmpsae._relu_sae as relu

    seen = {}
    original = relu._fold_decoder_norms

    def spy(state):
        seen["norms"] = state.params["components"].detach().norm(dim=1).numpy().copy()
        original(state)

    relu._fold_decoder_norms = spy
    try:
        ReLUSAE(**FAST, l1_mode="decoder_norm").fit(digits)
    finally:
        relu._fold_decoder_norms = original
    assert np.abs(seen["norms"] - 1).max() > 1e-3


def test_strong_baseline_on_digits(digits):
    # The defaults (l1_mode="unit", learning_rate=1e-2) reach held-out
    # R^2 ~0.41 at mean L0 ~11 with ~400 near-duplicate pairs.
    X_train, X_test = train_test_split(digits, test_size=0.2, random_state=0)
    sae = ReLUSAE(k=8, l1_mode="decoder_norm", learning_rate=3e-2, random_state=0).fit(X_train)
    Z = sae.transform(X_test)
    assert sae.score(X_test) > 0.75
    assert abs(l0(Z) - 8) <= 0.3 * 8
    assert near_duplicate_count(sae, 0.9) < 100


def test_revival_points_dead_latents_at_residuals(digits):
    sae = ReLUSAE(k=4)
    state = _state()
    X = np.random.default_rng(2).normal(size=(50, 4))
    before = {n: p.detach().clone() for n, p in state.params.items()}
    dead = np.array([1, 4])
    _revive_latents(sae, state, X, dead, np.random.RandomState(0))
    p = state.params
    live = [0, 2, 3, 5]
    for name in ("components", "encoder", "encoder_bias"):
        torch.testing.assert_close(p[name][live], before[name][live])  # live rows untouched
        assert not torch.equal(p[name][dead], before[name][dead])
    # Revived decoder and encoder rows share a direction; each fires on some samples.
    D, W = p["components"][dead], p["encoder"][dead]
    cos = (D * W).sum(1) / (D.norm(dim=1) * W.norm(dim=1))
    torch.testing.assert_close(cos, torch.ones(2, dtype=cos.dtype))
    with torch.no_grad():
        fires = (sae._pre(p, torch.from_numpy(X))[:, dead] > 0).sum(0)
    assert (fires > 0).all() and (fires < 50).all()


def test_revive_dead_reduces_dead_latents(digits):
    base = dict(k=8, n_components=256, max_iter=20, learning_rate=1e-1, random_state=0)
    without = ReLUSAE(**base).fit(digits)
    with_rev = ReLUSAE(**base, revive_dead=True)
    with_rev.fit(digits)
    def dead(s):
        return int((~s.transform(digits).any(axis=0)).sum())
    assert dead(with_rev) < dead(without)


@pytest.mark.parametrize("param, value", [("l1_mode", "decoder"), ("revive_dead", "yes")])
def test_bad_parameters_name_themselves(digits, param, value):
    with pytest.raises(ValueError, match=param):
        ReLUSAE(**{**FAST, param: value}).fit(digits)
