"""Synthetic hierarchy, coherence and co-activation of every SAE in skmpsae (SPEC sections 1, 7).

Reproduces, at small scale and in one process, three findings of Costa et al.
(NeurIPS 2025, arXiv 2506.03093):

1. Synthetic hierarchy. Each SAE (``n_components`` = number of concepts, as
   in the paper's notebook) is trained on ``make_hierarchical_concepts`` (the
   paper's tree: 3 parents x 3 children + 8 standalone concepts, cosine 0.1
   within a level, 0 between a parent and its children) and scored with
   ``hierarchy_recovery``: flat (within-level) and hierarchical (parent-child)
   mean squared errors of the cosine matrix of the Hungarian-matched atoms.
   Mean (and standard deviation) over ``--seeds`` data sets and inits; two
   reference rows bound the scale: the true directions (0) and a random
   orthonormal dictionary. The mean learned cosines between siblings (true
   0.1) and between a parent and its children (true 0) show the mechanism:
   pushed-apart siblings raise the flat error, absorbed children the
   hierarchical one. Every SAE gets ``k=3``: the paper's MP-SAE encodes until
   its residual is small rather than for a fixed k, and its TopK baseline
   starts at L0 3; a sample holds at most 2 concepts. With ``k=2`` MP-SAE
   needs more epochs: in a trial (3 seeds, 30 epochs) its hierarchical error
   was 0.18 at k=2 against 0.06 at k=3.
2. Coherence on digits (held-out third). Global Babel ``mu_1(k - 1)`` of the
   dictionary (all atoms, and the atoms that fire on the training split), the
   inference-time Babel of the atoms each sample selects
   (``babel_selected``, ``p = |S| - 1``) and its baseline on random subsets
   of living atoms with the same sizes (``babel_random_subsets``). The paper:
   MP-SAE's dictionary is globally more coherent but selects atoms less
   coherent than random ones.
3. Effective rank of the co-activation of the held-out codes vs the trained
   k. The paper: it keeps growing with k for MP-SAE, saturates for others.

A first line times ``babel_score`` on 16384 x 768 float32 atoms (``p=32``).
SAE classes that skmpsae does not (yet) export are skipped with a line.

Run::

    cd /work/main && .venv/bin/python benchmarks/bench_hierarchy.py
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import skmpsae
from skmpsae.datasets import make_hierarchical_concepts
from skmpsae.metrics import (
    babel_random_subsets,
    babel_score,
    babel_selected,
    dead_fraction,
    effective_rank,
    hierarchy_recovery,
    l0,
    r2_score,
)

SAE_NAMES = ("MatchingPursuitSAE", "TopKSAE", "BatchTopKSAE", "MatryoshkaSAE", "ReLUSAE")


def available_saes(names):
    """The SAE classes skmpsae exports, by name; prints a line for each missing one."""
    classes = {}
    for name in names:
        cls = getattr(skmpsae, name, None)
        if cls is None:
            print(f"skip {name}: not in skmpsae")
        else:
            classes[name] = cls
    return classes


def print_table(title, headers, rows):
    """Plain-text table, columns right-aligned except the first."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def fit(cls, X, *, n_components, k, max_iter, seed):
    """A fitted SAE and its training time; None (with a printed reason) if it cannot train."""
    try:
        start = time.perf_counter()
        sae = cls(n_components=n_components, k=k, max_iter=max_iter, random_state=seed).fit(X)
        return sae, time.perf_counter() - start
    except (TypeError, ValueError) as exc:  # a future SAE with other parameters
        print(f"skip {cls.__name__} (k={k}): {exc}")
        return None, 0.0


def time_babel():
    D = np.random.default_rng(0).standard_normal((16384, 768), dtype=np.float32)
    start = time.perf_counter()
    score = babel_score(D, 32)
    print(f"babel_score, 16384 x 768 float32 atoms, p=32: {time.perf_counter() - start:.2f} s "
          f"(mu_1 = {score:.3f})")


def mean_cosines(result, tree):
    """Mean learned cosine between siblings (true: epsilon) and parent-child (true: 0)."""
    cos = result.learned_cosine
    siblings = [cos[i, j] for group in tree.children for i in group for j in group if i < j]
    family = [cos[p, c] for p, group in zip(tree.parents, tree.children, strict=True)
              for c in group]
    return np.mean(siblings), np.mean(family)


def recovery_row(result, tree, r2, seconds):
    return (r2, result.matched_cosine.mean(), *mean_cosines(result, tree), result.flat_error,
            result.hierarchical_error, seconds)


def synthetic_table(classes, args):
    rows = {name: [] for name in ["truth", "random orthonormal", *classes]}
    for seed in range(args.seeds):
        X, _, directions, tree = make_hierarchical_concepts(args.n_samples, random_state=seed)
        n_concepts = directions.shape[0]
        Q = np.linalg.qr(np.random.default_rng(seed).standard_normal((n_concepts,) * 2))[0]
        for name, atoms in {"truth": directions, "random orthonormal": Q}.items():
            result = hierarchy_recovery(atoms, directions, tree)
            rows[name].append(recovery_row(result, tree, np.nan, 0.0))
        for name, cls in classes.items():
            sae, seconds = fit(cls, X, n_components=n_concepts, k=args.synthetic_k,
                               max_iter=args.synthetic_epochs, seed=seed)
            if sae is not None:
                result = hierarchy_recovery(sae, directions, tree)
                rows[name].append(recovery_row(result, tree, sae.score(X), seconds))
    table = []
    for name, runs in rows.items():
        if runs:
            mean, std = np.mean(runs, axis=0), np.std(runs, axis=0)
            table.append([name, *(f"{v:.3f}" for v in mean[:4]),
                          f"{mean[4]:.4f} +- {std[4]:.4f}", f"{mean[5]:.4f} +- {std[5]:.4f}",
                          f"{mean[6]:.1f}"])
    print_table(f"Synthetic hierarchy ({args.n_samples} samples, 20 concepts, "
                f"k={args.synthetic_k}, {args.synthetic_epochs} epochs, "
                f"mean +- sd over {args.seeds} seeds; true sibling cos 0.1, parent-child 0)",
                ["SAE", "R2", "matched cos", "sibling cos", "par-child cos", "flat MSE",
                 "hier. MSE", "fit s"], table)


def digits_models(classes, args):
    X = (load_digits().data / 16.0).astype(np.float32)
    X_train, X_test = train_test_split(X, test_size=1 / 3, random_state=0)
    models = {}
    for name, cls in classes.items():
        for k in sorted(set(args.ks) | {args.k}):
            sae, _ = fit(cls, X_train, n_components=args.n_components, k=k,
                         max_iter=args.epochs, seed=0)
            if sae is not None:
                alive = np.asarray(sae.transform(X_train)).any(axis=0)
                models[name, k] = (sae, np.asarray(sae.transform(X_test)), alive)
    return X_test, models


def coherence_table(classes, X_test, models, args):
    rows = []
    for name in classes:
        if (name, args.k) not in models:
            continue
        sae, Z, alive = models[name, args.k]
        sizes = np.count_nonzero(Z, axis=1)
        selected = babel_selected(sae, Z)
        random = babel_random_subsets(sae.components_[alive], sizes, n_draws=args.draws,
                                      random_state=0)
        rows.append([name, f"{r2_score(X_test, sae.inverse_transform(Z)):.3f}", f"{l0(Z):.2f}",
                     f"{dead_fraction(Z):.2f}", f"{babel_score(sae, args.k - 1):.3f}",
                     f"{babel_score(sae.components_[alive], args.k - 1):.3f}",
                     f"{selected:.3f}", f"{random:.3f}", f"{selected / random:.2f}"])
    print_table(f"Coherence on digits (held-out third, {args.n_components} atoms, "
                f"k={args.k}, p = k - 1 globally, |S| - 1 per sample)",
                ["SAE", "R2", "L0", "dead", "global mu1", "alive mu1", "selected", "random",
                 "sel/rand"],
                rows)


def rank_table(classes, models, args):
    rows = []
    for name in classes:
        ranks = [models[name, k][1] if (name, k) in models else None for k in args.ks]
        rows.append([name] + ["-" if Z is None else f"{effective_rank(Z):.1f}" for Z in ranks])
    print_table("Effective rank of co-activation on held-out digits vs trained k",
                ["SAE"] + [f"k={k}" for k in args.ks], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="synthetic data sets and inits")
    parser.add_argument("--n-samples", type=int, default=10000, help="synthetic samples")
    parser.add_argument("--synthetic-k", type=int, default=3)
    parser.add_argument("--synthetic-epochs", type=int, default=60)
    parser.add_argument("--n-components", type=int, default=256, help="atoms on digits")
    parser.add_argument("--k", type=int, default=8, help="k of the coherence table")
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--epochs", type=int, default=30, help="epochs on digits")
    parser.add_argument("--draws", type=int, default=2000, help="random subsets drawn")
    parser.add_argument("--saes", nargs="+", default=list(SAE_NAMES))
    parser.add_argument("--no-timing", action="store_true", help="skip the Babel timing")
    args = parser.parse_args()

    start = time.perf_counter()
    if not args.no_timing:
        time_babel()
    classes = available_saes(args.saes)
    synthetic_table(classes, args)
    X_test, models = digits_models(classes, args)
    coherence_table(classes, X_test, models, args)
    rank_table(classes, models, args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
