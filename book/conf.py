"""Sphinx configuration of the course website (`make book`; staged and run by scripts/build_book.py).

The MyST tool chain that works fully offline: MyST-NB renders the executed notebooks (never executes
them), sphinx-book-theme lays out the pages, MathJax is served from the site's own _static/mathjax
(copied from the npm package by scripts/setup_book_env.sh), search is Sphinx's own client-side index.
Nothing a page loads comes from another host. Why not `myst build --html` (jupyter-book 2 / mystmd):
docs/book.md.

Settings from the environment (scripts/build_book.py sets them):
  BOOK_CONF_REPO     repository URL, https://github.com/OWNER/NAME (a placeholder by default;
                        `make book BOOK_REPO=...`): source links and the Binder launch links
  BOOK_CONF_BRANCH   branch for those links (main)
  BOOK_CONF_EXTRA    the staged folder copied as is into the site (downloads/)
  BOOK_CONF_MATHJAX  folder mathjax/ holding MathJax's tex-chtml.js (.venv-book/share/bandgap-book/mathjax)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

project = "Predicting band gaps from data"
author = "the band-gap course authors"
copyright = "the band-gap course authors; lessons MIT, data as stated in data/README.md"

REPO_URL = os.environ.get("BOOK_CONF_REPO", "https://github.com/OWNER/bandgap-course")
BRANCH = os.environ.get("BOOK_CONF_BRANCH", "main")
MATHJAX_DIR = Path(os.environ.get("BOOK_CONF_MATHJAX", Path(sys.prefix) / "share" / "bandgap-book" / "mathjax"))

extensions = ["myst_nb", "glossary_links"]

# --- MyST / notebooks: render the stored outputs, never run a kernel
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}  # the widget manager would come from a CDN; saved widget views are not shown
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["_extra", "**/.ipynb_checkpoints"]

# --- math without a CDN: MathJax 3 from _static/mathjax (Sphinx copies the *contents* of each
# static folder, so the folder above mathjax/ is listed; mathjax_path is relative to _static)
html_static_path = [str(HERE / "_static"), str(MATHJAX_DIR.parent)]
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

# --- site
html_theme = "sphinx_book_theme"
html_title = "Band gaps from data: the course"
html_css_files = ["book.css"]
html_js_files = ["book.js"]  # wide figures: click to enlarge
# downloads/: executed notebooks and student versions, staged beside the pages (a relative path here
# would be taken relative to this folder, not to the staged source)
html_extra_path = [os.environ.get("BOOK_CONF_EXTRA", "_extra")]
html_last_updated_fmt = "%Y-%m-%d"
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "repository_url": REPO_URL,
    "repository_branch": BRANCH,
    "use_repository_button": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    # pydata-sphinx-theme: no analytics, no external icon fonts
    "icon_links": [],
    # one search field (the sidebar's): no second one in a header bar above the page
    "navbar_persistent": [],
}
