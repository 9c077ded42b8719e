"""Docstring fragments that several estimators share, written once."""

__all__ = ["DATASET_CACHE", "EMBEDDER_DEVICE", "EMBEDDER_RUNTIME", "OPTIMIZER_OPTIONS",
           "TRAINING_CONTROL", "fill_shared", "with_shared_docs"]

#: The parameters of ``BaseSAE``'s run control (warm start and checkpoints).
TRAINING_CONTROL = """\
    sparse_output : bool, default=False
        ``transform`` and ``fit_transform`` return a ``scipy.sparse`` CSR
        matrix, built chunk by chunk so that memory stays proportional to the
        nonzeros (about k per row), never the dense (n_samples, n_components)
        array. ``set_output(transform="pandas")`` needs dense codes.
    warm_start : bool, default=False
        When fitted already, ``fit`` continues from the current parameters
        and optimizer state (a new schedule over ``max_iter`` epochs) instead
        of starting afresh.
    checkpoint_dir : str or path-like, default=None
        Folder for atomic training checkpoints (safetensors + JSON, optimizer
        state included), written at every epoch's end. ``fit`` resumes from
        the newest one found there, giving the result of an uninterrupted run.
    checkpoint_every : int, default=None
        Also checkpoint every this many optimizer steps.
"""

#: The optimizer options of every SAE (``BaseSAE``'s training loop).
OPTIMIZER_OPTIONS = """\
    weight_decay : float, default=0.0
        Decoupled weight decay: positive values train with AdamW (Loshchilov
        & Hutter 2019) instead of Adam; 0 is plain Adam. The paper's recipe
        uses 1e-5 (:func:`skmpsae.recipes.paper_recipe`).
    max_grad_norm : float, default=None
        Clip the global L2 norm of the gradients of all trained parameters
        to this value before each optimizer step (the loss is the mean
        squared reconstruction error per sample, so the norm scales with the
        data). None: no clipping.
"""

#: The ``memory`` and ``verbose`` parameters of every embedder.
EMBEDDER_RUNTIME = """\
    memory : str, path or joblib.Memory, default=None
        Cache the embeddings of each sequence of items, for instance across
        the folds and parameters of a ``GridSearchCV`` over a pipeline that
        starts with this embedder: only the first time a set of items is met
        runs the model. None: no caching.
    verbose : int, default=1
        0: silent. 1: a progress bar over batches for runs that last more
        than a few seconds. 2: always a progress bar (and transformers' own
        while the model loads).
"""

#: ``device`` to ``local_files_only``, alike for the single-tower embedders (DINOv2, sentences).
EMBEDDER_DEVICE = """\
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``.
    dtype : {"float32", "float16", "bfloat16"}, default="float32"
        Precision the model runs in; the output is float32 in any case.
    normalize : bool, default=True
        Scale each output row to unit Euclidean norm.
    local_files_only : bool, default=False
        Never try to download: load from a folder or the local cache only.
"""

#: The ``cache`` parameter of the dataset loaders that embed with a model.
DATASET_CACHE = """\
    cache : str or path-like or False, default=None
        Folder of the cache; None: ``$SKMPSAE_CACHE_DIR`` or the user cache
        (``~/.cache/skmpsae``); False: no caching.
"""


def fill_shared(doc, **fragments):
    """``doc`` with each marker line ``    {name}`` replaced by its fragment.

    ``training_control``, ``optimizer_options``, ``embedder_runtime``,
    ``embedder_device`` and ``dataset_cache`` are always known; other
    fragments are passed by name.
    """
    if not doc:  # None under python -OO
        return doc
    for name, text in {"training_control": TRAINING_CONTROL,
                        "optimizer_options": OPTIMIZER_OPTIONS,
                        "embedder_runtime": EMBEDDER_RUNTIME,
                        "embedder_device": EMBEDDER_DEVICE, "dataset_cache": DATASET_CACHE,
                        **fragments}.items():
        doc = doc.replace(f"    {{{name}}}\n", text)
    return doc


def with_shared_docs(cls=None, **fragments):
    """Class (or function) decorator filling the shared fragments of its docstring.

    Use bare (``@with_shared_docs``) or with fragments
    (``@with_shared_docs(joint_params=TEXT)``).
    """
    def fill(klass):
        klass.__doc__ = fill_shared(klass.__doc__, **fragments)
        return klass

    return fill if cls is None else fill(cls)
