"""Compare every SAE at equal k and dictionary size, default training, on real data.

For scikit-learn's digits and 8x8 natural-image patches of its sample photos
(80/20 split, R^2 on the held-out part; 15% of the training part is held out
as a validation split that no SAE trains on), prints R^2 and L0 of MP-SAE,
TopK, BatchTopK, Matryoshka and ReLU trained at k = 4, 8, 16 (8 x n_features
atoms) in two accountings: equal per-sample L0 (every SAE at exactly k codes
per sample) and equal mean L0 (MP-SAE with its coefficient stop calibrated to
mean L0 k on the validation split, the others with their own inference rule;
see ``skmpsae._cli.accountings``). Then the R^2 vs ``n_steps`` curves at
inference of the SAEs trained at k=8, and the fit time of each as a ratio to
MP-SAE's.

Run::

    python benchmarks/bench_baselines.py            # both data sets, k = 4 8 16
    python benchmarks/bench_baselines.py --data digits --k 8
"""

import argparse
import time

from sklearn.model_selection import train_test_split

from skmpsae._cli import _load, accountings, estimators
from skmpsae.metrics import r2_score

STEPS = (1, 2, 4, 8, 16, 32, 64)


def run(data, ks, curve_k, seed):
    """Train every SAE at each k on ``data``; print the tables."""
    X, title = _load(data, seed)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
    X_train, X_val = train_test_split(X_train, test_size=0.15, random_state=seed)
    print(f"\n== {title}: train {X_train.shape}, validation {X_val.shape}, test {X_test.shape}")
    results, curves, seconds = {}, {}, {}
    for k in ks:
        for name, est in estimators(k, random_state=seed).items():
            start = time.perf_counter()
            est.fit(X_train)
            seconds[name, k] = time.perf_counter() - start
            results[name, k] = accountings(est, X_val, X_test, k)
            if k == curve_k:
                curves[name] = [r2_score(X_test, est.inverse_transform(
                    est.transform(X_test, n_steps=min(s, est.n_components_)))) for s in STEPS]
    names = list(dict.fromkeys(name for name, _ in results))
    header = "".join(f"{'k=' + str(k) + ' R2':>10}{'L0':>7}" for k in ks)
    titles = ("Equal per-sample L0 (every SAE at exactly k codes per sample)",
              "Equal mean L0 k (MP: coefficient stop calibrated on the validation split; "
              "the others: their own rule)")
    for which, heading in enumerate(titles):
        print(f"\n{heading}:")
        print(f"{'SAE':<12}{header}{'fit time vs MP (k=' + str(ks[-1]) + ')':>26}")
        for name in names:
            cells = "".join(f"{results[name, k][which][0]:>10.4f}"
                            f"{results[name, k][which][1]:>7.2f}" for k in ks)
            ratio = seconds[name, ks[-1]] / seconds["MP-SAE", ks[-1]]
            print(f"{name:<12}{cells}{ratio:>25.2f}x")
    if curves:
        print(f"\nR2 vs n_steps at inference, trained at k={curve_k}:")
        print(f"{'SAE':<12}" + "".join(f"{s:>8}" for s in STEPS))
        for name, values in curves.items():
            print(f"{name:<12}" + "".join(f"{v:>8.4f}" for v in values))


def main(argv=None):
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits", "patches"])
    parser.add_argument("--k", nargs="+", type=int, default=[4, 8, 16])
    parser.add_argument("--curve-k", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for data in args.data:
        run(data, sorted(args.k), args.curve_k, args.seed)


if __name__ == "__main__":
    main()
