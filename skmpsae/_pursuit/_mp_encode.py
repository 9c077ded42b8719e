"""``mp_encode``: the validated public entry over the chunked core.

Host arrays are checked here (``_checks``) and planned once by the core;
GPU arrays (CuPy, torch CUDA tensors) are validated and encoded on their
device (``_gpu_arrays``).
"""

from numbers import Integral, Real
from typing import TYPE_CHECKING

from numpy.typing import ArrayLike

from .._compat import Interval, StrOptions, validate_params
from .._memory import check_pursuit_memory
from .._validation import FLOATS, check_magnitude
from ._checks import as_float_array, check_dictionary, check_gram, check_vector
from ._core import encode
from ._gpu_arrays import device_array_kind, encode_device_arrays
from ._plan import DEFAULT_MEMORY_BUDGET, choose_backend

if TYPE_CHECKING:  # annotations only
    import numpy as np
    import scipy.sparse

__all__ = ["DEFAULT_MEMORY_BUDGET", "mp_encode"]


@validate_params(
    {
        "X": ["array-like"],
        "dictionary": ["array-like"],
        "n_steps": [Interval(Integral, 0, None, closed="left")],
        "bias": ["array-like", None],
        "positive": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "residual_threshold": [Interval(Real, 0, None, closed="left"), None],
        "coef_threshold": [Interval(Real, 0, None, closed="left"), None],
        "gram": ["array-like", None],
        "backend": [StrOptions({"auto", "numpy", "numba", "torch", "cupy"})],
        "memory_budget": [Interval(Integral, 1, None, closed="left")],
        "sparse_output": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def mp_encode(X: ArrayLike, dictionary: ArrayLike, *, n_steps: int,
              bias: ArrayLike | None = None, positive: bool = True, tol: float | None = None,
              gram: ArrayLike | None = None, backend: str = "auto",
              memory_budget: int = DEFAULT_MEMORY_BUDGET,
              residual_threshold: float | None = None, coef_threshold: float | None = None,
              sparse_output: bool = False) -> "np.ndarray | scipy.sparse.csr_matrix":
    """Sparse codes of ``X`` by matching pursuit over a unit-norm dictionary.

    Each sample starts from the residual ``r = x - bias``; each step picks the
    atom most correlated with the residual (``argmax c`` with non-negative
    coefficients when ``positive``, ``argmax |c|`` otherwise; ties go to the
    lowest index), adds the correlation to its code and removes that atom's
    contribution from the residual. An atom may be picked again; its
    coefficients accumulate. Correlations are computed once, ``(X - bias) @
    dictionary.T``, and updated with rows of the Gram matrix, unless the Gram
    matrix would not fit ``memory_budget``, in which case each step recomputes
    them with a matrix product.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Samples to encode. float32 and float64 are preserved; other numeric
        types are converted to float64. A CuPy array or a torch CUDA tensor is
        encoded on its GPU by the CuPy backend and the codes stay there, in
        the same array type.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows, each of unit L2 norm (within 1e-3).
    n_steps : int
        Pursuit steps; each sample has at most ``n_steps`` nonzero codes.
    bias : array-like of shape (n_features,), default=None
        Pre-bias subtracted before encoding (the SAE's ``bias_``).
    positive : bool, default=True
        Non-negative codes: pick the largest correlation and stop a sample
        when it is not positive. ``False`` gives classic signed MP.
    tol : float, default=None
        Stop a sample once ``||r||^2 <= tol * ||x - bias||^2`` (relative to
        each sample: every sample gets the same share of its energy).
    gram : array-like of shape (n_components, n_components), default=None
        Precomputed ``dictionary @ dictionary.T``; computed when needed.
    backend : {"auto", "numpy", "numba", "torch", "cupy"}, default="auto"
        ``"numpy"`` is the reference, ``"numba"`` the fused CPU kernel (same
        selections, same arithmetic), ``"torch"`` runs on a GPU when one is
        present, ``"cupy"`` runs a CUDA kernel (one thread block per sample,
        the Gram update and the next argmax fused; same arithmetic as the
        reference) and needs CuPy (``pip install 'skmpsae[gpu]'``) and an
        NVIDIA GPU; it works from the Gram matrix in GPU memory, and hands
        over to torch's per-step products when that matrix would exceed
        ``memory_budget`` (NumPy input). ``"auto"`` picks cupy for GPU arrays or when CuPy sees a
        GPU, else torch when torch sees one, else numba.
    memory_budget : int, default=1 GiB
        Bytes that the Gram matrix and the per-chunk workspace may use (on
        the GPU for the CuPy backend).
    residual_threshold : float, default=None
        The absolute residual stop: stop a sample once ``||r||^2 <=
        residual_threshold``, the same level for every sample, so that
        textured samples take more steps than flat ones (a mean budget, as
        threshold SAEs spend). With ``tol`` too, whichever is reached first.
    coef_threshold : float, default=None
        The global coefficient stop: stop a sample instead of adding a
        coefficient whose magnitude is below ``coef_threshold``. Every stop
        keeps ``n_steps`` as the cap; ``MatchingPursuitSAE.calibrate_budget``
        chooses either threshold for a target mean L0.
    sparse_output : bool, default=False
        Return a ``scipy.sparse.csr_matrix`` built chunk by chunk from the
        pursuit's selections (memory O(n_samples * n_steps), never the dense
        codes). NumPy-like input only.

    Returns
    -------
    codes : ndarray or scipy.sparse.csr_matrix of shape (n_samples, n_components)
        Sparse codes, same dtype as ``X``; ``codes @ dictionary + bias``
        reconstructs ``X``. A CuPy array (torch CUDA tensor) on ``X``'s GPU
        when ``X`` is one.

    Raises
    ------
    skmpsae.exceptions.InsufficientMemoryError
        Before any work, when the codes and the selections (an index and a
        coefficient per step for every sample) cannot fit in this machine's
        memory: ``n_steps=10**9`` is refused at once, not after an hour.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae import mp_encode
    >>> D = np.eye(3)
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=2)
    array([[3., 0., 2.]])
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=3, positive=False)
    array([[ 3., -1.,  2.]])
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=3, positive=False, coef_threshold=1.5)
    array([[3., 0., 2.]])
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=3, positive=False, residual_threshold=1.0)
    array([[3., 0., 2.]])
    >>> mp_encode([[3.0, -1.0, 2.0]], D, n_steps=2, sparse_output=True).toarray()
    array([[3., 0., 2.]])
    """
    if device_array_kind(X) is not None:
        if sparse_output:
            raise ValueError("sparse_output=True needs NumPy input; X is a GPU array. "
                             "Copy it to the host first (X.get() or X.cpu().numpy()).")
        return encode_device_arrays(X, dictionary, n_steps=n_steps, bias=bias,
                                    positive=positive, tol=tol, gram=gram, backend=backend,
                                    memory_budget=memory_budget,
                                    residual_threshold=residual_threshold,
                                    coef_threshold=coef_threshold)
    X = check_magnitude(as_float_array(X, "X", FLOATS))
    D = check_dictionary(dictionary, X.dtype, X.shape[1])
    b = None if bias is None else check_vector(bias, "bias", X.dtype, X.shape[1])
    G = None if gram is None else check_gram(gram, X.dtype, D)
    check_pursuit_memory(X.shape[0], D.shape[0], n_steps, X.dtype.itemsize,
                         sparse=sparse_output)
    if sparse_output:
        from .._sparse import sparse_pursuit

        return sparse_pursuit(X, D, n_steps=n_steps, bias=b, positive=positive, tol=tol,
                              gram=G, backend=choose_backend(backend),
                              memory_budget=memory_budget,
                              residual_threshold=residual_threshold,
                              coef_threshold=coef_threshold)
    return encode(X, D, n_steps=n_steps, bias=b, positive=positive, tol=tol, gram=G,
                  backend=choose_backend(backend), memory_budget=memory_budget,
                  residual_threshold=residual_threshold, coef_threshold=coef_threshold)
