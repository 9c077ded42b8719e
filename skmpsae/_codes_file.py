"""Codes written to a sparse ``.npz`` file chunk by chunk (``scipy.sparse.load_npz`` reads it).

The file is SciPy's CSR layout (members ``data``, ``indices``, ``indptr``,
``shape``, ``format``). Each chunk's nonzeros are appended to temporary files
beside the target; only the row pointers (8 bytes a row) stay in memory; the
``.npz`` archive is then assembled by streaming those files into it.
"""

import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator

__all__ = ["transform_to_npz"]

_COPY_BYTES = 16 << 20


def _write_member(archive, name, dtype, n_items, raw_path):
    """A ``.npy`` member of ``n_items`` values of ``dtype`` whose bytes are in ``raw_path``."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (int(n_items),)}
    with archive.open(f"{name}.npy", "w", force_zip64=True) as out:
        np.lib.format.write_array_header_2_0(out, header)
        with open(raw_path, "rb") as src:
            while block := src.read(_COPY_BYTES):
                out.write(block)


def _write_array(archive, name, array):
    with archive.open(f"{name}.npy", "w", force_zip64=True) as out:
        np.lib.format.write_array(out, np.asarray(array), allow_pickle=False)


def transform_to_npz(estimator: BaseEstimator, X: ArrayLike | Iterable, path: str | os.PathLike, *,
                     n_steps: int | None = None, overwrite: bool = False,
                     **transform_params) -> tuple[int, int]:
    """Encode ``X`` chunk by chunk into a sparse ``.npz`` file, never holding all the codes.

    ``X`` may be an in-memory array, a memory-mapped array or an iterable of
    2-D chunks (validated chunk by chunk, with a progress bar when the
    estimator's ``verbose`` is set). Memory stays that of one chunk plus 8
    bytes per row; the codes go to ``path`` in SciPy's CSR format.

    Parameters
    ----------
    estimator : BaseSAE
        A fitted SAE.
    X : array-like, memory-mapped array or iterable of arrays
        Samples, shape (n_samples, ``n_features_in_``).
    path : str or path-like
        The ``.npz`` file to write.
    n_steps : int, default=None
        Sparsity at inference, as in ``transform``.
    overwrite : bool, default=False
        Replace ``path`` when it exists.
    **transform_params
        Other arguments of the estimator's ``transform`` (``tol`` for MP).

    Returns
    -------
    shape : tuple of int
        ``(n_samples, n_components)`` of the codes written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import scipy.sparse as sp
    >>> from sklearn.datasets import load_digits
    >>> from skmpsae import MatchingPursuitSAE, transform_to_npz
    >>> X = load_digits().data / 16
    >>> sae = MatchingPursuitSAE(n_components=64, k=4, max_iter=2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     transform_to_npz(sae, (X[i:i + 500] for i in range(0, len(X), 500)),
    ...                      Path(tmp) / "codes.npz")
    ...     codes = sp.load_npz(Path(tmp) / "codes.npz")
    (1797, 64)
    >>> bool((codes.toarray() == sae.transform(X)).all())
    True
    """
    from sklearn.utils.validation import check_is_fitted

    from ._training._data import is_streamed
    from ._transform import iter_code_chunks

    check_is_fitted(estimator)
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path={str(path)!r} must end in .npz (scipy.sparse.load_npz reads it).")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it.")
    if not is_streamed(X):
        X = [estimator._validate_input(X)]  # validated whole, encoded in chunks below
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        tmp = Path(tmp)
        counts, nnz, dtype = [], 0, None
        with open(tmp / "data", "wb") as data, open(tmp / "indices", "wb") as indices:
            for codes in iter_code_chunks(estimator, X, n_steps, sparse=True,
                                          **transform_params):
                dtype = codes.dtype
                data.write(np.ascontiguousarray(codes.data).tobytes())
                indices.write(codes.indices.astype(np.int64).tobytes())
                counts.append(np.diff(codes.indptr))
                nnz += codes.nnz
        if dtype is None:
            raise ValueError("X: the stream yielded no samples; pass a non-empty source.")
        indptr = np.zeros(sum(c.size for c in counts) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(counts), out=indptr[1:])
        shape = (indptr.size - 1, int(estimator.n_components_))
        archive_tmp = tmp / "codes.npz"
        with zipfile.ZipFile(archive_tmp, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            _write_member(archive, "indices", np.int64, nnz, tmp / "indices")
            _write_array(archive, "indptr", indptr)
            _write_array(archive, "format", np.array(b"csr"))
            _write_array(archive, "shape", np.array(shape, dtype=np.int64))
            _write_member(archive, "data", dtype, nnz, tmp / "data")
        os.replace(archive_tmp, path)
    return shape
