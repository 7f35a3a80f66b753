"""Sphinx configuration for the sb3-expo documentation (`make docs`; built with warnings as errors by `make test`)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import sb3_expo

project = "sb3-expo"
author = "sb3-expo developers"
copyright = "2026, sb3-expo developers"
version = release = sb3_expo.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3  # README-style links to sections: page.md#section-title

# autodoc: parameters as the code documents them (SB3's `:param:` style), in source order, without the
# SB3 base classes' inherited members (SB3's own documentation holds those).
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = False
napoleon_numpy_docstring = False
intersphinx_mapping = {}  # no network at build time: references to other projects' docs stay plain text

html_theme = "sphinx_rtd_theme"  # the theme stable-baselines3 and sb3-contrib use
html_title = f"sb3-expo {release}"
html_static_path = ["_static"]


def _report_links(app, relative_path, parent_docname, content):
    """The evidence README links to the report tables beside it (for browsing the repository); in the site, where
    those files are not pages, the links become their paths."""
    import re

    folder, root = os.path.join(app.srcdir, relative_path.parent), os.path.dirname(app.srcdir)
    content[0] = re.sub(
        r"\[([^\]]+)\]\(((?!\.\./\.\./)[^)#]+\.md)\)",
        lambda m: f"{m.group(1)}: `{os.path.relpath(os.path.join(folder, m.group(2)), root)}`",
        content[0],
    )


def setup(app):
    app.connect("include-read", _report_links)
