"""
Cross-modal latents: modality scores on a two-modality embedding space
======================================================================

In a vision-language model such as CLIP, images and texts share one
embedding space but sit in two separate regions (the "modality gap"). The
modality score of a latent (:func:`~skmpsae.metrics.modality_score`) is the
share of its mean activation that comes from images: 1 for an image-only
latent, 0 for a text-only one, 0.5 for a latent that fires as much on both.

Finding of the paper tested here (SPEC section 1): on CLIP, MP-SAE finds
latents that fire for both images and texts (modality scores in the
middle), where the other SAEs give a bimodal distribution (0 or 1).

**The data are synthetic.** No CLIP weights can be downloaded where this
gallery is built, so we simulate a joint space with the structure the
finding is about: a common centre, a modality-gap offset of opposite sign
for images and texts, 32 concepts shared by both modalities and 16 concepts
of each modality alone, a little noise, and unit-norm rows as CLIP
embeddings are. Whether a shared concept points the same way in both
modalities is an assumption about real models, so two versions are built:
shared concepts with identical directions in both modalities, and with a
modality-specific "twist" (cosine 0.5 between a concept's image and text
directions). Nothing here measures CLIP itself; the verdicts only say what
happens on these two synthetic spaces.
"""

# %%
# A synthetic joint embedding space
# ---------------------------------

import matplotlib.pyplot as plt
import numpy as np

from skmpsae import BatchTopKSAE, MatchingPursuitSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skmpsae.metrics import modality_score


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def two_modalities(twist, n=2000, dim=64, n_shared=32, n_own=16, gap=1.0, random_state=0):
    """``n`` image and ``n`` text embeddings; each concept fires with magnitude in [0.5, 1.5]."""
    rng = np.random.default_rng(random_state)
    center, gap_direction = unit(rng.standard_normal((2, dim)))
    shared = unit(rng.standard_normal((n_shared, dim)))
    X = []
    for sign in (1, -1):  # images, then texts
        directions = unit(np.cos(twist) * shared
                          + np.sin(twist) * unit(rng.standard_normal((n_shared, dim))))
        own = unit(rng.standard_normal((n_own, dim)))
        A = (rng.random((n, n_shared)) < 3 / n_shared) * rng.uniform(0.5, 1.5, (n, n_shared))
        B = (rng.random((n, n_own)) < 1 / n_own) * rng.uniform(0.5, 1.5, (n, n_own))
        noise = 0.05 * rng.standard_normal((n, dim))
        X.append(unit(A @ directions + B @ own + center + sign * gap * gap_direction + noise))
    return np.vstack(X).astype(np.float32), np.repeat(["image", "text"], n)


SPACES = {"same directions": 0.0, "twisted (cos 0.5)": np.pi / 4}
data = {name: two_modalities(twist) for name, twist in SPACES.items()}
for name, (X, modality) in data.items():
    images, texts = X[modality == "image"], X[modality == "text"]
    print(f"{name}: mean cosine image-image {np.mean(images @ images.T):.2f}, "
          f"text-text {np.mean(texts @ texts.T):.2f}, image-text {np.mean(images @ texts.T):.2f}")

# %%
# Modality score of every latent
# ------------------------------
# Each SAE: 256 latents, ``k=4``, trained on images and texts together.
# Latents that never fire have no score and are left out.

SAES = {"MP-SAE": MatchingPursuitSAE, "TopK": TopKSAE, "BatchTopK": BatchTopKSAE,
        "Matryoshka": MatryoshkaSAE, "ReLU": ReLUSAE}
scores = {}
for space, (X, modality) in data.items():
    for name, cls in SAES.items():
        sae = cls(n_components=256, k=4, max_iter=20, random_state=0).fit(X)
        score = modality_score(sae.transform(X), modality)
        scores[space, name] = score[~np.isnan(score)]
        middle = np.mean((scores[space, name] > 0.25) & (scores[space, name] < 0.75))
        print(f"{space:<18} {name:<11} R2 {sae.score(X):.3f}, {scores[space, name].size:3d} "
              f"living latents, {middle:.0%} with a score in (0.25, 0.75)")

fig, axes = plt.subplots(len(SPACES), len(SAES), figsize=(13, 5.5), sharex=True,
                         layout="constrained")
for row, space in zip(axes, SPACES, strict=True):
    for ax, name in zip(row, SAES, strict=True):
        ax.hist(scores[space, name], bins=np.linspace(0, 1, 21), color="tab:purple")
        ax.axvspan(0.25, 0.75, color="gray", alpha=0.15)
        ax.set_title(f"{name}\n{space}", fontsize=9)
    row[0].set_ylabel("latents")
for ax in axes[-1]:
    ax.set_xlabel("modality score (0 text, 1 image)")
fig.suptitle("Modality scores of the living latents (shaded: cross-modal band)")

# %%
# Verdicts
# --------
# The share of living latents whose score lies in (0.25, 0.75), MP-SAE
# against the others, on each synthetic space.

for space in SPACES:
    middle = {name: np.mean((scores[space, name] > 0.25) & (scores[space, name] < 0.75))
              for name in SAES}
    not_below = [name for name, v in middle.items() if name != "MP-SAE" and v >= middle["MP-SAE"]]
    print(f"{space}: MP-SAE has a larger share of cross-modal latents than every other SAE: "
          f"finding {'NOT supported' if not_below else 'supported'} ("
          + ", ".join(f"{name} {v:.1%}" for name, v in middle.items())
          + (f"; not below MP-SAE: {', '.join(not_below)})" if not_below else ")"))
