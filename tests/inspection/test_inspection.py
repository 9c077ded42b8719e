"""feature_report: hand-computed rows, chunking, modality scores, a real SAE."""

import numpy as np
import pandas as pd
import pytest

from skmpsae import MatchingPursuitSAE
from skmpsae.inspection import feature_report
from skmpsae.metrics import modality_score


class Codes:
    """A 'fitted transformer' whose codes are its input: the report of Z itself."""

    def transform(self, X, n_steps=None):
        Z = np.asarray(X, dtype=np.float64)
        return Z if n_steps is None else np.where(np.abs(Z) >= n_steps, Z, 0.0)


Z = np.array([[1.0, 0.0, 2.0, 0.0],
              [3.0, 0.0, 2.0, 0.0],
              [0.0, 0.0, 5.0, 0.0],
              [2.0, 0.0, -4.0, 0.0]])


@pytest.mark.parametrize("batch_size", [1, 3, 4096])  # top samples merged across chunks
def test_hand_computed(batch_size):
    report = feature_report(Codes(), Z, n_top=2, batch_size=batch_size)
    assert list(report.columns) == ["frequency", "mean_activation", "energy", "top_samples"]
    assert report.index.name == "latent" and list(report.index) == [0, 1, 2, 3]
    np.testing.assert_allclose(report["frequency"], [0.75, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(report["mean_activation"], [2.0, np.nan, 3.25, np.nan])
    np.testing.assert_allclose(report["energy"], [1.5, 0.0, 3.25, 0.0])
    assert [list(t) for t in report["top_samples"]] == [[1, 3], [], [2, 3], []]


def test_modality_column_matches_the_metric():
    modality = ["image", "text", "text", "image"]
    report = feature_report(Codes(), Z, modality, batch_size=3)
    np.testing.assert_allclose(report["modality_score"], modality_score(Z, modality))
    report = feature_report(Codes(), Z, [1, 0, 0, 1], image_label=1)
    np.testing.assert_allclose(report["modality_score"], modality_score(Z, modality))


def test_n_steps_and_dataframe_input():
    report = feature_report(Codes(), pd.DataFrame(Z), n_steps=3, batch_size=2)
    np.testing.assert_allclose(report["frequency"], [0.25, 0.0, 0.5, 0.0])


def test_real_sae(digits):
    sae = MatchingPursuitSAE(n_components=32, k=4, max_iter=2, random_state=0).fit(digits)
    report = feature_report(sae, digits, n_top=5, batch_size=500)
    codes = sae.transform(digits)
    np.testing.assert_allclose(report["frequency"], (codes != 0).mean(axis=0))
    np.testing.assert_allclose(report["energy"], codes.mean(axis=0), rtol=1e-5)
    alive = report["frequency"] > 0
    np.testing.assert_allclose(report["energy"][alive],
                               (report["frequency"] * report["mean_activation"])[alive],
                               rtol=1e-12)
    for latent, top in report["top_samples"].items():
        if len(top):
            assert top[0] == np.argmax(codes[:, latent])
            assert np.all(np.diff(codes[top, latent]) <= 0)


def test_bad_input():
    with pytest.raises(ValueError, match=r"one label per sample \(4\)"):
        feature_report(Codes(), Z, ["image", "text"])
    with pytest.raises(ValueError, match="exactly two distinct labels"):
        feature_report(Codes(), Z, ["image"] * 4)
    with pytest.raises(ValueError, match="n_top must be an integer >= 1, got 0"):
        feature_report(Codes(), Z, n_top=0)


@pytest.mark.parametrize("n_steps", [-1, True, 2.0, "3"])
def test_n_steps_checked_like_transform(n_steps):
    # The same check as the estimators and the scorers: bools are not integers.
    with pytest.raises(ValueError, match=r"n_steps must be a non-negative integer or None, got"):
        feature_report(Codes(), Z, n_steps=n_steps)
