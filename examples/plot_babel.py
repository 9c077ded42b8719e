"""
Coherence of the dictionary, and of the atoms each sample selects
=================================================================

The Babel score (Tropp's cumulative coherence) ``mu_1(p)`` measures how much
the atoms of a dictionary interfere: for each atom, the sum of its ``p``
largest absolute cosines with the other atoms, maximised over atoms. It can
be computed for the whole dictionary (:func:`~skmpsae.metrics.babel_score`)
or, at inference, within the few atoms a sample's code selects
(:func:`~skmpsae.metrics.babel_selected`). The fair baseline of the second
is the same quantity on random subsets of atoms of the same sizes
(:func:`~skmpsae.metrics.babel_random_subsets`).

Findings of the paper tested here (SPEC section 1), on digits rather than on
the paper's vision-model embeddings:

- MP-SAE's dictionary is globally more coherent (higher Babel score) than
  those of the other SAEs;
- yet the atoms MP-SAE selects for an input are less coherent than a random
  subset of the same size ("conditional orthogonality": each step picks an
  atom for what the previous ones left unexplained).

The verdicts are computed from this run's numbers.
"""

# %%
# Five SAEs at k=8
# ----------------
# Atoms that never fire on the training digits are left out of the global
# score and of the random baseline: a random subset should be one the SAE
# could have selected.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skmpsae import BatchTopKSAE, MatchingPursuitSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skmpsae.metrics import babel_random_subsets, babel_score, babel_selected

SAES = {"MP-SAE": MatchingPursuitSAE, "TopK": TopKSAE, "BatchTopK": BatchTopKSAE,
        "Matryoshka": MatryoshkaSAE, "ReLU": ReLUSAE}
K = 8
X = load_digits().data.astype(np.float32) / 16
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)


def per_atom_coherence(atoms, p):
    """Sum of each atom's ``p`` largest |cosines| with the others (Babel is their max)."""
    atoms = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    cosines = np.abs(atoms @ atoms.T)
    np.fill_diagonal(cosines, 0)
    return np.sort(cosines, axis=1)[:, -p:].sum(axis=1)


scores, spread = {}, {}
for name, cls in SAES.items():
    sae = cls(n_components=256, k=K, max_iter=30, random_state=0).fit(X_train)
    alive = sae.transform(X_train).any(axis=0)
    Z = sae.transform(X_test)
    sizes = np.count_nonzero(Z, axis=1)
    atoms = sae.components_[alive]
    scores[name] = {
        "global": babel_score(atoms, K - 1),
        "selected": babel_selected(sae, Z),
        "random": babel_random_subsets(atoms, sizes, n_draws=2000, random_state=0),
        "alive": alive.mean(),
    }
    spread[name] = per_atom_coherence(atoms, K - 1)

print(f"{'SAE':<11}{'alive':>7}{'global mu1(7)':>15}{'selected':>10}{'random':>8}"
      f"{'sel/rand':>10}")
for name, s in scores.items():
    print(f"{name:<11}{s['alive']:>7.0%}{s['global']:>15.2f}{s['selected']:>10.2f}"
          f"{s['random']:>8.2f}{s['selected'] / s['random']:>10.2f}")

# %%
# Global coherence
# ----------------
# The box shows how coherent each atom is with its ``k - 1`` closest
# neighbours; the global Babel score is the top of the whisker (the most
# coherent atom).

fig, ax = plt.subplots(figsize=(7, 4))
ax.boxplot(list(spread.values()), whis=(0, 100))
ax.set_xticks(range(1, len(SAES) + 1), list(SAES))
ax.set(ylabel=f"sum of the {K - 1} largest |cos| per atom",
       title=f"Global coherence of each dictionary (living atoms, p={K - 1})")
ax.grid(alpha=0.3, axis="y")
fig.tight_layout()

# %%
# Coherence of the selected atoms
# -------------------------------
# For each held-out digit, the Babel score of the atoms its code uses
# (``p = |S| - 1``), averaged over digits, next to random subsets of the same
# sizes.

fig, ax = plt.subplots(figsize=(7, 4))
x = np.arange(len(SAES))
ax.bar(x - 0.2, [s["selected"] for s in scores.values()], 0.4, label="atoms selected")
ax.bar(x + 0.2, [s["random"] for s in scores.values()], 0.4, label="random atoms, same sizes")
ax.set_xticks(x, list(SAES))
ax.set(ylabel="mean Babel score of a code's atoms",
       title="Inference-time coherence (held-out digits)")
ax.legend()
ax.grid(alpha=0.3, axis="y")
fig.tight_layout()

# %%
# Verdicts
# --------

mp = scores["MP-SAE"]
others = {name: s for name, s in scores.items() if name != "MP-SAE"}
below = [name for name, s in others.items() if mp["global"] <= s["global"]]
print(f"MP-SAE global Babel ({mp['global']:.2f}) above every other SAE's: finding "
      f"{'supported' if not below else 'NOT supported'}"
      + (f" (not above: {', '.join(below)})" if below else ""))
ratio = mp["selected"] / mp["random"]
print(f"MP-SAE selected atoms less coherent than random ones (ratio {ratio:.2f}): finding "
      f"{'supported' if ratio < 1 else 'NOT supported'}; ratio below 1 for the others: "
      f"{', '.join(n for n, s in others.items() if s['selected'] < s['random']) or 'none'}")
