"""nbval glue: inject the expected outputs of ``# NBVAL_CHECK_OUTPUT`` cells.

Notebooks are committed with outputs stripped; the expected printed text of
deterministic cells lives in ``notebooks/expected/*.json`` (see
:mod:`helpers.nbcheck`). nbval reads each notebook with ``nbformat.read``; we
hand it a reader that adds the expected outputs, so nbval compares them.
"""

from __future__ import annotations

import nbformat

from helpers import nbcheck

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
