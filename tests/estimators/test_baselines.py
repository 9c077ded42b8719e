"""The baseline SAEs: each variant's defining property, and the shared API."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skmpsae
from skmpsae import BatchTopKSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skmpsae.metrics import dead_fraction, l0, r2_score

BASELINES = [TopKSAE, BatchTopKSAE, MatryoshkaSAE, ReLUSAE]


def quick(cls, **params):
    return cls(**{"k": 8, "n_components": 128, "max_iter": 5, "random_state": 0, **params})


@pytest.fixture(scope="module")
def fitted(digits):
    return {cls: quick(cls).fit(digits) for cls in BASELINES}


@pytest.mark.parametrize("cls", BASELINES)
def test_fit_and_api(cls, fitted, digits):
    sae = fitted[cls]
    assert sae.components_.shape == sae.encoder_.shape == (128, 64)
    assert sae.encoder_bias_.shape == (128,) and sae.bias_.shape == (64,)
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1, rtol=1e-5)
    assert sae.score(digits) > 0.3
    assert sae.transform(digits.astype(np.float64)).dtype == np.float64
    for m in (1, 3, 20):
        Z = sae.transform(digits, n_steps=m)
        assert np.count_nonzero(Z, axis=1).max() <= m and (Z >= 0).all()
    with pytest.raises(ValueError, match="n_steps=129 exceeds n_components_=128"):
        sae.transform(digits, n_steps=129)


@pytest.mark.parametrize("cls", BASELINES)
def test_save_load_and_pickle(cls, fitted, digits, tmp_path):
    import pickle

    sae = fitted[cls]
    sae.save(tmp_path / "m")
    for other in (skmpsae.load(tmp_path / "m"), pickle.loads(pickle.dumps(sae))):
        assert type(other) is cls
        np.testing.assert_array_equal(other.transform(digits), sae.transform(digits))


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE])
def test_numpy_encoder_matches_training_activation(cls, fitted, digits):
    # Inference (NumPy) and training (torch) compute the same codes; for
    # BatchTopK compare per-sample top-k, the inference form with n_steps.
    sae = fitted[cls]
    X = digits[:300].astype(np.float64)
    params = {n: torch.from_numpy(getattr(sae, n + "_").astype(np.float64))
              for n in sae._array_names}
    pre = sae._pre(params, torch.from_numpy(X))
    if cls is TopKSAE:
        expected = sae._activate(pre, params).numpy()
        got = sae.transform(X)
    else:
        expected = torch.where(pre > params["threshold"], pre, 0).clamp_min(0).numpy()
        got = sae.transform(X)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_batchtopk_mean_l0_near_k(digits):
    sae = BatchTopKSAE(k=8, n_components=256, max_iter=10, random_state=0).fit(digits)
    assert 0.75 * 8 <= l0(sae.transform(digits)) <= 1.25 * 8


def test_matryoshka_prefixes(digits):
    sae = MatryoshkaSAE(k=8, n_components=256, max_iter=10, random_state=0).fit(digits)
    assert sae.group_sizes_ == [16, 16, 32, 64, 128]
    Z = sae.transform(digits)
    ends = np.cumsum(sae.group_sizes_)
    r2 = [r2_score(digits, Z[:, :e] @ sae.components_[:e] + sae.bias_) for e in ends]
    assert all(b > a for a, b in zip(r2, r2[1:], strict=False))
    assert r2[0] > 0.5  # the first 16 latents alone are a usable SAE
    with pytest.raises(ValueError, match="group_sizes=.*summing to n_components=256"):
        MatryoshkaSAE(k=4, n_components=256, group_sizes=[100, 100]).fit(digits)


def test_relu_reaches_target_l0(digits):
    sae = ReLUSAE(k=8, n_components=256, random_state=0).fit(digits)
    assert abs(l0(sae.transform(digits)) - 8) <= 0.2 * 8
    assert sae.l1_coefficient_[0] > 0


def test_auxk_reduces_dead_latents(digits):
    # Random decoder directions and few active latents: many latents never win.
    base = dict(k=4, n_components=512, max_iter=10, init="random", dead_after=256,
                random_state=0)
    without = TopKSAE(aux_coef=0.0, **base).fit(digits)
    with_aux = TopKSAE(**base).fit(digits)
    dead_without = dead_fraction(without.transform(digits))
    dead_with = dead_fraction(with_aux.transform(digits))
    assert dead_without > 0.3
    assert dead_with < 0.85 * dead_without
    assert with_aux.score(digits) >= without.score(digits) - 0.02
    # samples_since_fired_ tracks the latents that did not fire
    fired = np.count_nonzero(with_aux.transform(digits), axis=0) > 0
    assert (with_aux.samples_since_fired_ >= 0).all()
    since = with_aux.samples_since_fired_
    assert since[~fired].mean() > since[fired].mean()


def test_topk_degrades_away_from_trained_k(fitted, digits):
    sae = fitted[TopKSAE]
    r2 = {m: r2_score(digits, sae.inverse_transform(sae.transform(digits, n_steps=m)))
          for m in (8, 64)}
    assert r2[64] < r2[8] + 0.05  # no large gain from more active latents


@pytest.mark.parametrize("cls", BASELINES)
def test_grid_search_over_k_alone_and_in_pipeline(cls, digits):
    y = load_digits().target
    search = GridSearchCV(quick(cls, max_iter=2), {"k": [2, 8]}, cv=2).fit(digits)
    assert search.best_params_["k"] in (2, 8)
    pipe = make_pipeline(quick(cls, max_iter=2), LogisticRegression(max_iter=200))
    grid = GridSearchCV(pipe, {f"{cls.__name__.lower()}__k": [4, 8]}, cv=2).fit(digits, y)
    assert grid.best_score_ > 0.6


def _at_offset(a, offset):
    """A copy of ``a`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    raw = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_codes_do_not_depend_on_where_the_arrays_lie(dtype):
    # Torch's MKL rounds a product by its operands' alignment (an array 8 bytes
    # off a 16-byte boundary, as safetensors files hold theirs, rounded some
    # codes an ulp apart): the encoder copies unaligned arrays first.
    X = (load_digits().data / 16).astype(dtype)
    sae = TopKSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    expected = sae.transform(X)
    for x_offset, encoder_offset in ((0, 8), (0, 40), (8, 0), (24, 16), (8, 8)):
        moved = pickle.loads(pickle.dumps(sae))  # no cache of cast arrays
        moved.encoder_ = _at_offset(sae.encoder_, encoder_offset)
        np.testing.assert_array_equal(moved.transform(_at_offset(X, x_offset)), expected)
