"""Warning categories and exceptions raised by skmpsae.

Every warning skmpsae raises is a :class:`SkmpsaeWarning`, so one filter
silences or escalates all of them. A saved model or a checkpoint that cannot
be trusted raises :class:`ModelFileError`; training that produced NaN or
infinite values raises :class:`TrainingDivergedError`; a call whose arrays
cannot fit in memory raises :class:`InsufficientMemoryError` before
allocating them.
"""

__all__ = [
    "CheckpointFallbackWarning",
    "DeviceFallbackWarning",
    "InsufficientMemoryError",
    "ModelFileError",
    "SkmpsaeWarning",
    "TrainingDivergedError",
    "TrainingInterruptedWarning",
]


class ModelFileError(ValueError):
    """A saved model or checkpoint that is missing, damaged or not skmpsae's.

    The message names the folder, the file and the field at fault. Being a
    ``ValueError``, it is caught by code written for earlier versions.

    Examples
    --------
    >>> import tempfile
    >>> import skmpsae
    >>> from skmpsae.exceptions import ModelFileError
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         skmpsae.load(tmp)  # an empty folder is no model
    ...     except ModelFileError as exc:
    ...         print("config.json" in str(exc), isinstance(exc, ValueError))
    True True
    """


class InsufficientMemoryError(MemoryError, ValueError):
    """The arrays a call would allocate cannot fit in this machine's memory.

    Raised up front, before any allocation or work, by ``mp_encode``,
    ``transform``, ``score`` and ``fit`` when a user-given size
    (``n_steps``, ``n_components``, ``expansion_factor``, ``batch_size``,
    the number of samples) makes the estimated arrays larger than the RAM.
    The message names the parameter, its value and the bytes needed. It is
    both a ``MemoryError`` and a ``ValueError`` (a bad parameter).

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae import mp_encode
    >>> from skmpsae.exceptions import InsufficientMemoryError
    >>> try:
    ...     mp_encode(np.ones((10, 3)), np.eye(3), n_steps=10**12)
    ... except InsufficientMemoryError as exc:
    ...     print("n_steps=1000000000000" in str(exc), isinstance(exc, ValueError))
    True True
    """


class TrainingDivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient and was stopped.

    Raised before the optimizer applies the step, so the parameters of the
    last finite step are kept: in the newest checkpoint when
    ``checkpoint_dir`` is set, and as the ``arrays`` attribute of the
    exception (a dict of NumPy arrays by name). A lower ``learning_rate`` or
    input of smaller magnitude usually avoids it.

    Parameters
    ----------
    message : str
        What diverged, at which step, and the fix.
    arrays : dict of str to ndarray, default=None
        The parameters of the last finite step, by name.

    Examples
    --------
    >>> from skmpsae.exceptions import TrainingDivergedError
    >>> error = TrainingDivergedError("loss is nan at step 3", arrays={})
    >>> isinstance(error, ArithmeticError), error.arrays
    (True, {})
    """

    def __init__(self, message, arrays=None):
        super().__init__(message)
        self.arrays = arrays


class SkmpsaeWarning(UserWarning):
    """Base class of every warning skmpsae raises.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import SkmpsaeWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", SkmpsaeWarning)  # make them errors, as in tests
    ...     try:
    ...         warnings.warn("stand-in", SkmpsaeWarning)
    ...     except SkmpsaeWarning as exc:
    ...         print("raised:", exc)
    raised: stand-in
    """


class DeviceFallbackWarning(SkmpsaeWarning):
    """A requested device is not available and work moves to another one.

    Raised, for example, when a model saved on a CUDA device is loaded where
    CUDA is not available: it loads on the CPU instead.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import DeviceFallbackWarning, SkmpsaeWarning
    >>> issubclass(DeviceFallbackWarning, SkmpsaeWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeviceFallbackWarning)  # expected on a CPU host
    ...     warnings.warn("cuda is not available; using cpu", DeviceFallbackWarning)
    """


class TrainingInterruptedWarning(SkmpsaeWarning):
    """Training stopped early (Ctrl-C); the estimator holds the last completed step.

    ``fit`` returns normally with this warning, so a notebook or a script
    keeps the partly trained model; with ``checkpoint_dir`` set, calling
    ``fit`` again resumes.

    Examples
    --------
    >>> import warnings
    >>> from skmpsae.exceptions import TrainingInterruptedWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", TrainingInterruptedWarning)
    ...     warnings.warn("training was interrupted", TrainingInterruptedWarning)
    >>> [w.category.__name__ for w in caught]
    ['TrainingInterruptedWarning']
    """


class CheckpointFallbackWarning(SkmpsaeWarning):
    """The newest checkpoint is damaged; training resumes from the previous one.

    Examples
    --------
    >>> from skmpsae.exceptions import CheckpointFallbackWarning, SkmpsaeWarning
    >>> issubclass(CheckpointFallbackWarning, SkmpsaeWarning)
    True
    """
