"""Sparse (CSR) codes built chunk by chunk, so that peak memory is O(n_samples * k).

The pursuit returns per-step selections ``idx, coef`` (n_samples, n_steps):
an atom picked twice appears twice and its coefficients add up, and a sample
that stopped early has trailing zero coefficients. ``csr_from_selections``
turns one chunk of selections into CSR parts (duplicates summed in step
order, zeros dropped: the nonzero pattern of the dense codes); ``CSRBuilder``
appends the parts of consecutive chunks and never holds a dense block.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["CSRBuilder", "csr_from_dense", "csr_from_selections", "dense_chunk_rows",
           "is_sparse", "sparse_pursuit"]

#: Bytes of the dense block that a chunk of an estimator's codes may occupy.
_DENSE_CHUNK_BYTES = 32 << 20


def is_sparse(Z):
    """Whether ``Z`` is a SciPy sparse matrix or array."""
    return sp.issparse(Z)


def dense_chunk_rows(n_components, itemsize):
    """Rows of a dense (rows, n_components) block that fit ``_DENSE_CHUNK_BYTES``."""
    return max(1, _DENSE_CHUNK_BYTES // max(1, n_components * itemsize))


def csr_from_selections(idx, coef):
    """CSR parts ``(indptr_counts, indices, data)`` of one chunk of selections.

    ``idx`` (int, rows x steps) and ``coef`` (rows x steps): each row's
    coefficients are summed per atom in the order of the steps, and entries
    whose sum is zero are dropped. ``indptr_counts`` is the number of stored
    entries of each row; indices are sorted within a row.
    """
    rows, steps = idx.shape
    if rows == 0 or steps == 0:
        return np.zeros(rows, np.int64), np.zeros(0, np.int64), np.zeros(0, coef.dtype)
    # A stable sort keeps the repeated picks of an atom in step order, so their
    # sum is accumulated in the order the dense scatter uses.
    order = np.argsort(idx, axis=1, kind="stable")
    s_idx = np.take_along_axis(idx, order, axis=1)
    s_coef = np.take_along_axis(coef, order, axis=1)
    first = np.ones((rows, steps), dtype=bool)
    first[:, 1:] = s_idx[:, 1:] != s_idx[:, :-1]
    flat_first = first.ravel()
    sums = np.add.reduceat(s_coef.ravel(), np.flatnonzero(flat_first))
    cols = s_idx.ravel()[flat_first]
    row_of = np.repeat(np.arange(rows), first.sum(axis=1))
    keep = sums != 0
    counts = np.bincount(row_of[keep], minlength=rows)
    return counts, cols[keep].astype(np.int64, copy=False), sums[keep]


def csr_from_dense(Z):
    """CSR parts ``(indptr_counts, indices, data)`` of a dense block of codes."""
    rows, cols = np.nonzero(Z)
    return np.bincount(rows, minlength=Z.shape[0]), cols.astype(np.int64), Z[rows, cols]


class CSRBuilder:
    """Append the CSR parts of consecutive row chunks; ``build`` gives the matrix.

    Parameters
    ----------
    n_components : int
        Number of columns.
    dtype : dtype
        Dtype of the stored values.
    """

    def __init__(self, n_components, dtype):
        self.n_components = int(n_components)
        self.dtype = np.dtype(dtype)
        self._counts, self._indices, self._data = [], [], []

    def add(self, counts, indices, data):
        """Append the parts of the next chunk of rows."""
        self._counts.append(np.asarray(counts, dtype=np.int64))
        # Column indices are below n_components: int32 halves what the parts hold.
        small = self.n_components <= np.iinfo(np.int32).max
        self._indices.append(np.asarray(indices, dtype=np.int32 if small else np.int64))
        self._data.append(np.asarray(data, dtype=self.dtype))

    def add_selections(self, idx, coef):
        """Append a chunk of per-step selections (see ``csr_from_selections``)."""
        self.add(*csr_from_selections(np.asarray(idx), np.asarray(coef)))

    def add_dense(self, Z):
        """Append a dense block of codes."""
        self.add(*csr_from_dense(np.asarray(Z)))

    def build(self):
        """The ``scipy.sparse.csr_matrix`` of every chunk added, in order."""
        counts = np.concatenate(self._counts) if self._counts else np.zeros(0, np.int64)
        indptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        nnz = int(indptr[-1])
        # int32 indices whenever they fit, as SciPy itself prefers.
        index_dtype = np.int32 if max(nnz, self.n_components) < np.iinfo(np.int32).max \
            else np.int64
        indices = np.empty(nnz, dtype=index_dtype)
        data = np.empty(nnz, dtype=self.dtype)
        pos = 0
        for part_idx, part_data in zip(self._indices, self._data, strict=True):
            indices[pos:pos + part_idx.size] = part_idx
            data[pos:pos + part_data.size] = part_data
            pos += part_idx.size
        self._counts, self._indices, self._data = [], [], []
        matrix = sp.csr_matrix((data, indices, indptr.astype(index_dtype, copy=False)),
                               shape=(counts.size, self.n_components), copy=False)
        matrix.has_sorted_indices = True
        return matrix


def sparse_pursuit(X, D, *, n_steps, chunk_rows=16384, **kwargs):
    """CSR codes of validated ``X`` by matching pursuit, ``chunk_rows`` rows at a time.

    ``kwargs`` are those of ``skmpsae._pursuit._core.pursue``; each chunk's
    selections become CSR parts at once, so the dense codes never exist.
    """
    from ._pursuit._core import pursue

    builder = CSRBuilder(D.shape[0], X.dtype)
    for start in range(0, X.shape[0], chunk_rows):
        builder.add_selections(*pursue(X[start:start + chunk_rows], D, n_steps=n_steps,
                                       **kwargs))
    return builder.build()
