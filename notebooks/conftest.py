"""nbval glue: inject the expected outputs of cells tagged ``nbval-check-output``; check that figures show.

Notebooks are committed with outputs stripped; the expected printed text of
deterministic cells lives in ``notebooks/expected/*.json`` (see
:mod:`coursetools.expected_outputs`). nbval reads each notebook with ``nbformat.read``; we
hand it a reader that adds the expected outputs, so nbval compares them.

Every executed code cell is also checked with
:func:`coursetools.expected_outputs.figure_output_problem`: a cell that makes a figure must
have an ``image/png`` (or ``image/svg+xml``) output, and a ``<Figure size ...>``
text-only output fails the cell. The check reads the outputs nbval received
from the kernel, so it costs no second execution and covers every notebook
nbval collects (``notebooks/*.ipynb``, future ones included).
"""

from __future__ import annotations

import nbformat
import pytest

from coursetools import expected_outputs as nbcheck

try:
    import nbval.plugin as _nbval_plugin
except ImportError:  # nbval not installed: nothing to patch
    _nbval_plugin = None


class _ReaderWithExpected:
    """Stand-in for the ``nbformat`` module inside nbval: ``read`` injects expected outputs."""

    def __getattr__(self, name: str):
        return getattr(nbformat, name)

    @staticmethod
    def read(path, as_version=4, **kwargs):
        return nbcheck.read_with_expected(path, as_version=as_version)


if _nbval_plugin is not None:
    _nbval_plugin.nbformat = _ReaderWithExpected()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After nbval ran a cell, fail it when its figure did not come out as an image."""
    result = yield
    if _nbval_plugin is not None and isinstance(item, _nbval_plugin.IPyNbCell):
        outputs = getattr(item, "test_outputs", None)
        if outputs is not None:
            problem = nbcheck.figure_output_problem(item.cell.source, outputs)
            if problem:
                pytest.fail(f"{item.name}: {problem}\n--- cell source ---\n{item.cell.source}", pytrace=False)
    return result
