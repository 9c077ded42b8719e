"""The documentation builds with warnings as errors, examples executed; the user guide's code runs.

The Sphinx build runs numpydoc's validation (every public function, class and
method needs, among others, an Examples section), renders the API reference
from the docstrings and executes every ``examples/plot_*.py`` through
sphinx-gallery. It takes minutes, most of them in the examples.
"""

import doctest
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
USER_GUIDE = sorted((DOCS / "user_guide").glob("*.rst"))
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PUBLIC_MODULES = ["skmpsae", "skmpsae.metrics", "skmpsae.recipes", "skmpsae.scorers",
                  "skmpsae.inspection", "skmpsae.datasets", "skmpsae.embedders",
                  "skmpsae.exceptions", "skmpsae.visualization"]
BUILD_TIMEOUT_S = 1800

pytest.importorskip("sphinx", reason="the docs need the test extra (sphinx, numpydoc, ...)")


def _source_copy(tmp_path):
    """docs/, examples/ and CHANGELOG.md copied, so the build writes nothing into the checkout."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("_build", "generated", "auto_examples",
                                    "sg_execution_times.rst", "__pycache__", "*.png")
    shutil.copytree(DOCS, src / "docs", ignore=ignore)
    # images the pages show (a browser screenshot) are sources, not build outputs
    if (DOCS / "images").is_dir():
        shutil.copytree(DOCS / "images", src / "docs" / "images", dirs_exist_ok=True)
    shutil.copytree(ROOT / "examples", src / "examples", ignore=ignore)
    shutil.copy2(ROOT / "CHANGELOG.md", src / "CHANGELOG.md")
    return src / "docs"


def _public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not name.startswith("__"):
                yield f"{module_name}.{name}"


def test_docs_build_without_warnings(tmp_path):
    docs = _source_copy(tmp_path)
    html = tmp_path / "html"
    log = tmp_path / "sphinx.log"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
             str(docs), str(html)],
            stdout=out, stderr=subprocess.STDOUT, env=env, timeout=BUILD_TIMEOUT_S,
        )
    text = log.read_text()
    assert proc.returncode == 0, f"sphinx-build failed (exit {proc.returncode}):\n{text[-8000:]}"

    pages = ["index", "api", "scaling", "changelog", "auto_examples/index",
             *(f"user_guide/{page.stem}" for page in USER_GUIDE),
             *(f"auto_examples/{example.stem}" for example in EXAMPLES),
             *(f"generated/{name}" for name in _public_names())]
    missing = [page for page in pages if not (html / f"{page}.html").is_file()]
    assert not missing, f"pages not built: {missing}"
    assert EXAMPLES, "no examples/plot_*.py found"
    assert "Unreleased" in (html / "changelog.html").read_text(), "CHANGELOG.md not included"
    private = sorted(p.name for p in (html / "generated").glob("*._*.html"))
    assert not private, f"private paths in the API reference: {private}"
    # Every example ran (sphinx-gallery records each one's run time).
    times = (docs / "sg_execution_times.rst").read_text()
    not_run = [example.name for example in EXAMPLES if example.name not in times]
    assert not not_run, f"examples not executed: {not_run}"


@pytest.mark.parametrize("page", USER_GUIDE, ids=[page.stem for page in USER_GUIDE])
def test_user_guide_code_runs(page):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(page), module_relative=False, optionflags=flags,
                              raise_on_error=False, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"
