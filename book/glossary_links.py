"""Sphinx extension of the course website: link glossary terms where they first appear on a page.

The glossary page (docname ``glossary``, from docs/glossary.md) has one ``###`` section per entry.
Each entry's heading gives its terms (:func:`terms_of`): ``band gap``; ``DFT / PBE`` -> DFT, PBE;
``direct and indirect gap`` -> direct gap, indirect gap; ``quick / full mode`` -> quick mode, full mode.
On every other page the first occurrence of each term in running text (not in headings, code,
notebook outputs, math or existing links) becomes a link to the entry, with the entry's first
sentence as its tooltip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from docutils import nodes

GLOSSARY_DOC = "glossary"
#: ancestors whose text is never linked
_SKIP = (
    nodes.title,
    nodes.subtitle,
    nodes.reference,
    nodes.literal,
    nodes.literal_block,
    nodes.raw,
    nodes.math,
    nodes.math_block,
    nodes.FixedTextElement,
    nodes.target,
    nodes.caption,
)


@dataclass(frozen=True)
class Entry:
    """One glossary entry: the section id on the glossary page, its terms and first sentence."""

    anchor: str
    terms: tuple[str, ...]
    summary: str


def terms_of(heading: str) -> tuple[str, ...]:
    """The terms a glossary heading defines (see the module docstring); terms shorter than 2 characters are dropped."""
    heading = heading.strip()
    for sep in (" / ", " and "):
        if sep in heading:
            parts = [p.strip() for p in heading.split(sep)]
            last = parts[-1].split()
            if len(last) > 1 and all(len(p.split()) == 1 for p in parts[:-1]):
                tail = " ".join(last[1:])
                parts = [f"{p} {tail}" for p in parts[:-1]] + [parts[-1]]
            return tuple(p for p in parts if len(p) >= 2)
    return (heading,) if len(heading) >= 2 else ()


def term_pattern(term: str) -> re.Pattern:
    """Regex for ``term`` in running text: whole words; a lower-case term also matches capitalised and
    with a plural s/es; a term with capitals (MAE, eV, NOMAD) matches exactly."""
    body = r"\s+".join(re.escape(w) for w in term.split())
    if term == term.lower():
        return re.compile(rf"(?<![\w-])(?i:{body[0]}){body[1:]}(?:e?s)?(?![\w-])")
    return re.compile(rf"(?<![\w-]){body}(?![\w-])")


def _collect(app, doctree) -> None:
    """doctree-read: remember the entries of the glossary page."""
    env = app.env
    if env.docname != GLOSSARY_DOC:
        return
    entries = []
    for section in doctree.findall(nodes.section):
        title = section.next_node(nodes.title)
        if title is None or not section["ids"]:
            continue
        depth = len([a for a in _ancestors(section) if isinstance(a, nodes.section)])
        if depth != 2:  # '# Glossary' > '## group' > '### entry'
            continue
        para = section.next_node(nodes.paragraph)
        text = para.astext() if para is not None else ""
        summary = re.split(r"(?<=[.:])\s", text, maxsplit=1)[0]
        entries.append(Entry(section["ids"][0], terms_of(title.astext()), summary))
    env.bandgap_glossary = entries


def _ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def _skipped(node) -> bool:
    for a in _ancestors(node):
        if isinstance(a, _SKIP):
            return True
        classes = a.get("classes", []) if isinstance(a, nodes.Element) else []
        if any(c.startswith(("cell_output", "cell_input", "output")) for c in classes):
            return True
    return False


def link_terms(app, doctree, docname: str) -> int:
    """doctree-resolved: link the first occurrence of each glossary term on the page; returns the count."""
    entries = getattr(app.env, "bandgap_glossary", [])
    if docname == GLOSSARY_DOC or not entries:
        return 0
    todo = [(e, term_pattern(t)) for e in entries for t in e.terms]
    done: set[str] = set()
    linked = 0
    for text in list(doctree.findall(nodes.Text)):
        if len(done) == len(entries):
            break
        if not _skipped(text):
            linked += _link_first(app, text, docname, todo, done)
    return linked


def _link_first(app, text: nodes.Text, docname: str, todo: list, done: set[str]) -> int:
    """Link the earliest not-yet-linked term in ``text``, then continue in the rest of it; returns the count."""
    value = str(text)
    best = None
    for entry, pattern in todo:
        if entry.anchor in done:
            continue
        m = pattern.search(value)
        if m and (best is None or m.start() < best[1].start()):
            best = (entry, m)
    if best is None:
        return 0
    entry, m = best
    uri = app.builder.get_relative_uri(docname, GLOSSARY_DOC) + "#" + entry.anchor
    ref = nodes.reference("", m.group(0), refuri=uri, reftitle=entry.summary, classes=["glossary-term"])
    parent = text.parent
    index = parent.index(text)
    rest = nodes.Text(value[m.end() :])
    parent.replace(text, nodes.Text(value[: m.start()]))
    parent.insert(index + 1, ref)
    parent.insert(index + 2, rest)
    done.add(entry.anchor)
    return 1 + _link_first(app, rest, docname, todo, done)


def _purge(app, env, docname) -> None:
    if docname == GLOSSARY_DOC:
        env.bandgap_glossary = []


def setup(app):
    app.connect("doctree-read", _collect)
    app.connect("doctree-resolved", link_terms)
    app.connect("env-purge-doc", _purge)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
