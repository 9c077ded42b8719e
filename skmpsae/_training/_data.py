"""Training data: in-memory arrays, memory-mapped arrays and iterables of chunks.

A source yields the mini-batches of one epoch as NumPy arrays and offers a
row sample for the hooks that look at data (initialisation, revival of dead
latents, BatchTopK thresholds). Memory stays bounded for memory-mapped arrays
(rows are read from the file, not through the mapping: see ``_RowReader``)
and for iterables (only the current chunk and the row sample are held).

Under ``torch.distributed`` every rank holds the same array and takes its part
of each global batch of ``batch_size * world_size`` rows; an iterable is read
by each rank as its own shard.
"""

import functools
import mmap
import os
import weakref

import numpy as np

from .._validation import FLOATS, check_rows

__all__ = ["ArraySource", "DaskBlocks", "IterableSource", "is_streamed", "validated_stream"]

#: Rows kept from an iterable for the hooks that need a data sample.
SAMPLE_ROWS = 8192
_CHECK_ROWS_BYTES = 32 << 20


def _mapping(X):
    """``(owner, mm)``: the ``np.memmap`` holding ``X`` and its ``mmap.mmap`` (None, None if none).

    ``owner`` is None when the mapping is not a ``np.memmap``'s (an array
    made with ``np.frombuffer`` over an ``mmap.mmap``).
    """
    base = X
    while base is not None:
        mm = getattr(base, "_mmap", None)
        if isinstance(base, np.memmap) and isinstance(mm, mmap.mmap):
            return base, mm
        if isinstance(base, mmap.mmap):
            return None, base
        base = getattr(base, "base", None)
    return None, None


def is_streamed(X):
    """Whether ``fit`` should stream ``X`` instead of validating it whole."""
    if isinstance(X, np.ndarray):
        return _mapping(X)[1] is not None
    if X is None or isinstance(X, (str, bytes, dict)) or not hasattr(X, "__iter__"):
        return False  # not a stream: validation names what it is
    return not hasattr(X, "__array__") and not hasattr(X, "shape") and not _is_row_list(X)


def _is_row_list(X):
    # A list of rows (numbers) is an in-memory array; a list of 2-D chunks is a stream.
    if not isinstance(X, (list, tuple)) or not X:
        return isinstance(X, (list, tuple))
    return np.ndim(X[0]) == 1


def _pread_into(fd, buffer, position):
    view = memoryview(buffer).cast("B")
    while view.nbytes:
        n = os.preadv(fd, [view], position)
        if n <= 0:
            raise OSError(f"unexpected end of file at byte {position}")
        view, position = view[n:], position + n


class _RowReader:
    """Rows of a memory-mapped array, read from its file rather than through the mapping.

    Reading through a mapping makes every page it touches resident in this
    process, and a fault maps the neighbouring pages too (fault-around, and
    whole large folios of the page cache), so scattered rows can make far more
    memory resident than their bytes. ``os.preadv`` copies just the rows into
    the batch and leaves the rest in the page cache, which the kernel manages.
    When the file cannot be read that way (an anonymous or copy-on-write
    mapping, rows that are not contiguous), rows are gathered through the
    mapping and its pages handed back (``MADV_DONTNEED``) after each read.
    """

    def __init__(self, X):
        self.X = X
        self.row_bytes = X.shape[1] * X.dtype.itemsize
        self._fd = None
        owner, self._mmap = _mapping(X)
        if owner is None or owner.mode not in ("r", "r+") or not owner.filename \
                or X.strides[1] != X.dtype.itemsize or X.strides[0] < self.row_bytes:
            return
        try:
            mapped_at = np.frombuffer(owner._mmap, dtype=np.uint8).ctypes.data
            file_start = owner.offset - owner.offset % mmap.ALLOCATIONGRANULARITY
            self._first = file_start + (X.ctypes.data - mapped_at)
            self._stride = X.strides[0]
            self._fd = os.open(owner.filename, os.O_RDONLY)
        except (OSError, ValueError, TypeError):
            self._fd = None
            return
        weakref.finalize(self, os.close, self._fd)

    def rows(self, index):
        """Rows ``index`` (sorted integers) as a new C-contiguous array."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((index.shape[0], self.X.shape[1]), dtype=self.X.dtype)
        if self._fd is None:
            out[:] = self.X[index]
            self.release()
            return out
        if index.size:
            # One read per run of consecutive rows when rows are packed back to back.
            packed = self._stride == self.row_bytes
            starts = (np.flatnonzero(np.diff(index) != 1) + 1) if packed else \
                np.arange(1, index.size)
            bounds = np.concatenate([[0], starts, [index.size]])
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                _pread_into(self._fd, out[lo:hi], self._first + int(index[lo]) * self._stride)
        return out

    def block(self, start, stop):
        """Rows ``start:stop``."""
        return self.rows(np.arange(start, stop))

    def release(self):
        if self._mmap is not None and not self._mmap.closed:
            # Read-only file pages: the process forgets them, the page cache keeps them.
            self._mmap.madvise(mmap.MADV_DONTNEED)


def check_finite_rows(X, reader=None):
    """Raise if ``X`` (possibly memory-mapped) holds NaN or inf; reads it in chunks."""
    reader = reader or _RowReader(X)
    step = max(1, _CHECK_ROWS_BYTES // max(1, reader.row_bytes))
    for start in range(0, X.shape[0], step):
        block = reader.block(start, min(start + step, X.shape[0]))
        check_rows(block, None, start)


class _MappedRows:
    """Rows of a memory-mapped array for the hooks (which draw a few thousand at random)."""

    def __init__(self, reader):
        self._reader = reader
        self.shape = reader.X.shape
        self.dtype = reader.X.dtype
        self.ndim = 2

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(self.shape[0]))
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        out = np.empty((rows.shape[0], self.shape[1]), dtype=self.dtype)
        out[order] = self._reader.rows(rows[order])
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


class ArraySource:
    """Shuffled mini-batches of an array (in memory or memory-mapped).

    ``streamed``: validated here as it is read (a memory map), not by
    scikit-learn's ``validate_data`` up front.
    """

    def __init__(self, X, *, streamed=False):
        self.X = X
        self.n_features = X.shape[1]
        self.dtype = X.dtype
        self.streamed = streamed
        self._reader = _RowReader(X) if _mapping(X)[1] is not None else None

    def n_rows(self):
        return self.X.shape[0]

    def sample(self):
        """Rows the hooks may index (the array itself: they draw rows at random)."""
        return self.X if self._reader is None else _MappedRows(self._reader)

    def order(self, rng):
        """The epoch's order of rows (consumes ``rng`` like the in-memory fit)."""
        return rng.permutation(self.X.shape[0])

    def batches(self, order, batch_size, *, skip=0, rank=0, world=1):
        """Local batches of the epoch, ``skip`` global batches left out."""
        step = batch_size * world
        for start in range(skip * step, len(order), step):
            rows = np.sort(order[start:start + step])
            if world > 1:
                rows = np.array_split(rows, world)[rank]
            yield (np.ascontiguousarray(self.X[rows]) if self._reader is None
                   else self._reader.rows(rows))


def _samples_of(item):
    # DataLoader over a TensorDataset yields [x] or (x, y): the samples come first.
    if isinstance(item, (tuple, list)) and item and np.ndim(item[0]) == 2:
        return item[0]
    return item


def _as_chunk(item, index):
    item = _samples_of(item)
    if hasattr(item, "detach"):
        item = item.detach().cpu().numpy()
    try:
        chunk = np.asarray(item)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X: chunk {index} is not an array of samples ({exc}).") from exc
    if chunk.ndim != 2 or not np.issubdtype(chunk.dtype, np.number):
        raise ValueError(
            f"X: chunk {index} must be a 2-D numeric array (n_rows, n_features), got "
            f"shape {chunk.shape} and dtype {chunk.dtype}; yield arrays of samples."
        )
    return chunk


class IterableSource:
    """Mini-batches cut from an iterable of chunks (arrays, tensors, DataLoader batches).

    Rows are used in the order the iterable yields them: shuffle in the source
    (``DataLoader(shuffle=True)``). A one-shot iterator (a generator) can feed
    one epoch only. The first ``SAMPLE_ROWS`` rows are kept as the data sample.
    """

    streamed = True

    def __init__(self, iterable):
        self.iterable = iterable
        self.one_shot = iter(iterable) is iterable
        self._prefix = []  # chunks read to build the sample, replayed by the first epoch
        self._replay = False
        self._iterator = None
        self.n_features = None
        self.dtype = None
        self._sample = self._read_sample()

    def _chunks(self):
        """Validated chunks of one pass, in order."""
        if self._replay:
            self._replay = False
            yield from self._prefix
            rest, offset = self._iterator, len(self._prefix)
            self._prefix = []
        else:
            rest, offset = iter(self.iterable), 0
        for index, item in enumerate(rest, start=offset):
            yield self._check(_as_chunk(item, index), index)

    def _check(self, chunk, index):
        if self.n_features is None:
            self.n_features = chunk.shape[1]
            self.dtype = chunk.dtype if chunk.dtype in FLOATS else np.dtype(np.float64)
        if chunk.shape[1] != self.n_features:
            raise ValueError(
                f"X: chunk {index} has {chunk.shape[1]} features, the first had "
                f"{self.n_features}; every chunk needs the same columns."
            )
        if not np.isfinite(chunk).all():  # before the cast (strings, objects fail there)
            check_rows(np.asarray(chunk, dtype=np.float64), f"chunk {index}")
        return check_rows(np.ascontiguousarray(chunk, dtype=self.dtype), f"chunk {index}")

    def _read_sample(self):
        self._iterator = iter(self.iterable)
        rows = 0
        for index, item in enumerate(self._iterator):
            chunk = self._check(_as_chunk(item, index), index)
            self._prefix.append(chunk)
            rows += chunk.shape[0]
            if rows >= SAMPLE_ROWS:
                break
        if not self._prefix or rows == 0:
            raise ValueError("X: the iterable yielded no samples; pass a non-empty source.")
        self._replay = True
        return np.concatenate(self._prefix)[:SAMPLE_ROWS]

    @functools.cached_property
    def _known_rows(self):
        data = self.iterable
        if isinstance(data, DaskBlocks):
            return data.n_rows
        if isinstance(data, (list, tuple)):
            return sum(len(_samples_of(item)) for item in data)
        sampler = getattr(data, "sampler", None)
        if getattr(data, "batch_size", None) is not None and hasattr(sampler, "__len__"):
            return len(sampler)
        return None

    def n_rows(self):
        """Rows per pass when the source knows it (sequences, map-style DataLoader), else None."""
        return self._known_rows

    def sample(self):
        return self._sample

    def order(self, rng):
        return None

    def batches(self, order, batch_size, *, skip=0, rank=0, world=1):
        """Batches of ``batch_size`` rows cut from the chunks, ``skip`` left out."""
        if not self._replay and self.one_shot:
            raise ValueError(
                "X is a one-shot iterator and was already consumed; pass a re-iterable "
                "source (a list of arrays, a DataLoader) to train for several epochs."
            )
        pending, held, emitted = [], 0, 0
        for chunk in self._chunks():
            pending.append(chunk)
            held += chunk.shape[0]
            while held >= batch_size:
                joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                xb, rest = joined[:batch_size], joined[batch_size:]
                pending, held = ([rest] if rest.shape[0] else []), rest.shape[0]
                if emitted >= skip:
                    yield xb
                emitted += 1
        if held and emitted >= skip:
            yield np.concatenate(pending)


class DaskBlocks:
    """The row blocks of a dask array, computed one at a time (re-iterable)."""

    def __init__(self, X):
        self.X = X.rechunk({1: -1})
        self.n_rows = int(X.shape[0])

    def __len__(self):
        return self.X.numblocks[0]

    def __iter__(self):
        for i in range(self.X.numblocks[0]):
            yield np.asarray(self.X.blocks[i].compute())


def validated_stream(estimator, X, *, reset):
    """Validate a streamed ``X`` cheaply: a memmap is checked in chunks, an iterable per chunk."""
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
        if X.dtype not in FLOATS:
            raise ValueError(
                f"X: a memory-mapped array is streamed as it is stored and must be float32 "
                f"or float64, got {X.dtype}; convert the file once (np.save of X.astype("
                "np.float32)) or load it into memory."
            )
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X has shape {X.shape}; at least one sample and one feature "
                             "are required.")
        source = ArraySource(X, streamed=True)
        check_finite_rows(X, source._reader)
    else:
        source = IterableSource(X)
    expected = None if reset else estimator.n_features_in_
    if expected is not None and source.n_features != expected:
        raise ValueError(
            f"X has {source.n_features} features, but {type(estimator).__name__} is "
            f"expecting {expected} features as input."
        )
    return source
