"""Up-front memory estimates: refuse a call whose arrays cannot fit before allocating them.

Every allocation that scales with a number the user gives goes through here
before it is made: the pursuit's output and selections (``n_steps``, the
number of samples, the dictionary's size) in ``mp_encode`` and ``transform``,
and the training arrays of ``fit`` (``n_components``, ``expansion_factor``,
``batch_size``). The estimates are floors of what the call holds at once, so
a refusal is certain to be right; below them the allocation is left to the OS.
"""

import os

from .exceptions import InsufficientMemoryError

__all__ = ["check_fits_in_memory", "check_pursuit_memory", "check_training_memory",
           "physical_memory", "training_bytes"]

_INDEX_BYTES = 8


def physical_memory():
    """Bytes of RAM on this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n_bytes):
    return f"{n_bytes:,} bytes ({n_bytes / 2**30:.3g} GiB)"


def check_fits_in_memory(n_bytes, what, fix):
    """Raise ``InsufficientMemoryError`` when ``n_bytes`` exceeds the machine's RAM.

    ``what`` names the parameters and sizes behind the estimate, ``fix``
    says what to change.
    """
    n_bytes = int(n_bytes)
    total = physical_memory()
    if total is not None and n_bytes > total:
        raise InsufficientMemoryError(
            f"{what} needs at least {_size(n_bytes)}, more than the "
            f"{total / 2**30:.3g} GiB of memory of this machine; {fix}.")


def check_pursuit_memory(n_samples, n_components, n_steps, itemsize, *, sparse=False,
                         selects=True):
    """Refuse an encoding of ``n_samples`` rows whose codes and selections cannot fit.

    Dense codes are ``n_samples * n_components`` values; a pursuit
    (``selects``) records an index and a coefficient per step and sample
    (``n_samples * n_steps``); sparse codes keep at most ``min(n_steps,
    n_components)`` nonzeros (a value and a column index) per row.
    """
    n_samples, n_components, n_steps = int(n_samples), int(n_components), int(n_steps)
    per_step = _INDEX_BYTES + itemsize
    selections = n_samples * n_steps * per_step if selects else 0
    if sparse:
        codes = n_samples * min(n_steps, n_components) * per_step
    else:
        codes = n_samples * n_components * itemsize
    check_fits_in_memory(
        codes + selections,
        f"encoding {n_samples} samples with n_steps={n_steps} over {n_components} atoms "
        f"({'sparse' if sparse else 'dense'} codes"
        f"{', an index and a coefficient per step' if selects else ''})",
        "choose a smaller n_steps, or encode fewer samples at a time (a memory-mapped "
        "array or an iterable of chunks, with sparse_output=True)")


def training_bytes(n_components, n_features, n_matrices, batch_rows, itemsize):
    """Bytes that training holds at once, at least.

    Each (n_components, n_features) parameter has a gradient and two Adam
    moments and is first drawn in float64; a batch holds its pre-activations,
    codes and their gradient, (batch_rows, n_components) each.
    """
    matrices = n_components * n_features * n_matrices * (4 * itemsize + 8)
    return matrices + 3 * batch_rows * n_components * itemsize


def check_training_memory(estimator, n_components, source, n_rows=None):
    """Refuse a fit of ``n_components`` latents whose training arrays cannot fit.

    ``source`` is the training source (its dtype and features); a batch holds
    ``min(batch_size, n_rows)`` rows, ``batch_size`` when ``n_rows`` is None
    (a stream).
    """
    import numpy as np

    names = estimator._array_names
    n_matrices = sum(estimator._array_shapes[name] == ("c", "f") for name in names)
    batch_rows = estimator.batch_size if n_rows is None else min(estimator.batch_size, n_rows)
    itemsize = np.dtype(source.dtype).itemsize
    n_features = source.n_features
    check_fits_in_memory(
        training_bytes(n_components, n_features, n_matrices, batch_rows, itemsize)
        + batch_rows * n_features * itemsize,
        f"training n_components={n_components} latents of {n_features} features in "
        f"batches of batch_size={estimator.batch_size} ({batch_rows} rows, "
        f"{np.dtype(source.dtype)})",
        "choose a smaller n_components, expansion_factor or batch_size")
