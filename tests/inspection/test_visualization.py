"""Top-activating crops with heat maps, and the HTML concept browser (structure, JS, Chromium)."""

import base64
import importlib.util
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skmpsae import MatchingPursuitSAE
from skmpsae.inspection import feature_report
from skmpsae.visualization import concept_browser, plot_top_activations, top_items

SCRIPT = Path(__file__).parents[1] / "scripts" / "check_concept_browser.py"


def _naive_top(codes, item_index, latent, n_top):
    best = {}
    for row, item in enumerate(item_index):
        best[item] = max(best.get(item, 0.0), abs(codes[row, latent]))
    ranked = sorted((item for item in best if best[item] > 0), key=lambda i: (-best[i], i))
    return ranked[:n_top]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 5), st.integers(0, 10_000), st.integers(1, 4))
def test_top_items_match_a_loop(n_items, n_latents, seed, n_top):
    rng = np.random.default_rng(seed)
    item_index = np.sort(rng.integers(0, n_items, 30))
    codes = rng.normal(size=(30, n_latents)) * (rng.random((30, n_latents)) < 0.3)
    for dtype in (np.float32, np.float64):
        tops = top_items(codes.astype(dtype), item_index, range(n_latents), n_top)
        for latent, top in enumerate(tops):
            assert top.tolist() == _naive_top(codes.astype(dtype), item_index, latent, n_top)


def test_top_items_errors():
    with pytest.raises(ValueError, match="one item per row"):
        top_items(np.ones((3, 2)), [0, 1], [0])
    with pytest.raises(ValueError, match=r"latents must be in \[0, 1\]"):
        top_items(np.ones((3, 2)), [0, 1, 2], [2])


@pytest.fixture(scope="module")
def toy():
    """24 images of 4 tokens (2 x 2 grid) each, an MP-SAE fitted on the tokens."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(24)]
    X = rng.normal(size=(24 * 4, 8)).astype(np.float32)
    item_index = np.repeat(np.arange(24), 4)
    grid = np.tile([[0, 0], [0, 1], [1, 0], [1, 1]], (24, 1))
    sae = MatchingPursuitSAE(n_components=8, k=2, max_iter=2, random_state=0).fit(X)
    return sae, X, images, item_index, grid


def test_plot_top_activations_shows_the_top_images_and_heat(toy):
    import matplotlib.pyplot as plt

    sae, X, images, item_index, grid = toy
    codes = np.abs(sae.transform(X))
    fig = plot_top_activations(sae, X, images, item_index, grid=grid, latents=[3, 5], n_top=4,
                               labels=["a", "b"])
    axes = np.array(fig.axes).reshape(2, 4)
    for row, latent in enumerate([3, 5]):
        expected = _naive_top(codes, item_index, latent, 4)
        for col, ax in enumerate(axes[row]):
            if col >= len(expected):
                assert not ax.axison
                continue
            shown, heat = ax.get_images()  # the image, then the heat map over it
            assert np.array_equal(shown.get_array(), images[expected[col]])
            rows = np.flatnonzero(item_index == expected[col])
            assert np.allclose(heat.get_array().filled(0), codes[rows, latent].reshape(2, 2))
            assert ax.get_title() == f"{codes[rows, latent].max():.2f}"
    assert axes[0, 0].get_ylabel() == "latent 3\na"
    plt.close(fig)
    fig = plot_top_activations(sae, X, images, item_index, n_top=2)  # no grid: no overlay
    assert all(len(ax.get_images()) <= 1 for ax in fig.axes)
    plt.close(fig)
    with pytest.raises(ValueError, match=r"grid must have shape \(n_rows, 2\) = \(96, 2\)"):
        plot_top_activations(sae, X, images, item_index, grid=grid[:5])


def _page(tmp_path, toy, **kwargs):
    sae, X, images, item_index, grid = toy
    modality = np.where(item_index % 2, "image", "text")
    report = feature_report(sae, X, modality, n_top=20)
    path = concept_browser(report, tmp_path / "page.html", images=images,
                           item_index=item_index, n_items=3, **kwargs)
    return path, report


def _data(path):
    text = path.read_text()
    payload = re.search(r'<script id="data" type="application/json">(.*?)</script>', text, re.S)
    return text, json.loads(payload.group(1))


def test_browser_page_holds_every_latent(tmp_path, toy):
    path, report = _page(tmp_path, toy)
    text, data = _data(path)
    assert text.startswith("<!-- skmpsae concept browser -->\n<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert data["columns"] == ["frequency", "mean_activation", "energy", "modality_score"]
    assert [c["latent"] for c in data["latents"]] == report.index.tolist()
    item_index = toy[3]
    for card, (_, row) in zip(data["latents"], report.iterrows(), strict=True):
        assert card["frequency"] == pytest.approx(row["frequency"])
        expected = list(dict.fromkeys(item_index[row["top_samples"]].tolist()))[:3]
        assert card["images"] == expected
        score = row["modality_score"]
        assert card["modality_score"] == (None if np.isnan(score) else pytest.approx(score))
    from PIL import Image

    for uri in data["thumbs"].values():
        head, b64 = uri.split(",", 1)
        assert head == "data:image/jpeg;base64"
        assert Image.open(io.BytesIO(base64.b64decode(b64))).size == (16, 16)


def test_browser_texts_are_escaped(tmp_path):
    report = pd.DataFrame({"frequency": [0.5, 0.25], "mean_activation": [1.0, np.nan],
                           "energy": [0.5, 0.0], "top_samples": [[1, 0], []]})
    texts = ["a cat </script><script>alert(1)</script>", "two dogs"]
    path = concept_browser(report, tmp_path / "t.html", texts=texts)
    text, data = _data(path)
    assert text.count("</script>") == 2  # the data and the code: the text cannot close them
    assert data["latents"][0]["texts"] == [texts[1], texts[0]]
    assert data["latents"][1]["mean_activation"] is None and data["thumbs"] == {}


def test_browser_never_replaces_what_it_did_not_write(tmp_path, toy):
    mine = tmp_path / "page.html"
    mine.write_text("<html>my notes</html>")
    with pytest.raises(FileExistsError, match="not a concept browser page"):
        _page(tmp_path, toy)
    assert mine.read_text() == "<html>my notes</html>"
    mine.unlink()
    path, _ = _page(tmp_path, toy)
    assert _page(tmp_path, toy)[0] == path  # its own page is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    with pytest.raises(FileExistsError):
        concept_browser(_page(tmp_path, toy)[1], tmp_path)
    with pytest.raises(ValueError, match="report lacks"):
        concept_browser(pd.DataFrame({"frequency": [1.0]}), tmp_path / "x.html")
    with pytest.raises(ValueError, match="images has 2 items"):
        concept_browser(_page(tmp_path, toy)[1], tmp_path / "x.html", images=toy[2][:2],
                        item_index=toy[3])


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_browser_script_is_valid_javascript(tmp_path, toy):
    text, _ = _data(_page(tmp_path, toy)[0])
    script = text.rsplit("<script>", 1)[1].split("</script>")[0]
    (tmp_path / "page.js").write_text(script)
    subprocess.run(["node", "--check", str(tmp_path / "page.js")], check=True, timeout=60)


def _checker():
    spec = importlib.util.spec_from_file_location("check_concept_browser", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browser_in_headless_chromium(tmp_path, toy):
    # Skipped only without Chromium; tests/scripts/check_concept_browser.py is the documented
    # check (and the docs' screenshot) on the real MobileNetV2 page.
    check = _checker()
    if check.chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    path, report = _page(tmp_path, toy)
    latents, count, n_images = check.rendered_cards(path)
    assert latents == report.sort_values("energy", ascending=False, kind="stable").index.tolist()
    assert count == f"{len(report)} of {len(report)} latents" and n_images > 0
    by_frequency, _, _ = check.rendered_cards(path, "#sort=frequency&order=asc")
    assert np.all(np.diff(report.loc[by_frequency, "frequency"].to_numpy()) >= 0)
    searched, count, _ = check.rendered_cards(path, "#q=5")
    assert searched == [5] and count == f"1 of {len(report)} latents"
