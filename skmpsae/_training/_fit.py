"""One training run: from a data source and a starting point to fitted arrays.

Starting points: fresh (the estimator's ``_init_arrays``), the estimator's
own fitted state (``partial_fit``, ``warm_start``) or the newest checkpoint in
``checkpoint_dir``. The run checkpoints as asked, stops cleanly on Ctrl-C
after the step in progress, and under ``torch.distributed`` trains data-parallel.
"""

import copy
import hashlib
import signal
import threading
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils import check_random_state

from .._device import resolve_device
from .._memory import check_training_memory
from .._threads import torch_threads
from ..exceptions import TrainingDivergedError
from ._checkpoint import CheckpointStore, check_checkpoint_dir
from ._data import ArraySource
from ._distributed import Sync
from ._loop import EpochPosition, EpochResult, TrainState, optimizer_options, run_epoch
from ._schedule import constant, warmup_cosine

__all__ = ["RunOutcome", "train"]

_NO_LIMIT = float("inf")


class RunOutcome(NamedTuple):
    """What a run leaves for the estimator's fitted attributes."""

    arrays: dict
    n_components: int
    n_iter: int
    loss_curve: list
    optimizer_state: dict
    step: int
    interrupted: str | None


class _Interrupt:
    """Turns the first Ctrl-C into a request to stop after the current step.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once. Only Python's default
    handler is replaced, in the main thread: where SIGINT is ignored (a
    background job) or handled by the application, it is left alone.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


_HASHED_ROWS = 64


def _fingerprint(source):
    """What binds a checkpoint to its data: sizes, dtype and a hash of evenly spaced rows.

    Two folds of one data set have the same shape but not the same rows; a
    hash of 64 rows tells them apart for the cost of reading 64 rows.
    """
    sample = source.sample()
    n = len(sample)
    rows = np.unique(np.linspace(0, n - 1, min(n, _HASHED_ROWS)).astype(np.int64))
    block = np.ascontiguousarray(np.asarray(sample[rows]), dtype=source.dtype)
    return {"n_rows": source.n_rows(), "n_features": int(source.n_features),
            "dtype": str(np.dtype(source.dtype)),
            "rows_sha256": hashlib.sha256(block.tobytes()).hexdigest()[:32]}


def _steps_per_epoch(source, batch_size, sync):
    n_rows = source.n_rows()
    world = 1 if sync is None else sync.world
    if n_rows is None:
        return None
    if world > 1 and isinstance(source, ArraySource):
        return -(-n_rows // (batch_size * world))
    steps = -(-n_rows // min(batch_size, max(n_rows, 1)))
    if sync is not None:  # each rank's own iterable: the longest sets the pace
        steps = int(sync.max_(torch.tensor([float(steps)], dtype=torch.float64))[0])
    return steps


class _Run:
    """The state of one call to ``train``; see the module docstring."""

    def __init__(self, estimator, source, *, n_epochs, cosine, previous):
        self.est = estimator
        self.source = source
        self.n_epochs = n_epochs
        self.device = resolve_device(estimator.device)
        self.sync = Sync.detect(self.device)
        self.rng = check_random_state(estimator.random_state)
        # fit checkpoints and resumes; partial_fit leaves that to the caller's loop.
        self.store = None
        if cosine and estimator.checkpoint_dir is not None:
            check_checkpoint_dir(estimator.checkpoint_dir)
            self.store = CheckpointStore(estimator.checkpoint_dir)
        self.every = estimator.checkpoint_every
        self.batch_size = estimator.batch_size
        if isinstance(source, ArraySource):
            self.batch_size = min(self.batch_size, source.n_rows())
        self.steps = _steps_per_epoch(source, self.batch_size, self.sync)
        self.schedule = (warmup_cosine(n_epochs * self.steps, estimator.warmup)
                         if cosine and self.steps else constant)
        self.previous = previous
        self.position = None
        self.rng_epoch = None
        self.first_epoch = previous["n_iter"] if previous else 0

    # ------------------------------------------------------------ starting point
    def _start(self):
        est, saved = self.est, None
        if self.sync is not None and isinstance(self.source, ArraySource):
            self.sync.check_same(self.source.n_rows(), "the number of rows of X")
        if self.store is not None:
            saved = self._read_checkpoint()
        if saved is not None:
            return self._resume(saved)
        if self.previous is not None:
            p = self.previous
            state = TrainState(p["arrays"], learning_rate=est.learning_rate, device=self.device,
                               optimizer_state=p["optimizer_state"], step=p["step"],
                               buffer_names=est._buffer_names, **optimizer_options(est))
            self.n_components = p["n_components"]
            self.loss_curve, self.n_iter = list(p["loss_curve"]), p["n_iter"]
        else:
            self.n_components = est._resolve_n_components(self.source.n_features)
            check_training_memory(est, self.n_components, self.source, self.source.n_rows())
            arrays = {name: np.asarray(value, dtype=self.source.dtype) for name, value in
                      est._init_arrays(self.source.sample(), self.n_components,
                                       self.rng).items()}
            state = TrainState(arrays, learning_rate=est.learning_rate, device=self.device,
                               buffer_names=est._buffer_names, **optimizer_options(est))
            self.loss_curve, self.n_iter = [], 0
        if self.sync is not None:
            # Every rank starts from rank 0's parameters and random stream.
            self.rng.set_state(self.sync.broadcast_object(self.rng.get_state()))
            with torch.no_grad():
                self.sync.broadcast_(self.sync.state_tensors(state))
        return state

    def _read_checkpoint(self):
        if self.sync is None or self.sync.rank == 0:
            self.store.claim(class_name=type(self.est).__name__,
                             params=self.est.get_params(deep=False),
                             fingerprint=_fingerprint(self.source))
        saved = self.store.read() if self.sync is None or self.sync.rank == 0 else None
        if self.sync is not None:
            saved = self.sync.broadcast_object(saved)
        if saved is None:
            return None
        self.store.check_compatible(saved["meta"], class_name=type(self.est).__name__,
                                    params=self.est.get_params(deep=False),
                                    fingerprint=_fingerprint(self.source))
        if saved["meta"]["first_epoch"] != self.first_epoch:
            if self.previous is not None:
                return None  # a checkpoint of the fit before this warm start: start anew
            raise ValueError(
                f"checkpoint_dir={str(self.store.path)!r} holds a checkpoint of a warm-started "
                f"fit (from epoch {saved['meta']['first_epoch']}); resume it with the "
                "estimator it started from, or use an empty checkpoint_dir."
            )
        return saved

    def _resume(self, saved):
        meta = saved["meta"]
        dtype = np.dtype(meta["data"]["dtype"])
        # In the estimator's order, as a fresh fit holds them: the file gives them in
        # no fixed order, and the clipped gradient norm sums the parameters' norms in
        # this order (another order resumed to float32 rounding, not to the bit).
        order = {name: i for i, name in enumerate(self.est._array_names)}
        arrays = {name: np.asarray(saved["arrays"][name], dtype=dtype)
                  for name in sorted(saved["arrays"], key=lambda n: order.get(n, len(order)))}
        state = TrainState(arrays, learning_rate=self.est.learning_rate, device=self.device,
                           step=meta["step"], buffer_names=self.est._buffer_names,
                           **optimizer_options(self.est))
        state.load_adam_by_name(saved["adam"])
        self.n_components = meta["n_components"]
        self.loss_curve, self.n_iter = list(meta["loss_curve"]), meta["n_iter"]
        self.first_epoch = meta["first_epoch"]
        self.rng.set_state(saved["rng_now"])
        if meta["batch"] > 0:
            on_rank0 = self.sync is None or self.sync.rank == 0
            self.position = EpochPosition(
                self.n_components, self.device, batch=meta["batch"],
                total=meta["total"] if on_rank0 else 0.0, seen=meta["seen"] if on_rank0 else 0,
                fired=saved["fired"] if on_rank0 else None)
            self.rng_epoch = saved["rng_epoch"]
        return state

    # -------------------------------------------------------------- checkpoints
    def _checkpoint(self, state, position, rng_epoch):
        if self.sync is not None:
            position.gather(self.sync)
            if self.sync.rank != 0:
                return
        self.store.write({
            "meta": {
                "class": type(self.est).__name__,
                "params": self.est.get_params(deep=False),
                "data": _fingerprint(self.source),
                "n_components": self.n_components, "step": state.step,
                "n_iter": self.n_iter, "first_epoch": self.first_epoch,
                "loss_curve": self.loss_curve,
                "batch": position.batch if position else 0,
                "total": position.total if position else 0.0,
                "seen": position.seen if position else 0,
            },
            "arrays": state.arrays(), "adam": state.adam_by_name(),
            "fired": (position.fired.cpu().numpy() if position
                      else np.zeros(self.n_components, dtype=np.int64)),
            "rng_epoch": rng_epoch if rng_epoch is not None else self.rng.get_state(),
            "rng_now": self.rng.get_state(),
        })

    def _finish_interrupted(self, state):
        # What an epoch's end sets (BatchTopK's inference threshold) must hold
        # for the weights an interrupted fit leaves, even in its first epoch;
        # last=True asks for no revival. A copy of the random stream keeps the
        # checkpoint (already written) and any resumed run unaffected.
        empty = EpochResult(0.0, np.zeros(self.n_components, dtype=np.int64), True)
        self.est._end_epoch(state, self.source.sample(), empty, epoch=self.n_iter, last=True,
                            rng=copy.deepcopy(self.rng))

    # -------------------------------------------------------------------- loop
    def run(self):
        # Ctrl-C during setup (initialisation, reading a checkpoint) stops before
        # the first step, like one during training.
        with _Interrupt() as interrupt:
            state = self._start()
            return self._loop(state, interrupt)

    def _loop(self, state, interrupt):
        from tqdm.auto import tqdm

        done = self.n_iter - self.first_epoch
        progress = tqdm(total=max(self.n_epochs - done, 0) * (self.steps or 0) or None,
                        disable=not self.est.verbose, desc=type(self.est).__name__,
                        unit="batch")
        rank, world = (0, 1) if self.sync is None else (self.sync.rank, self.sync.world)
        batch_work = self.batch_size * self.n_components * self.source.n_features
        threads = torch_threads(batch_work if self.device.type == "cpu" else _NO_LIMIT,
                                parallel_from=getattr(self.est, "_parallel_step_from", None))
        interrupted = None
        if interrupt.requested and self.sync is None:  # ranks stop together in run_epoch
            interrupted = f"during setup, before optimizer step {state.step + 1}"
        try:
            with threads:
                for epoch in range(done if interrupted is None else self.n_epochs,
                                   self.n_epochs):
                    position, rng_epoch = self.position, self.rng_epoch
                    self.position = self.rng_epoch = None
                    if position is None:
                        rng_epoch = self.rng.get_state()
                        position = EpochPosition(self.n_components, self.device)
                        order = self.source.order(self.rng)
                    else:  # resuming inside an epoch: redraw its order, then go on
                        now = self.rng.get_state()
                        self.rng.set_state(rng_epoch)
                        order = self.source.order(self.rng)
                        self.rng.set_state(now)

                    def on_step(pos, rng_epoch=rng_epoch):
                        if self.store is not None and self.every and \
                                state.step % self.every == 0:
                            self._checkpoint(state, pos, rng_epoch)
                        return interrupt.requested

                    batches = self.source.batches(order, self.batch_size, skip=position.batch,
                                                  rank=rank, world=world)
                    result = run_epoch(self.est, state, batches, rng=self.rng,
                                       schedule=self.schedule, epoch=self.n_iter,
                                       position=position, sync=self.sync, progress=progress,
                                       on_step=on_step)
                    if result.interrupted:
                        interrupted = (f"after optimizer step {state.step} (epoch "
                                       f"{self.n_iter + 1}, batch {position.batch})")
                        if self.store is not None:
                            self._checkpoint(state, position, rng_epoch)
                        break
                    self.est._end_epoch(state, self.source.sample(), result, epoch=self.n_iter,
                                        last=epoch == self.n_epochs - 1, rng=self.rng)
                    if self.sync is not None:
                        with torch.no_grad():
                            self.sync.broadcast_(self.sync.state_tensors(state))
                    self.loss_curve.append(result.loss)
                    self.n_iter += 1
                    if self.store is not None:
                        self._checkpoint(state, None, None)
        finally:
            progress.close()
        if interrupted is not None:
            self._finish_interrupted(state)
        arrays = state.arrays()
        bad = [name for name, value in arrays.items() if not np.isfinite(value).all()]
        if bad:
            raise TrainingDivergedError(
                f"{type(self.est).__name__} training produced NaN or inf in {bad}; lower "
                "learning_rate or scale X.", arrays=arrays)
        return RunOutcome(arrays, self.n_components, self.n_iter, self.loss_curve,
                          state.optimizer_state(), state.step, interrupted)


def train(estimator, source, *, n_epochs, cosine, previous=None):
    """Train ``estimator`` on ``source`` for ``n_epochs``; returns a ``RunOutcome``.

    ``previous`` continues a fitted state (a dict of ``arrays``,
    ``optimizer_state``, ``step``, ``n_components``, ``loss_curve``,
    ``n_iter``); ``cosine`` selects warmup plus cosine decay over the run
    (``fit``) rather than the constant rate (``partial_fit``).
    """
    return _Run(estimator, source, n_epochs=n_epochs, cosine=cosine, previous=previous).run()
