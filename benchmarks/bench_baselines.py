"""Compare every SAE at equal k and dictionary size, default training, on real data.

For scikit-learn's digits, 8x8 natural-image patches of its sample photos and
all-MiniLM-L6-v2 embeddings of docstring sentences (80/20 split, R^2 on the
held-out part; 15% of the training part is held out as a validation split
that no SAE trains on), prints R^2 and mean L0 of MP-SAE, TopK, BatchTopK,
Matryoshka, ReLU and JumpReLU trained at k = 4, 8, 16 (8 x n_features atoms)
in three tables (see ``skmpsae._cli.accountings``): (a) each SAE's own
inference rule at its trained k (plain ``transform``: unequal budgets), (b)
equal per-sample L0 (every SAE at exactly k codes per sample) and (c) equal
mean L0 (one global threshold per SAE calibrated to mean L0 k on the
validation split), with each SAE's fit time as a ratio to MP-SAE's at the
largest k, and whether MP-SAE's R^2 is above every other SAE's, per table
and k. Then the R^2 vs ``n_steps`` curves at inference of the SAEs trained
at k=8. The machine's load average is printed first: the fit times depend
on it.

Run::

    python benchmarks/bench_baselines.py            # digits and patches, k = 4 8 16
    python benchmarks/bench_baselines.py --data digits --k 8
    python benchmarks/bench_baselines.py --data sentences --k 8 --n-sentences 4000
"""

import argparse
import os
import time

from sklearn.model_selection import train_test_split

from skmpsae._cli import _load, accountings, estimators, print_accountings
from skmpsae.metrics import r2_score

STEPS = (1, 2, 4, 8, 16, 32, 64)


def run(data, ks, curve_k, seed, n_sentences):
    """Train every SAE at each k on ``data``; print the tables."""
    X, title = _load(data, seed, n_sentences)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
    X_train, X_val = train_test_split(X_train, test_size=0.15, random_state=seed)
    print(f"\n== {title}: train {X_train.shape}, validation {X_val.shape}, test {X_test.shape}")
    results, curves, seconds = {}, {}, {}
    for k in ks:
        for name, est in estimators(k, random_state=seed).items():
            start = time.perf_counter()
            est.fit(X_train)
            seconds[name, k] = time.perf_counter() - start
            results.setdefault(name, []).append(accountings(est, X_val, X_test, k))
            if k == curve_k:
                curves[name] = [r2_score(X_test, est.inverse_transform(
                    est.transform(X_test, n_steps=min(s, est.n_components_)))) for s in STEPS]
    ratios = {name: f"{seconds[name, ks[-1]] / seconds['MP-SAE', ks[-1]]:.2f}x"
              for name in results}
    print_accountings(results, ks, (f"fit time vs MP (k={ks[-1]})", ratios))
    print("\nMP-SAE's held-out R2 above every other SAE's? (the best other in brackets)")
    for which, table in enumerate(("(a) own rule", "(b) equal per-sample L0",
                                   "(c) equal mean L0")):
        cells = []
        for i, k in enumerate(ks):
            best = max((name for name in results if name != "MP-SAE"),
                       key=lambda name: results[name][i][which][0])
            mp, other = results["MP-SAE"][i][which][0], results[best][i][which]
            verdict = "supported" if mp > other[0] else "NOT supported"
            cells.append(f"k={k}: {verdict} ({best} {other[0]:.4f}, mean L0 {other[1]:.2f})")
        print(f"{table + ':':<25}" + "; ".join(cells))
    if curves:
        print(f"\nR2 vs n_steps at inference (codes per sample), trained at k={curve_k}:")
        print(f"{'SAE':<12}" + "".join(f"{s:>8}" for s in STEPS))
        for name, values in curves.items():
            print(f"{name:<12}" + "".join(f"{v:>8.4f}" for v in values))


def main(argv=None):
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "patches"],
                        help="digits, patches and/or sentences (default: digits patches)")
    parser.add_argument("--k", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--curve-k", type=int, default=8)
    parser.add_argument("--n-sentences", type=int, default=6000,
                        help="sentences embedded for --data sentences (default 6000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    for data in args.data:
        run(data, sorted(args.k), args.curve_k, args.seed, args.n_sentences)


if __name__ == "__main__":
    main()
