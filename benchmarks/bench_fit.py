"""Benchmark MP-SAE training steps: the fast path against a naive unrolled autograd loop.

One optimizer step is forward + backward + Adam step + renormalisation of the
atoms, on one batch, with the dictionary ``D`` and pre-bias ``b`` as torch
parameters on the CPU (default thread count):

- fast: indices from ``select_atoms`` (Gram pursuit, no autograd), then
  ``pursuit_loss``, the differentiable pursuit along those indices that
  ``MatchingPursuitSAE`` trains with (numba forward/backward kernels on CPU);
- naive: ``unrolled_loss``, one full product ``r @ D.T`` per step under autograd.

Both run in the same process on the same data (standard normal ``X``, random
unit-norm atoms, ``b`` the batch mean, each path with its own parameters and
Adam). After one warm-up step each, they run in interleaved rounds (default 2
rounds of 3 fast steps and 1 naive step, as the naive step is slow) so that
background load affects both alike; times are medians. The script also checks,
in float64 on a small problem, that both give the same loss and gradients on
the same parameters, and times, for context, one ``MatchingPursuitSAE``
epoch on the same data (``partial_fit`` after a first one, so without
initialisation; one batch per epoch).

``--small-fit`` times instead a whole one-epoch ``fit`` of 4096 x 384 (3072
atoms, k=16, batch 1024), fixed costs included, against the naive loop's
four steps on the same batches.

Run::

    cd /work/main && .venv/bin/python benchmarks/bench_fit.py
    cd /work/main && .venv/bin/python benchmarks/bench_fit.py --small-fit
"""

import argparse
import time

import numpy as np
import torch

from skmpsae import MatchingPursuitSAE
from skmpsae._pursuit._train_pass import pursuit_loss, select_atoms, unrolled_loss


def make_params(n_features, n_components, X, dtype, seed):
    """Random unit-norm dictionary and mean pre-bias, as torch parameters.

    Parameters
    ----------
    n_features, n_components : int
        Dictionary shape is (n_components, n_features).
    X : torch.Tensor of shape (n_samples, n_features)
        Data; the pre-bias starts at its mean.
    dtype : torch.dtype
        Parameter dtype.
    seed : int
        Seed of the dictionary.

    Returns
    -------
    D, b : torch.nn.Parameter
        Dictionary and pre-bias.
    """
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_components, n_features, generator=g, dtype=dtype)
    D /= D.norm(dim=1, keepdim=True)
    return torch.nn.Parameter(D), torch.nn.Parameter(X.mean(0).clone())


def fast_loss(D, b, X, k):
    """MP-SAE loss of the fast path: Gram selection, then differentiable recompute.

    Parameters
    ----------
    D, b : torch.Tensor
        Dictionary (n_components, n_features) and pre-bias (n_features,).
    X : torch.Tensor of shape (batch, n_features)
        Batch.
    k : int
        Pursuit steps.

    Returns
    -------
    loss : torch.Tensor
        Mean squared residual norm (scalar, differentiable).
    """
    idx, _ = select_atoms(D.detach(), b.detach(), X, k, True)
    loss, _ = pursuit_loss(D, b, X, idx, True)
    return loss


def naive_loss(D, b, X, k):
    """Naive unrolled autograd MP-SAE loss; parameters and return as ``fast_loss``."""
    return unrolled_loss(D, b, X, k, True)


def make_step(loss_fn, X, n_components, k, seed):
    """Fresh parameters and Adam, and a function running one timed optimizer step.

    Parameters
    ----------
    loss_fn : callable
        ``fast_loss`` or ``naive_loss``.
    X : torch.Tensor of shape (batch, n_features)
        Batch.
    n_components, k : int
        Number of atoms and pursuit steps.
    seed : int
        Seed of the dictionary.

    Returns
    -------
    step : callable
        ``step()`` runs loss, backward, Adam step and atom renormalisation and
        returns its wall time in seconds.
    """
    D, b = make_params(X.shape[1], n_components, X, X.dtype, seed)
    opt = torch.optim.Adam([D, b], lr=1e-4)

    def step():
        start = time.perf_counter()
        loss = loss_fn(D, b, X, k)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            D.div_(D.norm(dim=1, keepdim=True).clamp_min(1e-12))
        return time.perf_counter() - start

    return step


def interleaved_medians(steps, per_round, rounds):
    """Median time of each step function, run in interleaved rounds after a warm-up.

    Each round runs ``per_round[i]`` calls of ``steps[i]`` for every ``i``, so
    background load on the machine affects all of them alike.

    Parameters
    ----------
    steps : list of callable
        Functions returning their own wall time.
    per_round : list of int
        Calls of each function per round.
    rounds : int
        Number of rounds.

    Returns
    -------
    medians : list of float
        Median time of each function.
    """
    for step in steps:
        step()
    times = [[] for _ in steps]
    for _ in range(rounds):
        for step, count, out in zip(steps, per_round, times, strict=True):
            out.extend(step() for _ in range(count))
    return [float(np.median(t)) for t in times]


def check_agreement(n=256, n_features=64, n_components=512, k=16, seed=0):
    """Max abs differences of loss and gradients, fast vs naive, in float64.

    Parameters
    ----------
    n, n_features, n_components, k : int
        Problem size.
    seed : int
        Seed of data and dictionary.

    Returns
    -------
    diffs : dict
        ``"loss"``, ``"grad D"``, ``"grad b"`` -> max abs difference, and the
        loss value under ``"value"``.
    """
    X = torch.randn(n, n_features, generator=torch.Generator().manual_seed(seed + 1),
                    dtype=torch.float64)
    out = []
    for fn in (fast_loss, naive_loss):
        D, b = make_params(n_features, n_components, X, torch.float64, seed)
        loss = fn(D, b, X, k)
        loss.backward()
        out.append((loss.detach(), D.grad, b.grad))
    (l1, gD1, gb1), (l2, gD2, gb2) = out
    return {"value": float(l1), "loss": float((l1 - l2).abs()),
            "grad D": float((gD1 - gD2).abs().max()), "grad b": float((gb1 - gb2).abs().max())}


def fit_epoch_seconds(X, n_components, k, seed):
    """Seconds of one ``MatchingPursuitSAE.partial_fit`` epoch after the first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training data; one batch per epoch.
    n_components, k : int
        Estimator size and sparsity.
    seed : int
        ``random_state``.

    Returns
    -------
    seconds : float
        Median of two epochs, initialisation excluded.
    """
    sae = MatchingPursuitSAE(n_components=n_components, k=k, batch_size=X.shape[0],
                             device="cpu", random_state=seed).partial_fit(X)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        sae.partial_fit(X)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def small_fit(rounds, seed, n_rows=4096, n_features=384, n_components=3072, k=16,
              batch=1024):
    """Whole one-epoch ``MatchingPursuitSAE.fit`` against the naive loop's same steps.

    The fit is timed from a fresh estimator (initialisation, geometric median,
    numba kernels' loading or compiling and thread start-up included; the
    first fit of the process is reported apart), the naive loop as its
    ``n_rows // batch`` optimizer steps on the same batches; rounds interleave.

    Returns
    -------
    first, fit, naive : float
        Seconds of the process's first fit, the median fit and the median
        naive epoch.
    """
    X = torch.randn(n_rows, n_features, generator=torch.Generator().manual_seed(seed + 1))
    Xn = X.numpy()
    fits, naives = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        MatchingPursuitSAE(n_components=n_components, k=k, batch_size=batch, max_iter=1,
                           random_state=seed).fit(Xn)
        fits.append(time.perf_counter() - start)
        steps = [make_step(naive_loss, X[i:i + batch], n_components, k, seed)
                 for i in range(0, n_rows, batch)]
        naives.append(sum(step() for step in steps))
    return fits[0], float(np.median(fits)), float(np.median(naives))


def main(argv=None):
    """Run the benchmark and print the table and the SPEC bar.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments (``sys.argv[1:]`` when None).
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--n-features", type=int, default=768)
    p.add_argument("--n-components", type=int, default=6144)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--fast-per-round", type=int, default=3)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--skip-fit", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small-fit", action="store_true",
                   help="only the small-fit bar: one-epoch fit of 4096 x 384, 3072 atoms, k=16, "
                   "batch 1024, whole call, against the naive loop's 4 steps")
    args = p.parse_args(argv)
    if args.small_fit:
        import os

        print(os.popen("uptime").read().strip())
        first, fit, naive = small_fit(max(args.rounds, 3), args.seed)
        print("one-epoch fit 4096 x 384 float32, 3072 atoms, k=16, batch 1024 (whole call)")
        print(f"  MatchingPursuitSAE.fit   first {first:.3f} s, median {fit:.3f} s")
        print(f"  naive unrolled, 4 steps  median {naive:.3f} s")
        print(f"  fit >= 10x naive: {naive / fit:6.1f}x (first fit {naive / first:.1f}x)   "
              f"{'PASS' if naive / fit >= 10 else 'FAIL'}")
        return
    dtype = getattr(torch, args.dtype)
    X = torch.randn(args.batch, args.n_features, dtype=dtype,
                    generator=torch.Generator().manual_seed(args.seed + 1))
    steps = [make_step(fn, X, args.n_components, args.k, args.seed)
             for fn in (fast_loss, naive_loss)]
    fast, naive = interleaved_medians(steps, [args.fast_per_round, 1], args.rounds)
    rows = [("fast (select + numba pursuit)", fast, args.rounds * args.fast_per_round),
            ("naive unrolled autograd", naive, args.rounds)]
    if not args.skip_fit:
        epoch = fit_epoch_seconds(X.numpy(), args.n_components, args.k, args.seed)
        rows.append(("MatchingPursuitSAE partial_fit", epoch, 2))

    print(f"batch {args.batch} x {args.n_features} {args.dtype}, {args.n_components} atoms, "
          f"k={args.k}, {torch.get_num_threads()} torch threads; one step = forward + "
          "backward + Adam + renorm")
    head = f"{'method':<31} {'repeats':>7} {'step (s)':>9} {'samples/s':>10} {'vs naive':>9}"
    print(head)
    print("-" * len(head))
    for name, seconds, reps in rows:
        print(f"{name:<31} {reps:>7} {seconds:>9.3f} {args.batch / seconds:>10.0f} "
              f"{naive / seconds:>8.1f}x")

    diffs = check_agreement()
    print("\nfast vs naive, float64, batch 256 x 64, 512 atoms, k=16 "
          f"(loss {diffs['value']:.6f}): max abs diff")
    for key in ("loss", "grad D", "grad b"):
        print(f"  {key:<8} {diffs[key]:.3e}")

    speedup = naive / fast
    print("\nSPEC bar (section 8)")
    print(f"  fast >= 10x naive throughput:  {speedup:6.1f}x   "
          f"{'PASS' if speedup >= 10 else 'FAIL'}")


if __name__ == "__main__":
    main()
