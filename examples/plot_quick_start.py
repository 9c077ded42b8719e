"""
Quick start: MP-SAE on handwritten digits
=========================================

Fit a :class:`~skmpsae.MatchingPursuitSAE` on scikit-learn's 8x8 digits,
encode held-out digits into sparse codes, decode them, and look at what was
learned: the atoms of the dictionary, and reconstructions that gain one atom
per matching-pursuit step.

Finding of the paper shown here: the reconstruction error of matching pursuit
never increases with the number of steps (SPEC section 1, "adaptive
sparsity"). The last cell checks it on every held-out digit.
"""

# %%
# Fit, encode, decode
# -------------------
# 256 atoms (four per pixel), ``k=8`` pursuit steps per digit in training.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skmpsae import MatchingPursuitSAE
from skmpsae.metrics import l0, r2_score

X = load_digits().data.astype(np.float32) / 16
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

sae = MatchingPursuitSAE(n_components=256, k=8, max_iter=30, random_state=0).fit(X_train)
codes = sae.transform(X_test)
X_hat = sae.inverse_transform(codes)
print(f"codes {codes.shape}, {l0(codes):.1f} nonzeros per digit on average")
print(f"held-out R2: {r2_score(X_test, X_hat):.3f} (sae.score gives the same: "
      f"{sae.score(X_test):.3f})")

# %%
# The most used atoms
# -------------------
# Each atom is a unit-norm 8x8 image; red is positive, blue negative. The
# sixteen atoms that fire on the most held-out digits:

usage = np.count_nonzero(codes, axis=0)
top = np.argsort(usage)[::-1][:16]
fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, atom in zip(axes.flat, top, strict=True):
    image = sae.components_[atom].reshape(8, 8)
    limit = np.abs(image).max()
    ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(f"#{atom}: {usage[atom] / len(X_test):.0%}", fontsize=8)
    ax.axis("off")
fig.suptitle("Most used atoms (share of held-out digits that use each)")
fig.tight_layout()

# %%
# One atom per step
# -----------------
# ``transform(X, n_steps=s)`` stops the pursuit after ``s`` steps. Each row
# shows a held-out digit rebuilt from 0 (the learned pre-bias ``bias_``
# alone), 1, 2, ..., 8 atoms.

steps = np.arange(sae.k + 1)
examples = [0, 1, 2, 3]
rebuilt = [sae.inverse_transform(sae.transform(X_test, n_steps=s)) for s in steps]
fig, axes = plt.subplots(len(examples), len(steps) + 1, figsize=(11, 5.2))
for row, i in enumerate(examples):
    for col, s in enumerate(steps):
        axes[row, col].imshow(rebuilt[col][i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[0, col].set_title("bias only" if s == 0 else f"{s} step{'s' if s > 1 else ''}",
                               fontsize=9)
    axes[row, -1].imshow(X_test[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[0, -1].set_title("original", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Reconstructions after each matching-pursuit step")
fig.tight_layout()

# %%
# Does the error ever go up?
# --------------------------
# Squared residual of every held-out digit after each step. Matching pursuit
# subtracts from the residual its projection on the chosen atom, so the
# residual cannot grow; here we check it on the numbers of this run (with a
# float32 rounding allowance).

errors = np.stack([((X_test - Xs) ** 2).sum(axis=1) for Xs in rebuilt], axis=1)
worst_increase = np.diff(errors, axis=1).max()
r2 = [r2_score(X_test, Xs) for Xs in rebuilt]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(steps, errors[:40].T, color="tab:blue", alpha=0.3, linewidth=1)
ax.plot(steps, errors.mean(axis=0), color="black", linewidth=2, label="mean over digits")
ax.set(xlabel="matching-pursuit steps", ylabel="squared reconstruction error",
       title="Error per digit vs steps (40 digits and the mean)")
ax.legend()
fig.tight_layout()

supported = worst_increase <= 1e-4 * errors.max()
print(f"held-out R2 by steps 0..{sae.k}: {', '.join(f'{v:.3f}' for v in r2)}")
print(f"largest increase of a digit's error from one step to the next: {worst_increase:.2e}")
print(f"finding {'supported' if supported else 'NOT supported'}: the error of "
      f"{'none' if supported else 'some'} of the {len(X_test)} held-out digits increased "
      f"over steps 0..{sae.k}")
