"""Tests for helpers.lesson."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.lesson import StopLesson, require_file


def test_stop_lesson_renders_message_only() -> None:
    exc = StopLesson("run notebook 01 first")
    assert isinstance(exc, RuntimeError)
    assert exc._render_traceback_() == ["", "LESSON STOPPED: run notebook 01 first", ""]


def test_require_file(tmp_path: Path) -> None:
    (tmp_path / "here.csv").write_text("x")
    require_file(tmp_path / "here.csv", "input", "fix it")
    with pytest.raises(StopLesson, match=r"cleaned data not found at .*missing.csv\. Run notebook 02 first\."):
        require_file(tmp_path / "missing.csv", "cleaned data", "Run notebook 02 first.")
