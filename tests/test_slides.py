"""Tests for coursetools.slides: slide metadata from headings, offline reveal.js export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from coursetools import slides
from coursetools.course import course_notebooks

FIXTURE = Path(__file__).parent / "fixtures" / "lesson_demo.ipynb"


def _cell(kind: str, source: str):
    return nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)


@pytest.mark.parametrize(
    "kind, source, code, expected",
    [
        ("markdown", "# 01 · Title", "-", "slide"),
        ("markdown", "\n## 2 · Section\ntext", "-", "slide"),
        ("markdown", "### Exercise 1", "-", "subslide"),
        ("markdown", "#### small heading", "-", "-"),
        ("markdown", "Plain text with a # inside", "-", "-"),
        ("markdown", "#hashtag is not a heading", "-", "-"),
        ("code", "print(1)", "-", "-"),
        ("code", "print(1)", "fragment", "fragment"),
    ],
)
def test_slide_type_for(kind: str, source: str, code: str, expected: str) -> None:
    assert slides.slide_type_for(_cell(kind, source), code=code) == expected


def test_slide_type_for_rejects_unknown_code_type() -> None:
    with pytest.raises(ValueError, match="code must be"):
        slides.slide_type_for(_cell("code", "x"), code="subslide")


def test_tag_notebook_in_place_idempotent_and_keep_existing(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("code", "setup()"), _cell("markdown", "## A"), _cell("code", "a()"), _cell("markdown", "### a.1")]
    nb.cells[2].metadata["slideshow"] = {"slide_type": "skip"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    counts = slides.tag_notebook(path, keep_existing=True)
    assert counts == {"slide": 2, "skip": 1, "subslide": 1}  # the first cell is always a slide
    before = path.read_bytes()
    slides.tag_notebook(path, keep_existing=True)
    assert path.read_bytes() == before  # nothing to change: not rewritten
    assert slides.tag_notebook(path, code="fragment") == {"slide": 2, "fragment": 1, "subslide": 1}
    assert slides.count_slides(path) == {"slides": 2, "subslides": 1}


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_tagging_a_real_notebook_changes_only_slide_metadata(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    slides.tag_notebook(copy)
    old, new = json.loads(path.read_text()), json.loads(copy.read_text())
    for a, b in zip(old["cells"], new["cells"], strict=True):
        b["metadata"].pop("slideshow")
        a["metadata"].pop("slideshow", None)
        assert a == b
    assert old["metadata"] == new["metadata"]
    assert slides.count_slides(copy)["slides"] >= 3


def test_fixture_is_tagged_as_the_tagger_would() -> None:
    nb = nbformat.read(FIXTURE, as_version=4)
    wanted = ["slide"] + [slides.slide_type_for(c) for c in nb.cells[1:]]
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == wanted


def test_export_has_expected_slide_count_and_no_cdn(tmp_path: Path) -> None:
    (html_path,) = slides.export([FIXTURE], tmp_path, with_assets=False)
    html = html_path.read_text(encoding="utf-8")
    expected = slides.count_slides(FIXTURE)
    assert expected == {"slides": 8, "subslides": 3}
    assert slides.html_slide_count(html) == expected
    assert slides.external_urls(html) == []
    for local in (
        "_static/reveal.js/dist/reveal.js",
        "_static/requirejs/require.js",
        "_static/mathjax/MathJax.js",
        "_static/jquery/dist/jquery.min.js",
        "_static/reveal.js/plugin/notes/notes.js",
    ):
        assert local in html, local
    assert f"dist/theme/{slides.THEME}.css" in html
    assert "Exercise 1 (easy)" in html and "mermaid" not in html.lower().split("<body", 1)[0]


def test_external_urls_detects_cdn_assets() -> None:
    html = (
        '<script src="https://unpkg.com/reveal.js@4.0.2/dist/reveal.js"></script>'
        '<link rel="stylesheet" href="//cdn.example/x.css"><a href="https://nomad-lab.eu">NOMAD</a>'
        "<script type=module>import mermaid from 'https://cdn.example/m.mjs';</script>"
    )
    found = slides.external_urls(html)
    assert len(found) == 3 and not any("nomad-lab" in f for f in found)


def test_assets_are_pinned_checked_and_complete(tmp_path: Path) -> None:
    """Fetches the pinned npm tarballs once (cached in build/.npm-cache) and checks what an offline deck loads."""
    sizes = slides.fetch_assets(tmp_path / "_static")
    assert set(sizes) == set(slides.ASSETS)
    for package, (_version, _integrity, paths) in slides.ASSETS.items():
        for p in paths:
            assert (tmp_path / "_static" / package / p).exists(), (package, p)
    assert sum(sizes.values()) < 12e6  # a subset, not all of MathJax (60 MB unpacked)
    theme = (tmp_path / "_static" / "reveal.js" / "dist" / "theme" / f"{slides.THEME}.css").read_text()
    assert "@import url(fonts/" in theme and "googleapis" not in theme and "http" not in theme.split("*/", 1)[-1][:2000]
    simple = (tmp_path / "_static" / "reveal.js" / "dist" / "theme" / "simple.css").read_text()
    assert "fonts.googleapis.com" in simple  # why THEME is not nbconvert's default


def test_a_changed_tarball_is_refused(tmp_path: Path, monkeypatch) -> None:
    """What npm hands over must match the pinned sha512; without npm the message says how to get it."""
    import subprocess

    version, integrity, _paths = slides.ASSETS["jquery"]

    def fake_npm(cmd, **kwargs):
        dest = Path(cmd[cmd.index("--pack-destination") + 1])
        (dest / f"jquery-{version}.tgz").write_bytes(b"not the tarball that was pinned")
        return subprocess.CompletedProcess(cmd, 0, "[]", "")

    monkeypatch.setattr(slides.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(slides.subprocess, "run", fake_npm)
    with pytest.raises(RuntimeError, match=r"jquery-3.5.1.tgz: sha512 .* does not match the pinned"):
        slides._npm_pack("jquery", version, integrity, tmp_path)
    assert not (tmp_path / f"jquery-{version}.tgz").exists()
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="npm is needed once"):
        slides._npm_pack("jquery", version, integrity, tmp_path)
