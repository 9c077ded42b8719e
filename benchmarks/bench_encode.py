"""Benchmark matching-pursuit encoding against one GEMM and scikit-learn's OMP.

Measures, in one process, the time of ``mp_encode`` (numba, numpy and torch
engines, with the Gram matrix given; numba without it) relative to the single
matrix product ``X @ D.T`` that any encoder must pay, and relative to
``SparseCoder(transform_algorithm="omp")`` at the same sparsity k. Each timing
is the median of ``--repeats`` calls after one warm-up call (``time.perf_counter``),
with the methods called in turn within each repeat so that background load on
the machine affects them alike, and ``--pause`` seconds (default 0.25) of sleep
before each call: OpenBLAS's worker threads keep spinning on the cores for a
while after a multithreaded product, so without it whichever method follows
the GEMM baseline would run beside them (measured at 2048 x 512, 4096 atoms:
the numba encoding 114 ms right after the GEMM, 78 ms after a pause).
Thread counts are left at their defaults.

Data. Timings use ``X`` drawn from a standard normal (SPEC section 8); the
dictionary has random unit-norm atoms. Gaussian ``X`` has no sparse structure:
k atoms explain only part of its variance, so its R^2 is low for every method.
The table therefore shows two R^2 columns: ``R2 gauss`` on the timed Gaussian data and
``R2 struct`` on structured data of the same shape, where each row is a sum of
k random atoms with positive uniform(0.5, 1.5) coefficients plus Gaussian noise
(std 0.01 per feature).

OMP is slow, so it is timed on the first ``--omp-rows`` rows, with at most 3
repeats, and its time is scaled linearly to the full row count; its R^2 values
are on that subset. Two OMP rows are shown: ``SparseCoder.transform`` as a user
would call it (it computes ``D @ D.T`` on every call, a fixed cost that the
linear scaling inflates slightly), and ``sparse_encode`` with the Gram given,
the same footing as "numba, gram given", for which linear scaling is exact up to
noise. The 20x bar is checked against both. (``sparse_encode`` with ``n_jobs=2``
was slower than either in a trial run on 2 cores, so it is not shown.)

``--peers`` also times SAELens' MP-SAE ``encode`` on the same data (the
package from ``pip install -c constraints-cpu.txt -e ".[peers]"``), its decoder
set to the same atoms and its decoder bias to zero, as a row of the table and
as ratios to skmpsae (a peer that is not installed is reported as such).

Run::

    cd /work/main && .venv/bin/python benchmarks/bench_encode.py
    python benchmarks/bench_encode.py --skip-sklearn --peers --repeats 3
"""

import argparse
import importlib.util
import time

import numpy as np

from skmpsae import mp_encode
from skmpsae._products import linear, onednn_active


def interleaved_medians(fns, repeats, pause=0.0):
    """Median wall time of each function, calls interleaved, after one warm-up call each.

    Calling the functions in turn within each repeat spreads any background
    load on the machine evenly over them, so that their ratios stay meaningful.

    Parameters
    ----------
    fns : list of callable
        Functions of no arguments to time.
    repeats : int
        Number of timed rounds.
    pause : float, default=0.0
        Seconds of sleep before each timed call, outside the timing.

    Returns
    -------
    seconds : list of float
        Median time of each function.
    results : list
        Return value of the last call of each function.
    """
    results = [fn() for fn in fns]
    times = np.zeros((repeats, len(fns)))
    for rep in range(repeats):
        for i, fn in enumerate(fns):
            time.sleep(pause)
            start = time.perf_counter()
            results[i] = fn()
            times[rep, i] = time.perf_counter() - start
    return list(np.median(times, axis=0)), results


def r2_score(X, Z, D):
    """R^2 of the reconstruction ``Z @ D`` of ``X``, pooled over all features.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data.
    Z : ndarray of shape (n_samples, n_components)
        Codes.
    D : ndarray of shape (n_components, n_features)
        Dictionary.

    Returns
    -------
    r2 : float
        ``1 - sum ||X - Z @ D||^2 / sum ||X - X.mean(0)||^2``, in float64.
    """
    X = X.astype(np.float64)
    err = X - Z.astype(np.float64) @ D.astype(np.float64)
    return 1.0 - float((err * err).sum() / ((X - X.mean(0)) ** 2).sum())


def make_data(n_samples, n_features, n_components, k, dtype, rng):
    """Random unit-norm dictionary, Gaussian data and structured sparse data.

    Parameters
    ----------
    n_samples, n_features, n_components, k : int
        Shapes and the number of atoms per structured row.
    dtype : numpy dtype
        Floating dtype of the arrays.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    D : ndarray of shape (n_components, n_features)
        Unit-norm atoms.
    X_gauss : ndarray of shape (n_samples, n_features)
        Standard normal data.
    X_struct : ndarray of shape (n_samples, n_features)
        Rows that are sums of k atoms with positive coefficients, plus noise.
    """
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X_gauss = rng.standard_normal((n_samples, n_features))
    support = np.argpartition(rng.random((n_samples, n_components)), k, axis=1)[:, :k]
    Z = np.zeros((n_samples, n_components))
    np.put_along_axis(Z, support, rng.uniform(0.5, 1.5, (n_samples, k)), axis=1)
    X_struct = Z @ D + 0.01 * rng.standard_normal((n_samples, n_features))
    return D.astype(dtype), X_gauss.astype(dtype), X_struct.astype(dtype)


def add_problem_arguments(parser, *, repeats):
    """The SPEC section 8 problem (X 4096 x 768, 6144 atoms, k=32) as command-line options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Parser to extend.
    repeats : int
        Default number of timed rounds.
    """
    parser.add_argument("--n-samples", type=int, default=4096)
    parser.add_argument("--n-features", type=int, default=768)
    parser.add_argument("--n-components", type=int, default=6144)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")


def saelens_encoder(D, k):
    """SAELens' MP-SAE ``encode`` with decoder ``D`` (unit rows) and no bias: NumPy in and out."""
    import sae_lens
    import torch

    n_components, n_features = D.shape
    cfg = sae_lens.MatchingPursuitTrainingSAEConfig(
        d_in=n_features, d_sae=n_components, max_iterations=k, residual_threshold=0.0,
        stop_on_duplicate_support=False)
    sae = sae_lens.MatchingPursuitTrainingSAE(cfg)
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(D))
        sae.b_dec.zero_()
    sae.eval()

    def encode(X):
        with torch.no_grad():
            return sae.encode(torch.from_numpy(X)).numpy()
    return encode


def main(argv=None):
    """Run the benchmark and print the table and the SPEC bars.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments (``sys.argv[1:]`` when None).
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_problem_arguments(p, repeats=7)
    p.add_argument("--omp-rows", type=int, default=256)
    p.add_argument("--skip-sklearn", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pause", type=float, default=0.25,
                   help="seconds of sleep before each timed call (BLAS workers go idle)")
    p.add_argument("--peers", action="store_true",
                   help="also time SAELens' MP-SAE encode (pip install -e '.[peers]')")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n, k = args.n_samples, args.k
    D, Xg, Xs = make_data(n, args.n_features, args.n_components, k, np.dtype(args.dtype), rng)
    G = D @ D.T

    def mp(backend, gram):
        return lambda X: mp_encode(X, D, n_steps=k, gram=gram, backend=backend)

    methods = [("GEMM X @ D.T", lambda X: X @ D.T, None)]
    if onednn_active(D.dtype):
        # The faster of the two GEMMs is the baseline: the numba engine takes
        # its float32 correlations from oneDNN (skmpsae/_products.py).
        import torch

        D_t = torch.from_numpy(D)
        methods.append(("GEMM oneDNN (torch)", lambda X: linear(torch.from_numpy(X), D_t).numpy(),
                        None))
    methods += [
        ("mp numba, gram given", mp("numba", G), None),
        ("mp numba, no gram", mp("numba", None), None),
    ]
    # The reference engines in a group of their own: after the NumPy engine's
    # multithreaded products the next calls ran slower for longer than the
    # pause (measured at 4096 x 768, 6144 atoms: no gram 516 ms after it, 374
    # ms after the Gram-given call).
    references = [("mp numpy, gram given", mp("numpy", G), None),
                  ("mp torch, gram given", mp("torch", G), None)]
    # Timed in a group of their own, after skmpsae's: torch's threads spin after
    # a peer's call and would slow the GEMM baseline that follows it.
    peer_missing = args.peers and importlib.util.find_spec("sae_lens") is None
    peers = [] if not args.peers or peer_missing else \
        [("SAELens MP-SAE encode", saelens_encoder(D, k), None)]
    if not args.skip_sklearn:
        from sklearn.decomposition import SparseCoder, sparse_encode

        coder = SparseCoder(dictionary=D, transform_algorithm="omp",
                            transform_n_nonzero_coefs=k)
        m = min(args.omp_rows, n)
        methods.append((f"OMP SparseCoder ({m} rows x{n / m:g})", coder.transform, m))
        methods.append((f"OMP gram given ({m} rows x{n / m:g})",
                        lambda X: sparse_encode(X, D, gram=G, algorithm="omp",
                                                n_nonzero_coefs=k), m))

    rows = []
    for group in ([mt for mt in methods if mt[2] is None], references, peers,
                  [mt for mt in methods if mt[2]]):
        if not group:
            continue
        m = group[0][2] or n
        repeats = args.repeats if m == n else min(args.repeats, 3)
        fns = [lambda fn=fn: fn(Xg[:m]) for _, fn, _ in group]  # noqa: B023
        times, codes = interleaved_medians(fns, repeats, args.pause)
        for (name, fn, _), seconds, Z in zip(group, times, codes, strict=True):
            gemm_row = name.startswith("GEMM")
            r2g = float("nan") if gemm_row else r2_score(Xg[:m], Z, D)
            r2s = float("nan") if gemm_row else r2_score(Xs[:m], fn(Xs[:m]), D)
            rows.append((name, seconds * n / m, r2g, r2s))

    seconds_of = {name: seconds for name, seconds, _, _ in rows}
    gemm = min(seconds for name, seconds, _, _ in rows if name.startswith("GEMM"))
    numba_g, numba_no_gram = seconds_of["mp numba, gram given"], seconds_of["mp numba, no gram"]
    print(f"X ({n} x {args.n_features}) {args.dtype}, {args.n_components} atoms, k={k}, "
          f"median of {args.repeats} (OMP: {min(args.repeats, 3)}) after a warm-up")
    head = f"{'method':<34} {'time (s)':>10} {'x GEMM':>8} {'numba-gram faster':>18} " \
           f"{'R2 gauss':>9} {'R2 struct':>10}"
    print(head)
    print("-" * len(head))
    for name, seconds, r2g, r2s in rows:
        print(f"{name:<34} {seconds:>10.4f} {seconds / gemm:>8.2f} {seconds / numba_g:>17.1f}x "
              f"{r2g:>9.4f} {r2s:>10.4f}")

    print("\nSPEC bars (section 8)")
    ratio = numba_g / gemm
    print(f"  {'numba with gram <= 2.5x GEMM:':<37}{ratio:6.2f}x   "
          f"{'PASS' if ratio <= 2.5 else 'FAIL'}   (the faster GEMM)")
    no_gram = numba_no_gram / numba_g
    print(f"  {'numba, no gram <= 1.3x with gram:':<37}{no_gram:6.2f}x   "
          f"{'PASS' if no_gram <= 1.3 else 'FAIL'}")
    for name, seconds, _, _ in rows:
        if not name.startswith("OMP"):
            continue
        speedup = seconds / numba_g
        label = f">= 20x faster than {name.split(' (')[0]}:"
        print(f"  {label:<37}{speedup:6.1f}x   {'PASS' if speedup >= 20 else 'FAIL'}")
    if args.peers:
        print("\nAgainst the peers (time of the peer's encode over skmpsae's)")
        if peer_missing:
            print("  SAELens: not installed (pip install -e '.[peers]')")
        for name, seconds, _, _ in rows:
            if name.startswith("SAELens"):
                print(f"  {name}: {seconds / numba_g:.1f}x the numba kernel with the Gram "
                      f"given, {seconds / numba_no_gram:.1f}x without")


if __name__ == "__main__":
    main()
