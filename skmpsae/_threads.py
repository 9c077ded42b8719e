"""Thread policy for the BLAS products and numba kernels of small problems.

OpenBLAS worker threads keep spinning for a while after a product; on a
machine with few cores they then compete with the numba (and torch) threads
that run next. Below about 2e9 multiply-adds a product is faster on one BLAS
thread than the contention costs (measured: a 256 x 64 x 512 training step is
13x faster, 1024 x 256 x 2048 is 2.4x faster; 4096 x 768 x 6144 is 1.4x slower).
Likewise a numba kernel with little work pays more for waking and joining its
threads than it gains (5 epochs on 16000 x 64 patches: 0.57 s on one thread,
0.67 s on two), and a join waits a whole time slice when another process has
the core, so small kernels run on the calling thread. Torch's own intra-op threads
behave the same on small batches: 15 epochs of a TopK SAE on digits take
0.73 s on one torch thread and 2.5 s on two, and 1.8 s against 63 s when a
second such job shares the two cores.
"""

import functools
import importlib
import os
import sys
import time
from contextlib import contextmanager, nullcontext

__all__ = ["blas_threads", "gram_threads", "kernel_threads", "may_take_threads",
           "product_threads", "spare_core_kernel", "spare_core_threads", "step_threads",
           "thread_pool", "torch_threads"]

_SERIAL_BELOW = 2e9
_SERIAL_KERNEL_BELOW = 1e7  # element updates, a few milliseconds on one core
_PARALLEL_PRODUCT_FROM = 5e8  # multiply-adds of one product, about 6 ms on one core
#: Multiply-adds of a batch (rows x latents x features) from which a
#: linear-encoder SAE's whole training step runs on torch's threads: its step
#: is one product, a top-k and a few sparse ops, so the joins are few
#: (measured: 1 epoch of MiniLM 20480 x 384, 3072 latents, batch 1024,
#: 1.2e9 a batch, 0.66 s against 0.82 s with only the product on two threads,
#: load average 2 on 2 cores; but 7.1 s against 1.7 s when other jobs keep
#: the load near 16).
PARALLEL_LINEAR_STEP_FROM = 1e9
#: Torch's thread count outside the one-thread contexts of ``torch_threads``.
_outer_torch_threads = [None]


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_pools = {}
# A forked child has none of the parent's threads: it makes its own pools.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pools.clear)


def thread_pool(workers):
    """A pool of ``workers`` Python threads, made once per count (idle threads cost nothing).

    For one-thread pieces of work that release the GIL (NumPy's and oneDNN's
    products, ``nogil`` kernels): a pool made per call started its threads
    again every training step. Each thread runs OpenMP (oneDNN's runtime) on
    one thread: a new thread's OpenMP count is the machine's, whatever torch's
    is, and the pieces already share the cores among themselves.
    """
    if workers not in _pools:
        from concurrent.futures import ThreadPoolExecutor

        _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="skmpsae",
                                             initializer=_one_openmp_thread)
    return _pools[workers]


def _one_openmp_thread():
    # OpenMP's thread count is the calling thread's own; a new controller sees
    # the runtimes loaded since the cached one was made (torch's).
    from threadpoolctl import ThreadpoolController

    for lib in ThreadpoolController().select(user_api="openmp").lib_controllers:
        lib.set_num_threads(1)


def may_take_threads(multiply_adds):
    """Whether a product of ``multiply_adds`` is large enough for several threads (~5e8)."""
    return multiply_adds >= _PARALLEL_PRODUCT_FROM


def gram_threads(multiply_adds):
    """Threads for a Gram matrix of ``multiply_adds``: BLAS's current count from ~5e8, else 1.

    ``blas_threads(..., alone=True)``'s rule, read as a count so that the
    product can run as pieces on that many Python threads (inside a
    one-thread training step the count is 1, or the spare core's).
    """
    if not may_take_threads(multiply_adds):
        return 1
    return max(pool["num_threads"] for pool in _controller().select(user_api="blas").info())


def blas_threads(multiply_adds, *, alone=False):
    """Context limiting BLAS to one thread for products of fewer ``multiply_adds``.

    ``alone``: a product that is the only parallel region of its step (a
    Gram matrix) takes the threads from ~5e8 multiply-adds, as in
    ``product_threads`` (measured: the 3072-atom Gram of 384 features, 1.8e9,
    in 36 ms on two threads against 53 ms on one). Inside a small training
    step (``step_threads``) the step's one-thread limit holds instead. The
    limit covers oneDNN's products too (``_products``: torch's threads, where
    torch is loaded).
    """
    if multiply_adds >= (_PARALLEL_PRODUCT_FROM if alone else _SERIAL_BELOW):
        return nullcontext()
    return _one_product_thread()


@contextmanager
def _one_product_thread():
    with _controller().limit(limits=1, user_api="blas"), \
            (_one_thread("torch") if "torch" in sys.modules else nullcontext()):
        yield


@contextmanager
def _thread_count(module_name, threads):
    # numba and torch share the get_num_threads/set_num_threads interface.
    module = importlib.import_module(module_name)
    previous = module.get_num_threads()
    module.set_num_threads(threads)
    try:
        yield
    finally:
        module.set_num_threads(previous)


def _one_thread(module_name):
    return _thread_count(module_name, 1)


def kernel_threads(element_updates):
    """Context running numba parallel kernels on one thread below ~1e7 element updates."""
    if element_updates >= _SERIAL_KERNEL_BELOW:
        return nullcontext()
    return _one_thread("numba")


def step_threads(multiply_adds):
    """Context running BLAS and numba kernels on one thread for a training step below ~2e9.

    ``multiply_adds`` is the step's batch work (batch x n_components x
    n_features, as for ``torch_threads``). A step chains several kernels and
    products; below that size each parallel region gains less than its
    threads cost the next ones (OpenBLAS workers spin after a product while
    the next numba kernel wants the core): an MP-SAE step of 256 x 384 x 3072
    took 2.1 s for 40 steps on one thread against 4.1 s with the Gram matrix
    on two BLAS threads and the pursuit on two numba threads (whole fits,
    interleaved, two cores shared with other jobs), and a one-epoch fit of
    4096 x 384 at batch 1024 0.61 s against 0.96 s.
    """
    if multiply_adds >= _SERIAL_BELOW:
        return nullcontext()
    return _serial_step()


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def _spare_core():
    """Whether another core is idle: other processes use less than cores - 1.5 of them.

    Read, where Linux gives it, as the CPU time that this process's cores
    spent busy over the last ``_LOAD_WINDOW`` seconds or more, less this
    process's own (``_others_busy``): a training process on one thread takes
    about one core itself, and two cores whose other processes take under
    half of one have the second one mostly free. The 1-minute load average
    (the same rule: below cores - 0.5) is the fallback, and the first answer:
    it lags by a minute, so a fit started right after another busy job (a
    benchmark's previous trainer) ran its whole epoch on one thread.
    """
    cores = _cores()
    others = _others_busy()
    if others is not None:
        return others < cores - 1.5
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return False
    return load < cores - 0.5


#: Seconds from which a new reading of the cores' busy time replaces the last one.
_LOAD_WINDOW = 0.2
#: The last reading: (monotonic time, busy seconds of our cores, our CPU seconds,
#: other processes' mean busy cores since the reading before, or None).
_last_reading = [None]


def _busy_seconds():
    """CPU seconds that the cores this process may run on spent busy since boot, or None."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read().split(b"\n")
        ours = {f"cpu{i}".encode() for i in os.sched_getaffinity(0)}
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in ours:
            # user nice system idle iowait irq softirq steal: all but idle and iowait.
            values = [int(v) for v in fields[1:9]]
            busy += sum(values) - values[3] - values[4]
    return busy / ticks


def _others_busy():
    """Mean cores that other processes kept busy over the last window; None until known."""
    now = time.monotonic()
    last = _last_reading[0]
    if last is not None and now - last[0] < _LOAD_WINDOW:
        return last[3]
    busy = _busy_seconds()
    if busy is None:
        return None
    times = os.times()
    own = times.user + times.system
    others = None
    if last is not None:
        others = max(busy - last[1] - (own - last[2]), 0.0) / (now - last[0])
    _last_reading[0] = (now, busy, own, others)
    return others


def spare_core_threads(multiply_adds):
    """Context giving a large product inside a one-thread step all threads while a core is idle.

    ``multiply_adds``: the product's; from ~5e8 (``product_threads``' rule),
    and only while ``_spare_core`` says the machine has an idle core, BLAS
    gets its thread count back, so a training step's Gram matrix runs on both
    cores. Measured on 2 cores, one epoch of
    MiniLM 20480 x 384, 3072 atoms, k=16, three fits each: 14.4-16.1k samples/s
    against 12.2-14.5k at batch 1024 and 7.0-7.4k against 5.9-6.1k at batch
    256 when quiet; with two other busy processes on the machine, 6.9-7.4k
    against 8.4-9.1k (batch 1024), which is why a busy machine keeps the
    one-thread step. Outside a one-thread step it changes nothing.
    """
    if multiply_adds < _PARALLEL_PRODUCT_FROM or _outside_step[0] is None or \
            not _spare_core():
        return nullcontext()
    return _all_threads()


@contextmanager
def _all_threads():
    # Back to the BLAS threads in force outside the one-thread step (the
    # user's own limits included), not to the machine's count.
    with _controller().limit(limits=_outside_step[0]):
        yield


#: The BLAS libraries' info (thread counts) outside the one-thread step in progress.
_outside_step = [None]
#: numba's thread count outside the one-thread step in progress.
_outside_kernel = [None]


@contextmanager
def _serial_step():
    outer, outer_kernel = _outside_step[0], _outside_kernel[0]
    if outer is None:
        _outside_step[0] = _controller().select(user_api="blas").info()
        _outside_kernel[0] = importlib.import_module("numba").get_num_threads()
    try:
        with _controller().limit(limits=1, user_api="blas"), _one_thread("numba"):
            yield
    finally:
        _outside_step[0], _outside_kernel[0] = outer, outer_kernel


def spare_core_kernel(element_updates):
    """Context giving a numba kernel inside a one-thread step its threads while a core is idle.

    As ``spare_core_threads`` for a product, from ~1e7 ``element_updates``
    (``kernel_threads``' rule): the pursuit of a training step runs on
    numba's outer thread count (measured on 2 cores, a one-epoch fit of
    4096 x 384, 3072 atoms, k=16, batch 1024: the pursuit 14 ms a step on one
    thread against 8 ms on two). The kernels' results do not depend on their
    thread count.
    """
    threads = _outside_kernel[0]
    if threads is None or threads <= 1 or element_updates < _SERIAL_KERNEL_BELOW or \
            not _spare_core():
        return nullcontext()
    return _thread_count("numba", threads)


def torch_threads(multiply_adds, *, parallel_from=None):
    """Context running torch's CPU ops on one thread for batches below ~2e9 multiply-adds.

    ``parallel_from``: the threshold, where a training step has fewer small
    ops than the default's (``PARALLEL_LINEAR_STEP_FROM``).
    """
    if multiply_adds >= (_SERIAL_BELOW if parallel_from is None else parallel_from):
        return nullcontext()
    return _torch_one_thread()


@contextmanager
def _torch_one_thread():
    import torch

    previous = torch.get_num_threads()
    outer = _outer_torch_threads[0]
    _outer_torch_threads[0] = previous if outer is None else outer
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        _outer_torch_threads[0] = outer


def product_threads(multiply_adds):
    """Context giving one large product back the threads that ``torch_threads`` took.

    Inside a one-thread training context, a product of at least ~5e8
    multiply-adds (and the top-k over its output) runs on torch's outer
    thread count: one parallel region a step, whose join costs at most a time
    slice when another process holds a core, where running every small op of
    the step on two threads costs one per op (measured: 20 steps of a
    1024 x 384 x 3072 TopK SAE take 1.5 s on one thread, 1.1 s on two, and
    9.5 s on two when a second such job shares the two cores).
    """
    outer = _outer_torch_threads[0]
    if outer is None or outer <= 1 or multiply_adds < _PARALLEL_PRODUCT_FROM:
        return nullcontext()
    return _thread_count("torch", outer)
