"""SAELens and sparsify interop, against the real peer libraries (installed by the test extra).

Every file a loader reads here was written by the peer's own save function;
every folder skmpsae writes is opened with the peer's own loader, and codes
and reconstructions are compared with the peer's own forward pass.
"""

import json

import numpy as np
import pytest

from skmpsae import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatchingPursuitSAE,
    MatryoshkaSAE,
    ReLUSAE,
    TopKSAE,
)
from skmpsae.interop import load_saelens, load_sparsify, save_saelens, save_sparsify
from skmpsae.metrics import l0, r2_score

torch = pytest.importorskip("torch")
sae_lens = pytest.importorskip("sae_lens", reason="the test extra installs sae-lens")
sparsify = pytest.importorskip("sparsify", reason="the test extra installs eai-sparsify")

D_IN, D_SAE, N = 16, 48, 80
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}


def _data(dtype, seed=0):
    return np.random.default_rng(seed).normal(size=(N, D_IN)).astype(dtype)


def _randomise(sae, seed, *, unit_decoder=False):
    """Random weights of varied scale (decoder rows of non-unit norm) in a peer module."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
        W_dec = sae.W_dec
        norms = torch.rand(W_dec.shape[0], 1, generator=gen, dtype=W_dec.dtype) + 0.5
        W_dec.copy_(W_dec / W_dec.norm(dim=1, keepdim=True) * (1 if unit_decoder else norms))
    return sae


def _torch_dtype(dtype):
    return torch.float32 if dtype == np.float32 else torch.float64


def _peer(sae, X):
    x = torch.from_numpy(X).to(_torch_dtype(X.dtype))
    with torch.no_grad():
        return sae.encode(x).numpy(), sae(x).numpy()


def _decoder_norms(sae):
    return sae.W_dec.detach().norm(dim=1).numpy()


def _check_tooling(est, X):
    """skmpsae's own tools work on a loaded SAE."""
    Z = est.transform(X, n_steps=3)
    assert (np.count_nonzero(Z, axis=1) <= 3).all()
    assert np.isfinite(est.score(X))
    assert l0(est.transform(X)) >= 0


# ----------------------------------------------------------------- SAELens -> skmpsae
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_saelens_standard(tmp_path, dtype, apply_b_dec):
    cfg = sae_lens.StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, dtype=str(np.dtype(dtype)),
                                     apply_b_dec_to_input=apply_b_dec)
    peer = _randomise(sae_lens.StandardSAE(cfg), 1)
    peer.save_model(tmp_path)
    est = load_saelens(tmp_path)
    assert isinstance(est, ReLUSAE) and est.components_.dtype == dtype
    X = _data(dtype)
    codes, out = _peer(peer, X)
    Z = est.transform(X)
    # The decoder norms are folded into the codes: same support, codes scaled by them.
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes * _decoder_norms(peer), **TOL[dtype])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[dtype])
    np.testing.assert_allclose(np.linalg.norm(est.components_, axis=1), 1, rtol=1e-5)
    _check_tooling(est, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rescale", [False, True])
def test_saelens_topk(tmp_path, dtype, rescale):
    cfg = sae_lens.TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5, dtype=str(np.dtype(dtype)),
                                 rescale_acts_by_decoder_norm=rescale)
    peer = _randomise(sae_lens.TopKSAE(cfg), 2)
    peer.save_model(tmp_path)
    est = load_saelens(tmp_path)
    assert isinstance(est, TopKSAE) and est.k == 5
    X = _data(dtype)
    codes, out = _peer(peer, X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[dtype])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[dtype])
    _check_tooling(est, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saelens_jumprelu_per_latent_threshold(tmp_path, dtype):
    cfg = sae_lens.JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, dtype=str(np.dtype(dtype)))
    peer = _randomise(sae_lens.JumpReLUSAE(cfg), 3)
    with torch.no_grad():  # 0 (a ReLU) and negative thresholds too
        peer.threshold.copy_(torch.linspace(-0.1, 0.6, D_SAE, dtype=peer.threshold.dtype))
    peer.save_model(tmp_path)
    est = load_saelens(tmp_path)
    assert isinstance(est, JumpReLUSAE) and est.threshold_.shape == (D_SAE,)
    assert est.components_.dtype == dtype and (est.threshold_ > 0).all()
    X = _data(dtype)
    codes, out = _peer(peer, X)
    Z = est.transform(X)
    assert (codes != 0).any() and (codes == 0).any()
    # The decoder norms are folded into the codes (and thresholds): same support.
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes * _decoder_norms(peer), **TOL[dtype])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[dtype])
    np.testing.assert_allclose(np.linalg.norm(est.components_, axis=1), 1, rtol=1e-5)
    _check_tooling(est, X)
    # Back to SAELens and again: the same model.
    save_saelens(est, tmp_path / "back")
    again = sae_lens.SAE.load_from_disk(tmp_path / "back")
    for got, want in zip(_peer(again, X), (Z, out), strict=True):
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_saelens_jumprelu_training_file(tmp_path):
    cfg = sae_lens.JumpReLUTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, jumprelu_bandwidth=0.02,
                                             l0_coefficient=3.0)
    peer = _randomise(sae_lens.JumpReLUTrainingSAE(cfg), 7)
    with torch.no_grad():
        peer.threshold.copy_(torch.rand(D_SAE, generator=torch.Generator().manual_seed(0)))
    peer.save_model(tmp_path / "train")
    peer.save_inference_model(tmp_path / "infer")
    X = _data(np.float32)
    codes, out = _peer(sae_lens.SAE.load_from_disk(tmp_path / "infer"), X)
    for folder in ("train", "infer"):
        est = load_saelens(tmp_path / folder)
        assert type(est) is JumpReLUSAE and est.bandwidth == 0.02
        np.testing.assert_allclose(est.sparsity_coefficient_, [3.0])
        Z = est.transform(X)
        np.testing.assert_array_equal(Z != 0, codes != 0)
        np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[np.float32])
    est.partial_fit(X)  # a loaded JumpReLU trains on
    assert est.n_iter_ == 1


def test_saelens_batchtopk_training_and_inference_files(tmp_path):
    cfg = sae_lens.BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=4)
    peer = _randomise(sae_lens.BatchTopKTrainingSAE(cfg), 4)
    peer.topk_threshold = torch.tensor(0.25, dtype=torch.double)
    peer.save_model(tmp_path / "train")
    peer.save_inference_model(tmp_path / "infer")
    inference = sae_lens.SAE.load_from_disk(tmp_path / "infer")
    X = _data(np.float32)
    codes, out = _peer(inference, X)
    for folder in ("train", "infer"):
        est = load_saelens(tmp_path / folder)
        assert type(est) is BatchTopKSAE and est.threshold_.shape == (1,)
        Z = est.transform(X)
        np.testing.assert_array_equal(Z != 0, codes != 0)
        np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[np.float32])
    assert est.k == 4 or est.k == 16  # SAELens' inference config may drop k


def test_saelens_matryoshka(tmp_path):
    cfg = sae_lens.MatryoshkaBatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=4,
                                                        matryoshka_widths=[8, 24, D_SAE])
    peer = _randomise(sae_lens.MatryoshkaBatchTopKTrainingSAE(cfg), 5)
    peer.topk_threshold = torch.tensor(0.2, dtype=torch.double)
    peer.save_model(tmp_path / "train")
    peer.save_inference_model(tmp_path / "infer")
    est = load_saelens(tmp_path / "train")
    assert isinstance(est, MatryoshkaSAE) and est.group_sizes_ == [8, 16, 24]
    X = _data(np.float32)
    codes, out = _peer(sae_lens.SAE.load_from_disk(tmp_path / "infer"), X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[np.float32])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[np.float32])


@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_saelens_matching_pursuit(tmp_path, apply_b_dec):
    cfg = sae_lens.MatchingPursuitSAEConfig(
        d_in=D_IN, d_sae=D_SAE, dtype="float64", residual_threshold=0.0, max_iterations=6,
        stop_on_duplicate_support=False, apply_b_dec_to_input=apply_b_dec)
    peer = _randomise(sae_lens.MatchingPursuitSAE(cfg), 6, unit_decoder=True)
    peer.save_model(tmp_path)
    est = load_saelens(tmp_path)
    assert isinstance(est, MatchingPursuitSAE) and est.k == 6
    X = _data(np.float64)
    codes, out = _peer(peer, X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[np.float64])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[np.float64])
    # skmpsae's adaptive sparsity on a SAELens dictionary: more steps, less error.
    assert r2_score(X, est.inverse_transform(est.transform(X, n_steps=12))) > \
        r2_score(X, est.inverse_transform(Z))


def test_saelens_round_trip(tmp_path):
    """SAELens -> skmpsae -> SAELens gives the peer's own forward pass back."""
    cfg = sae_lens.TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=5)
    peer = _randomise(sae_lens.TopKSAE(cfg), 7)
    peer.save_model(tmp_path / "a")
    save_saelens(load_saelens(tmp_path / "a"), tmp_path / "b")
    again = sae_lens.SAE.load_from_disk(tmp_path / "b")
    X = _data(np.float32)
    for got, want in zip(_peer(again, X), _peer(peer, X), strict=True):
        np.testing.assert_allclose(got, want, **TOL[np.float32])


# ----------------------------------------------------------------- skmpsae -> SAELens
_FAST = dict(n_components=D_SAE, k=4, max_iter=2, batch_size=32, random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda: ReLUSAE(**_FAST), lambda: TopKSAE(**_FAST), lambda: BatchTopKSAE(**_FAST),
    lambda: MatryoshkaSAE(**_FAST, group_sizes=[16, 32]), lambda: MatchingPursuitSAE(**_FAST),
    lambda: JumpReLUSAE(**_FAST, bandwidth=0.01),
], ids=["relu", "topk", "batchtopk", "matryoshka", "mp", "jumprelu"])
def test_export_saelens(tmp_path, make, dtype):
    X = _data(dtype, seed=1)
    est = make().fit(X)
    save_saelens(est, tmp_path)
    peer = sae_lens.SAE.load_from_disk(tmp_path)
    assert peer.cfg.d_sae == D_SAE and str(peer.W_dec.dtype) == f"torch.{np.dtype(dtype)}"
    codes, out = _peer(peer, X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[dtype])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[dtype])
    again = load_saelens(tmp_path)
    np.testing.assert_allclose(again.transform(X), Z, **TOL[dtype])
    if isinstance(est, JumpReLUSAE):
        assert type(again) is JumpReLUSAE and again.k == est.k
        assert again.bandwidth == est.bandwidth
        np.testing.assert_allclose(again.threshold_, est.threshold_, rtol=1e-6)


def test_export_refuses_to_overwrite_and_signed_mp(tmp_path):
    X = _data(np.float32)
    est = TopKSAE(**_FAST).fit(X)
    (tmp_path / "cfg.json").write_text("{}")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_saelens(est, tmp_path)
    assert (tmp_path / "cfg.json").read_text() == "{}"
    save_saelens(est, tmp_path, overwrite=True)
    assert json.loads((tmp_path / "cfg.json").read_text())["architecture"] == "topk"
    signed = MatchingPursuitSAE(**_FAST, positive_code=False).fit(X)
    with pytest.raises(ValueError, match="positive_code=False"):
        save_saelens(signed, tmp_path / "mp")


def test_saelens_unsupported_files_are_refused(tmp_path):
    cfg = sae_lens.StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, normalize_activations="layer_norm")
    sae_lens.StandardSAE(cfg).save_model(tmp_path / "ln")
    with pytest.raises(ValueError, match="normalize_activations='layer_norm'"):
        load_saelens(tmp_path / "ln")
    gated = sae_lens.GatedSAE(sae_lens.GatedSAEConfig(d_in=D_IN, d_sae=D_SAE))
    gated.save_model(tmp_path / "gated")
    with pytest.raises(ValueError, match="architecture 'gated'"):
        load_saelens(tmp_path / "gated")
    mp = sae_lens.MatchingPursuitSAE(sae_lens.MatchingPursuitSAEConfig(d_in=D_IN, d_sae=D_SAE))
    _randomise(mp, 8).save_model(tmp_path / "mp")  # decoder rows of norm 0.5 to 1.5
    with pytest.raises(ValueError, match="unit-norm decoder rows"):
        load_saelens(tmp_path / "mp")
    with pytest.raises(ValueError, match="no cfg.json"):
        load_saelens(tmp_path / "missing")


# ----------------------------------------------------------------- sparsify
def _sparsify_peer(k, seed, dtype=torch.float32):
    cfg = sparsify.SparseCoderConfig(k=k, num_latents=D_SAE)
    coder = sparsify.SparseCoder(D_IN, cfg, dtype=dtype)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        coder.encoder.bias.copy_(torch.randn(D_SAE, generator=gen, dtype=dtype) * 0.2)
        coder.b_dec.copy_(torch.randn(D_IN, generator=gen, dtype=dtype) * 0.2)
    return coder


def _sparsify_forward(coder, X):
    x = torch.from_numpy(X).to(coder.dtype)
    with torch.no_grad():
        top_acts, top_indices, _ = coder.encode(x)
        out = coder.decode(top_acts, top_indices)
    codes = np.zeros((X.shape[0], coder.num_latents), dtype=X.dtype)
    np.put_along_axis(codes, top_indices.numpy(), top_acts.numpy(), axis=1)
    return codes, out.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparsify_load(tmp_path, dtype):
    coder = _sparsify_peer(6, 9, _torch_dtype(dtype))
    coder.save_to_disk(tmp_path)
    est = load_sparsify(tmp_path)
    assert isinstance(est, TopKSAE) and est.k == 6 and est.components_.dtype == dtype
    X = _data(dtype)
    codes, out = _sparsify_forward(coder, X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[dtype])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[dtype])
    _check_tooling(est, X)


def test_sparsify_export_and_round_trip(tmp_path):
    X = _data(np.float32, seed=2)
    est = TopKSAE(**_FAST).fit(X)
    save_sparsify(est, tmp_path / "ours")
    coder = sparsify.SparseCoder.load_from_disk(tmp_path / "ours")
    codes, out = _sparsify_forward(coder, X)
    Z = est.transform(X)
    np.testing.assert_array_equal(Z != 0, codes != 0)
    np.testing.assert_allclose(Z, codes, **TOL[np.float32])
    np.testing.assert_allclose(est.inverse_transform(Z), out, **TOL[np.float32])
    # sparsify -> skmpsae -> sparsify
    peer = _sparsify_peer(5, 10)
    peer.save_to_disk(tmp_path / "peer")
    save_sparsify(load_sparsify(tmp_path / "peer"), tmp_path / "back")
    back = sparsify.SparseCoder.load_from_disk(tmp_path / "back")
    for got, want in zip(_sparsify_forward(back, X), _sparsify_forward(peer, X), strict=True):
        np.testing.assert_allclose(got, want, **TOL[np.float32])
    with pytest.raises(ValueError, match="no sparsify form"):
        save_sparsify(BatchTopKSAE(**_FAST).fit(X), tmp_path / "btk")


def test_sparsify_unsupported_files_are_refused(tmp_path):
    cfg = sparsify.SparseCoderConfig(k=4, num_latents=D_SAE, transcode=True)
    sparsify.SparseCoder(D_IN, cfg).save_to_disk(tmp_path / "tc")
    with pytest.raises(ValueError, match="transcode=True"):
        load_sparsify(tmp_path / "tc")
    cfg = sparsify.SparseCoderConfig(k=4, num_latents=D_SAE, skip_connection=True)
    sparsify.SparseCoder(D_IN, cfg).save_to_disk(tmp_path / "skip")
    with pytest.raises(ValueError, match="skip_connection=True"):
        load_sparsify(tmp_path / "skip")
