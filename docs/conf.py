"""Sphinx configuration of the skmpsae documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``;
add ``-D plot_gallery=0`` to skip running the examples. ``tests/test_docs.py``
runs the full build (examples included) with warnings as errors.
"""

import inspect
import os
import sys
from pathlib import Path

import skmpsae

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the checkout, when skmpsae is not installed

# Examples and doctests plot off screen; the examples use the CPU.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "skmpsae"
author = "the skmpsae developers"
copyright = "2025, the skmpsae developers"  # noqa: A001 - Sphinx's name
release = skmpsae.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/backreferences/*", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.md5", "**.codeobj.json"]
source_suffix = {".rst": "restructuredtext"}  # Markdown only through explicit includes
root_doc = "index"
default_role = "literal"  # `name` renders as code, as ``name`` does
pygments_style = "sphinx"

# -- HTML --------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"skmpsae {release}"
html_theme_options = {
    "description": "Sparse autoencoders as scikit-learn estimators, built around MP-SAE",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_static_path = []
html_show_sourcelink = False

# -- autodoc, autosummary, numpydoc ------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # types are in the numpydoc sections
autodoc_default_options = {"member-order": "bysource"}

numpydoc_show_class_members = False  # the templates list the members
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Every check numpydoc has, minus the conventions this project does not follow:
#   GL01  summary on the line after the opening quotes (ours starts on the same line; ruff D212)
#   ES01  extended summary (short functions say all in one line)
#   SA01  a See Also section on every object
#   RT02  a bare type in Returns (we name return values, as scikit-learn does)
# So EX01 (an Examples section), PR01/PR02 (every parameter documented), RT01/RT03 (Returns
# with a description), SS0x (summary) and GL08 (a docstring) fail the build.
# Nothing is exempt: the methods scikit-learn's mixins give every estimator (get_params,
# set_output, ...) are not rendered (see autodoc_skip_member), so they are not validated.
numpydoc_validation_checks = {"all", "GL01", "ES01", "SA01", "RT02"}

# -- sphinx-gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skmpsae",),
    "reference_url": {"skmpsae": None},
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "download_all_examples": False,
    "abort_on_example_error": False,
}

# -- MyST (the changelog is CHANGELOG.md, included) ----------------------------------------------
myst_heading_anchors = 3
suppress_warnings = []


def _defined_in_skmpsae(obj):
    """Whether a member comes from skmpsae (not from a scikit-learn or Python base class)."""
    if isinstance(obj, property):
        target = obj.fget
    else:
        target = inspect.unwrap(obj) if callable(obj) else obj
    module = getattr(target, "__module__", None) or ""
    return module.split(".")[0] == "skmpsae"


def autodoc_skip_member(app, what, name, obj, skip, options):
    """Document an estimator's own methods only.

    The mixins' methods (``get_params``, ``set_output``, metadata routing) are
    scikit-learn's and documented there; a fitted attribute implemented as a
    property (``group_sizes_``) is listed in the class's Attributes section.
    """
    if skip or what == "module":
        return skip
    if isinstance(obj, property) and name.endswith("_"):
        return True
    if not _defined_in_skmpsae(obj):
        return True
    return None


def setup(app):
    """Connect the member filter."""
    app.connect("autodoc-skip-member", autodoc_skip_member)
