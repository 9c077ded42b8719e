"""A self-contained HTML page with one card per latent, built from ``feature_report``."""

import base64
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["concept_browser"]

# First line of every page written here: what lets a later call replace it (and nothing else).
MARKER = "<!-- skmpsae concept browser -->"
_NUMBERS = ("frequency", "mean_activation", "energy", "modality_score")

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
header{position:sticky;top:0;background:#fff;padding:10px 16px;border-bottom:1px solid #ddd;
 display:flex;gap:12px;align-items:center;flex-wrap:wrap;z-index:1}
h1{font-size:17px;margin:0 12px 0 0}
input,select,button{font:inherit;padding:3px 6px}
#cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:12px;
 padding:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
.card h2{font-size:15px;margin:0 0 6px}
.stats{display:grid;grid-template-columns:auto auto;gap:0 10px;font-size:12px;color:#555}
.thumbs{display:flex;flex-wrap:wrap;gap:3px;margin-top:8px}
.thumbs img{width:64px;height:64px;object-fit:cover;border-radius:3px}
.texts{margin:8px 0 0;padding-left:18px;font-size:12px}
.bar{height:4px;background:#4a7be0;border-radius:2px;margin-top:6px}
#count{color:#666}
"""

_SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const cards = document.getElementById("cards");
  const search = document.getElementById("search");
  const sort = document.getElementById("sort");
  const order = document.getElementById("order");
  const fmt = (v) => (v === null ? "n/a" : Number(v).toPrecision(3));
  const maxEnergy = Math.max(1e-30, ...data.latents.map((c) => c.energy || 0));
  function card(c) {
    const div = document.createElement("div");
    div.className = "card";
    div.dataset.latent = c.latent;
    const h2 = document.createElement("h2");
    h2.textContent = "latent " + c.latent;
    div.appendChild(h2);
    const stats = document.createElement("div");
    stats.className = "stats";
    for (const key of data.columns) {
      const name = document.createElement("span");
      name.textContent = key.replace("_", " ");
      const value = document.createElement("span");
      value.textContent = fmt(c[key]);
      value.className = "v-" + key;
      stats.append(name, value);
    }
    div.appendChild(stats);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * (c.energy || 0) / maxEnergy).toFixed(1) + "%";
    div.appendChild(bar);
    if (c.images.length) div.appendChild(listOf("div", "thumbs", c.images, (id) => {
      const img = document.createElement("img");
      img.src = data.thumbs[id];
      img.title = "item " + id;
      return img;
    }));
    if (c.texts.length) div.appendChild(listOf("ol", "texts", c.texts, (t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }));
    return div;
  }
  // One element of class className holding make(item) for each item (thumbnails, texts).
  function listOf(tag, className, items, make) {
    const box = document.createElement(tag);
    box.className = className;
    for (const item of items) box.appendChild(make(item));
    return box;
  }
  function render() {
    const q = search.value.trim().toLowerCase();
    const key = sort.value;
    const sign = order.value === "desc" ? -1 : 1;
    const shown = data.latents.filter((c) => !q || String(c.latent) === q ||
      c.texts.some((t) => t.toLowerCase().includes(q)));
    shown.sort((a, b) => {
      const x = a[key], y = b[key];
      if (x === y) return a.latent - b.latent;
      if (x === null) return 1;
      if (y === null) return -1;
      return sign * (x - y);
    });
    cards.replaceChildren(...shown.map(card));
    document.getElementById("count").textContent =
      shown.length + " of " + data.latents.length + " latents";
    history.replaceState(null, "", "#" + new URLSearchParams(
      {sort: key, order: order.value, q: search.value}).toString());
  }
  const start = new URLSearchParams(location.hash.slice(1));
  if (start.has("sort")) sort.value = start.get("sort");
  if (start.has("order")) order.value = start.get("order");
  if (start.has("q")) search.value = start.get("q");
  for (const el of [search, sort, order]) el.addEventListener("input", render);
  render();
})();
"""


def _thumbnail(item, size):
    from .embedders._items import load_image

    image = load_image(item, 0).copy()
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value):
    value = float(value)
    return None if math.isnan(value) else value


def _items_of(rows, item_index, n_items):
    """Distinct items behind the top rows, in order, up to ``n_items``."""
    seen = []
    for row in rows:
        item = int(item_index[row]) if item_index is not None else int(row)
        if item not in seen:
            seen.append(item)
        if len(seen) == n_items:
            break
    return seen


def _page_data(report, images, texts, item_index, n_items, thumb_size):
    columns = [name for name in _NUMBERS if name in report.columns]
    thumbs, latents = {}, []
    for latent, row in report.iterrows():
        items = _items_of(row["top_samples"], item_index, n_items)
        entry = {"latent": int(latent), **{name: _number(row[name]) for name in columns},
                 "images": [], "texts": []}
        for item in items:
            if texts is not None and isinstance(texts[item], str):
                entry["texts"].append(texts[item])
            elif images is not None and not isinstance(images[item], str):
                if item not in thumbs:
                    thumbs[item] = _thumbnail(images[item], thumb_size)
                entry["images"].append(item)
        latents.append(entry)
    return {"columns": columns, "latents": latents, "thumbs": thumbs}


def _check_sources(report, images, texts, item_index):
    missing = [name for name in ("frequency", "mean_activation", "energy", "top_samples")
               if name not in report.columns]
    if missing:
        raise ValueError(f"report lacks the column(s) {missing}: pass the DataFrame that "
                         "skmpsae.inspection.feature_report returns.")
    n_rows = max((max(rows) for rows in report["top_samples"] if len(rows)), default=-1) + 1
    if item_index is not None:
        item_index = np.asarray(item_index)
        if item_index.ndim != 1 or len(item_index) < n_rows:
            raise ValueError(f"item_index must give the item of each of the report's rows (at "
                             f"least {n_rows}); got shape {item_index.shape}.")
        n_rows = int(item_index.max()) + 1 if len(item_index) else 0
    for name, values in (("images", images), ("texts", texts)):
        if values is not None and len(values) < n_rows:
            raise ValueError(f"{name} has {len(values)} items but the report refers to item "
                             f"{n_rows - 1}; pass the items in the order of the rows (with "
                             "item_index when an item gives several rows).")
    return item_index


def _write_page(path, page):
    path = Path(os.fspath(path))
    if path.is_dir() or (path.exists() and not _is_ours(path)):
        raise FileExistsError(f"path='{path}' exists and is not a concept browser page "
                              "written by skmpsae; it is left as it is. Choose another path.")
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".",
                                     prefix=f".{path.name}.", delete=False) as file:
        file.write(page)
    os.replace(file.name, path)
    return path


def _is_ours(path):
    try:
        with open(path, encoding="utf-8") as file:
            return file.readline().strip() == MARKER
    except (OSError, UnicodeDecodeError):
        return False


def concept_browser(report: "pandas.DataFrame", path: "str | os.PathLike", *,  # noqa: F821
                    images: Sequence | None = None, texts: Sequence | None = None,
                    item_index: ArrayLike | None = None, n_items: int = 8,
                    thumb_size: int = 96, title: str = "Concept browser") -> Path:
    """Write one self-contained HTML page with a card per latent of a feature report.

    Each card shows the latent's frequency, mean activation, energy and
    (when the report has it) modality score, a bar of its energy, and its
    top-activating images (as embedded thumbnails) or texts. The page can
    be sorted by any column and searched by latent number or by the text of
    its examples; it needs no server, no network and no other file (open it
    in any browser). The sort and the search are kept in the address
    (``page.html#sort=frequency&order=desc&q=cat``).

    Parameters
    ----------
    report : pandas.DataFrame
        What :func:`skmpsae.inspection.feature_report` returns (select or
        sort rows first to show fewer latents).
    path : str or path-like
        The HTML file to write. An existing file is replaced only if it is
        a page this function wrote; anything else is refused.
    images : sequence of images, default=None
        The images behind the report's samples (PIL images, arrays or
        paths), indexed by item.
    texts : sequence of str, default=None
        Texts behind the samples, indexed by item (a mixed list of texts
        and images may be passed as both ``images`` and ``texts``).
    item_index : array-like of shape (n_rows,), default=None
        Item of each row of the data the report was computed on (an
        embedder's ``item_index(X)``, where an item gives several rows); None:
        row ``i`` is item ``i``.
    n_items : int, default=8
        Distinct top items shown per latent.
    thumb_size : int, default=96
        Largest side of the thumbnails, in pixels.
    title : str, default="Concept browser"
        Title of the page.

    Returns
    -------
    path : pathlib.Path
        The page written.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE
    >>> from skmpsae.inspection import feature_report
    >>> from skmpsae.visualization import concept_browser
    >>> digits = load_digits()
    >>> X = digits.data / 16.0
    >>> sae = MatchingPursuitSAE(n_components=16, k=3, max_iter=2, random_state=0).fit(X)
    >>> images = [(image * 255 / 16).astype("uint8") for image in digits.images]
    >>> page = concept_browser(feature_report(sae, X, n_top=4), tempfile.mkdtemp() + "/c.html",
    ...                        images=images)
    >>> page.read_text().count('"latent": ')
    16
    """
    for name, value, low in (("n_items", n_items, 1), ("thumb_size", thumb_size, 8)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an int of at least {low}.")
    item_index = _check_sources(report, images, texts, item_index)
    data = _page_data(report, images, texts, item_index, n_items, thumb_size)
    # "</" could close the script element early: JSON allows escaping the slash.
    payload = json.dumps(data).replace("</", "<\\/")
    options = "".join(f'<option value="{name}"{" selected" * (name == "energy")}>'
                      f'{name.replace("_", " ")}</option>'
                      for name in [*data["columns"], "latent"])
    page = (f"{MARKER}\n<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1>"
            '<input id="search" type="search" placeholder="latent number or text">'
            f'<label>sort by <select id="sort">{options}</select></label>'
            '<select id="order"><option value="desc">descending</option>'
            '<option value="asc">ascending</option></select><span id="count"></span></header>'
            '<main id="cards"></main>'
            f'<script id="data" type="application/json">{payload}</script>'
            f"<script>{_SCRIPT}</script></body></html>\n")
    return _write_page(path, page)
