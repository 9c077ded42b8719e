"""Transform of every SAE: dense or CSR codes, in memory or streamed chunk by chunk.

``transform`` hands its input here. In-memory arrays are validated whole;
memory-mapped arrays and iterables of chunks are read, validated and encoded
one chunk at a time (a memory-mapped file is read with ``os.preadv``, not
through the mapping, so its pages do not stay resident). With
``sparse_output=True`` codes go straight into a ``CSRBuilder``, one chunk at a
time, so that peak memory is that of the k nonzeros per row, never the dense
(n_samples, n_components) matrix.
"""

import numpy as np
from sklearn.utils import check_array

from ._sparse import CSRBuilder, dense_chunk_rows
from ._validation import FLOATS, check_rows, naming

__all__ = ["block_meta", "iter_code_chunks", "transform_codes", "validated_codes"]

#: Rows per pursuit call when building sparse codes from selections: the
#: selections of a chunk are (rows, n_steps), the pursuit's own workspace is
#: bounded by its memory budget.
_SELECTION_ROWS = 16384
#: Bytes of input read per chunk when streaming a memory-mapped array.
_STREAM_BYTES = 32 << 20


def _chunk_rows(estimator, itemsize):
    if estimator._selects:
        return _SELECTION_ROWS
    return dense_chunk_rows(estimator.n_components_, itemsize)


def _add_codes(estimator, X, n_steps, builder, **kwargs):
    """Encode validated ``X`` chunk by chunk into ``builder``."""
    rows = _chunk_rows(estimator, X.dtype.itemsize)
    for start in range(0, X.shape[0], rows):
        block = X[start:start + rows]
        if estimator._selects:
            builder.add_selections(*estimator._encode(block, n_steps, selections=True,
                                                      **kwargs))
        else:
            builder.add_dense(estimator._encode(block, n_steps, **kwargs))


def _check_memory(estimator, X, n_steps, sparse):
    """Refuse, before encoding, codes and selections of ``X`` that cannot fit in memory."""
    from ._memory import check_pursuit_memory

    check_pursuit_memory(X.shape[0], estimator.n_components_,
                         estimator.n_components_ if n_steps is None else n_steps,
                         X.dtype.itemsize, sparse=sparse, selects=estimator._selects)


def validated_codes(estimator, X, n_steps, **kwargs):
    """Codes of validated ``X``: dense, or CSR when ``estimator.sparse_output``."""
    n_steps = estimator._check_n_steps(n_steps)
    _check_memory(estimator, X, n_steps, estimator.sparse_output)
    if not estimator.sparse_output:
        return estimator._encode(X, n_steps, **kwargs)
    builder = CSRBuilder(estimator.n_components_, X.dtype)
    _add_codes(estimator, X, n_steps, builder, **kwargs)
    return builder.build()


def _check_chunk(estimator, chunk, index, first_row):
    with naming("X"):
        chunk = check_array(chunk, dtype=FLOATS, input_name="X", order="C",
                            ensure_all_finite=False)
    if chunk.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X: chunk {index} has {chunk.shape[1]} features, but {type(estimator).__name__} "
            f"is expecting {estimator.n_features_in_} features as input."
        )
    # The finite and magnitude rules of in-memory X, naming the chunk and the row.
    return check_rows(chunk, f"chunk {index}", first_row)


def _raw_chunks(X):
    """``(chunk, n_rows_total_or_None)`` for a memory-mapped array or an iterable."""
    from ._training._data import _as_chunk, _RowReader, _samples_of

    if isinstance(X, np.ndarray):  # memory-mapped
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
        reader = _RowReader(X)
        step = max(1, _STREAM_BYTES // max(1, reader.row_bytes))

        def blocks():
            for start in range(0, X.shape[0], step):
                yield reader.block(start, min(start + step, X.shape[0]))

        return blocks(), X.shape[0]
    n_rows = None
    if isinstance(X, (list, tuple)):
        n_rows = sum(len(_samples_of(item)) for item in X)
    return (_as_chunk(item, i) for i, item in enumerate(X)), n_rows


def iter_code_chunks(estimator, X, n_steps, sparse=None, **kwargs):
    """Yield the codes (dense, or CSR when ``sparse_output``) of each chunk of a stream.

    ``X`` is a memory-mapped array or an iterable of 2-D chunks; each chunk is
    validated (finite, numeric, ``n_features_in_`` columns) as it is read.
    ``sparse`` overrides ``estimator.sparse_output`` when not None.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    n_steps = estimator._check_n_steps(n_steps)
    chunks, n_rows = _raw_chunks(X)
    bar = None
    if estimator.verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_rows, unit="rows", desc=f"{type(estimator).__name__}.transform")
    try:
        first_row = 0
        for index, raw in enumerate(chunks):
            chunk = _check_chunk(estimator, raw, index, first_row)
            first_row += chunk.shape[0]
            as_sparse = estimator.sparse_output if sparse is None else sparse
            _check_memory(estimator, chunk, n_steps, as_sparse)
            if as_sparse:
                builder = CSRBuilder(estimator.n_components_, chunk.dtype)
                _add_codes(estimator, chunk, n_steps, builder, **kwargs)
                yield builder.build()
            else:
                yield estimator._encode(chunk, n_steps, **kwargs)
            if bar is not None:
                bar.update(chunk.shape[0])
    finally:
        if bar is not None:
            bar.close()


def _stream_codes(estimator, X, n_steps, **kwargs):
    parts = iter_code_chunks(estimator, X, n_steps, **kwargs)
    if estimator.sparse_output:
        blocks = list(parts)
        if not blocks:
            raise ValueError("X: the stream yielded no samples; pass a non-empty source.")
        return _stack_csr(blocks, estimator.n_components_)
    blocks = list(parts)
    if not blocks:
        raise ValueError("X: the stream yielded no samples; pass a non-empty source.")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def _stack_csr(parts, n_components):
    """One CSR matrix from CSR row blocks, without a COO detour."""
    builder = CSRBuilder(n_components, parts[0].dtype)
    for part in parts:
        builder.add(np.diff(part.indptr), part.indices, part.data)
    return builder.build()


def transform_codes(estimator, X, n_steps, **kwargs):
    """Codes of ``X`` for ``estimator.transform``: validated whole or streamed."""
    from ._training._data import is_streamed

    if is_streamed(X):
        return _stream_codes(estimator, X, n_steps, **kwargs)
    X = estimator._validate_input(X)
    return validated_codes(estimator, X, n_steps, **kwargs)


def block_meta(estimator, method, dtype):
    """``meta`` of the dask blocks that ``method`` returns: CSR for sparse codes."""
    if getattr(method, "__name__", "") == "transform" and estimator.sparse_output:
        import scipy.sparse as sp

        return sp.csr_matrix((0, 0), dtype=dtype)
    return np.empty((0, 0), dtype=dtype)
