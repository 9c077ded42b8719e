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

One number hides most of a dictionary: ``mu_1(p)`` is the worst atom at one
``p``, and one pair of near-duplicated atoms sets it as high as a uniformly
coherent dictionary would. So each SAE is shown through its whole profile:
the curve ``mu_1(p)`` over ``p`` (:func:`~skmpsae.metrics.babel_curve`),
the distribution over atoms of their own cumulative coherence
(:func:`~skmpsae.metrics.babel_per_atom`, whose maximum is the Babel score)
and the number of near-duplicate pairs, atoms with ``|cos| > 0.9``
(:func:`~skmpsae.metrics.near_duplicate_count`).

Findings of the paper tested here (SPEC section 1), each on two data sets:
the scikit-learn digits, and real, unit-norm sentence embeddings (the
packaged all-MiniLM-L6-v2 embeddings of docstring sentences,
:func:`~skmpsae.datasets.load_sentence_embeddings`), closer to the paper's
unit-norm vision-model embeddings:

- MP-SAE's dictionary is globally more coherent (higher Babel score) than
  those of the other SAEs;
- yet the atoms MP-SAE selects for an input are less coherent than a random
  subset of the same size ("conditional orthogonality": each step picks an
  atom for what the previous ones left unexplained).

The verdicts are computed from this run's numbers, per data set, from all
three views of the global coherence together.
"""

# %%
# Six SAEs at k=8, on two data sets
# ---------------------------------
# Atoms that never fire on the training rows are left out of the global
# score and of the random baseline: a random subset should be one the SAE
# could have selected.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skmpsae import BatchTopKSAE, JumpReLUSAE, MatchingPursuitSAE, MatryoshkaSAE, ReLUSAE, TopKSAE
from skmpsae.datasets import load_sentence_embeddings
from skmpsae.metrics import (
    babel_curve,
    babel_per_atom,
    babel_random_subsets,
    babel_score,
    babel_selected,
    near_duplicate_count,
)

SAES = {"MP-SAE": MatchingPursuitSAE, "TopK": TopKSAE, "BatchTopK": BatchTopKSAE,
        "Matryoshka": MatryoshkaSAE, "ReLU": ReLUSAE, "JumpReLU": JumpReLUSAE}
K = 8
P_MAX = 32
N_COMPONENTS = 256
DATA = {
    "digits": load_digits().data.astype(np.float32) / 16,
    # 3000 real sentence embeddings (384 features, unit norm); cached after the first call.
    "MiniLM sentences": load_sentence_embeddings(3000, random_state=0).X,
}


def without_duplicates(atoms, threshold=0.9):
    """Keep the first atom of each group of near-duplicates (|cos| > threshold)."""
    unit = atoms / np.linalg.norm(atoms, axis=1, keepdims=True)
    cosines = np.abs(unit @ unit.T)
    keep = []
    for j in range(len(atoms)):
        if not keep or cosines[j, keep].max() <= threshold:
            keep.append(j)
    return atoms[keep]


def measure(X):
    """Fit every SAE on ``X`` and return its scores, per-atom spread and Babel curve."""
    X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
    scores, spread, curves = {}, {}, {}
    for name, cls in SAES.items():
        sae = cls(n_components=N_COMPONENTS, k=K, max_iter=30, random_state=0).fit(X_train)
        alive = sae.transform(X_train).any(axis=0)
        Z = sae.transform(X_test)
        sizes = np.count_nonzero(Z, axis=1)
        atoms = sae.components_[alive]
        spread[name] = babel_per_atom(atoms, K - 1)
        curves[name] = babel_curve(atoms, P_MAX)
        scores[name] = {
            "global": babel_score(atoms, K - 1),
            "selected": babel_selected(sae, Z),
            "random": babel_random_subsets(atoms, sizes, n_draws=2000, random_state=0),
            "alive": alive.mean(),
            "l0": sizes.mean(),
            "duplicates": near_duplicate_count(atoms, 0.9),
            "median": np.median(spread[name]),
            # The same profile once near-duplicates are merged into one atom.
            "median merged": np.median(babel_per_atom(without_duplicates(atoms), K - 1)),
        }
    return scores, spread, curves


results = {}
for data_name, X in DATA.items():
    results[data_name] = scores, spread, curves = measure(X)
    print(f"\n{data_name}: {X.shape[0]} rows x {X.shape[1]} features, {N_COMPONENTS} atoms, k={K}")
    print(f"{'SAE':<11}{'alive':>7}{'L0':>6}{'mu1(7)':>8}{'median':>8}{'merged':>8}"
          f"{'pairs>0.9':>10}{'mu1(1)':>8}{'selected':>10}{'random':>8}{'sel/rand':>10}")
    for name, s in scores.items():
        print(f"{name:<11}{s['alive']:>7.0%}{s['l0']:>6.1f}{s['global']:>8.2f}{s['median']:>8.2f}"
              f"{s['median merged']:>8.2f}{s['duplicates']:>10d}{curves[name][0]:>8.2f}"
              f"{s['selected']:>10.2f}{s['random']:>8.2f}{s['selected'] / s['random']:>10.2f}")

# %%
# Global coherence: the Babel curve
# ---------------------------------
# ``mu_1(p)`` for ``p`` from 1 to 32, computed in one pass over the Gram
# matrix; one panel per data set. A curve that starts near 1 at ``p = 1``
# has (near-)duplicated atoms; how it rises after says how coherent the rest
# is.

fig, axes = plt.subplots(1, len(DATA), figsize=(11, 4), sharey=True)
for ax, (data_name, (scores, _, curves)) in zip(axes, results.items(), strict=True):
    for name, curve in curves.items():
        ax.plot(np.arange(1, P_MAX + 1), curve,
                label=f"{name} ({scores[name]['duplicates']} pairs > 0.9)")
    ax.set(xlabel="p (partners summed)", title=data_name)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("Babel score mu_1(p)")
fig.suptitle("Babel curve of each dictionary (living atoms)")
fig.tight_layout()

# %%
# Global coherence: every atom
# ----------------------------
# The box shows how coherent each atom is with its ``k - 1`` closest
# neighbours; the global Babel score is the top of the whisker (the most
# coherent atom). One row per data set.

fig, axes = plt.subplots(len(DATA), 1, figsize=(8, 7))
for ax, (data_name, (_, spread, _)) in zip(axes, results.items(), strict=True):
    ax.boxplot(list(spread.values()), whis=(0, 100))
    ax.set_xticks(range(1, len(SAES) + 1), list(SAES))
    ax.set(ylabel=f"sum of {K - 1} largest |cos|", title=data_name)
    ax.grid(alpha=0.3, axis="y")
fig.suptitle(f"Global coherence of each atom (living atoms, p={K - 1})")
fig.tight_layout()

# %%
# Coherence of the selected atoms
# -------------------------------
# For each held-out row, the Babel score of the atoms its code uses
# (``p = |S| - 1``), averaged over rows, next to random subsets of the same
# sizes. One row per data set.

fig, axes = plt.subplots(len(DATA), 1, figsize=(8, 7))
x = np.arange(len(SAES))
for ax, (data_name, (scores, _, _)) in zip(axes, results.items(), strict=True):
    ax.bar(x - 0.2, [s["selected"] for s in scores.values()], 0.4, label="atoms selected")
    ax.bar(x + 0.2, [s["random"] for s in scores.values()], 0.4,
           label="random atoms, same sizes")
    ax.set_xticks(x, list(SAES))
    ax.set(ylabel="mean Babel score", title=f"{data_name} (held-out rows)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
fig.suptitle("Inference-time coherence of a code's atoms")
fig.tight_layout()

# %%
# Verdicts
# --------
# Global coherence, per data set: three views of each pair (MP-SAE, other),
# each saying whether MP-SAE's dictionary is the more coherent (the higher
# score): the Babel curve (above at most ``p`` of 1..32), the typical atom
# (median of the per-atom sums) and the count of near-duplicate pairs (more
# pairs; a tie, as when neither dictionary has any, is not more and is
# reported as a tie). "supported" needs every view against every competitor,
# "NOT supported" none of them; anything else is "mixed".
# Conditional orthogonality: MP-SAE's selected atoms less coherent than random
# subsets of the same sizes (ratio below 1).


VIEWS = ("curve", "median", "duplicates")


def global_verdict(n_won, n_views):
    """'supported' if every view went MP-SAE's way, 'NOT supported' if none did, else 'mixed'."""
    if n_won == n_views:
        return "supported"
    return "NOT supported" if n_won == 0 else "mixed"


for data_name, (scores, _, curves) in results.items():
    mp = scores["MP-SAE"]
    others = [name for name in scores if name != "MP-SAE"]
    views = {}
    for name in others:
        share = (curves["MP-SAE"] > curves[name]).mean()
        # Each view: +1 MP-SAE's the higher (more coherent), 0 a tie, -1 the lower.
        views[name] = {"curve": np.sign(share - 0.5),
                       "median": np.sign(mp["median"] - scores[name]["median"]),
                       "duplicates": np.sign(mp["duplicates"] - scores[name]["duplicates"]),
                       "share": share}
    n_won = sum(int(v[view] > 0) for v in views.values() for view in VIEWS)
    n_tied = sum(int(v[view] == 0) for v in views.values() for view in VIEWS)
    n_views = len(VIEWS) * len(others)
    print(f"\n[{data_name}] MP-SAE dictionary more coherent (higher) than every other SAE's, "
          f"on all three views: finding {global_verdict(n_won, n_views)} "
          f"(MP-SAE higher on {n_won} of {n_views} competitor-views, tied on {n_tied})")
    for name, v in views.items():
        n = sum(int(v[view] > 0) for view in VIEWS)
        ties = [view for view in VIEWS if v[view] == 0]
        print(f"  vs {name:<10}: MP-SAE higher on {n}/3 views"
              + (f" (tied: {', '.join(ties)})" if ties else "")
              + f"; curve above at {v['share']:.0%} of p = 1..{P_MAX}, median atom "
              f"{mp['median']:.2f} vs {scores[name]['median']:.2f} (near-duplicates merged "
              f"{mp['median merged']:.2f} vs {scores[name]['median merged']:.2f}), "
              f"near-duplicate pairs {mp['duplicates']} vs {scores[name]['duplicates']}")
    ratio = mp["selected"] / mp["random"]
    below = [n for n in others if scores[n]["selected"] < scores[n]["random"]]
    print(f"[{data_name}] MP-SAE selected atoms less coherent than random ones (ratio "
          f"{ratio:.2f}): finding {'supported' if ratio < 1 else 'NOT supported'}; ratios "
          + ", ".join(f"{n} {s['selected'] / s['random']:.2f}" for n, s in scores.items())
          + f"; below 1 for the others: {', '.join(below) or 'none'}")
