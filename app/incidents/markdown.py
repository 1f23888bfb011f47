"""Markdown both ways: untrusted text made inert inside Markdown, and a person's Markdown
made into safe HTML.

Report text (descriptions, conversation excerpts, model names, response ids, reply bodies)
is hostile: `escape_text` backslash-escapes every character that can open or close a
CommonMark or GFM construct anywhere in a line (emphasis, code, links, images, raw HTML,
autolinks, entities, tables, strikethrough, math; `_` only where it is not inside a word,
as in snake_case, where it cannot), and at the start of a line also the
characters that open a block there (list items `-`/`+`/`1.`/`1)`, setext underlines `=`).
Leading indentation is dropped (no indented code block). Characters that mean nothing on
their own (`.` mid-line, `,`, `(`, `:`, `/` …) are left alone so the exported file still
reads well as plain text. The result renders as exactly the original characters in one
paragraph (`tests/incidents/test_export.py` checks that against markdown-it for random
input). Not covered, on purpose: GFM's bare-URL autolinks (a visible `http://…` becomes a
link showing that same URL) and GitHub's @mentions, which happen after parsing.

The sections of a retrospective are the lead's own Markdown: `render_markdown` turns them
into HTML with markdown-it-py, raw HTML escaped (html=False), links kept only for http,
https and mailto, images shown as links (a document must not load anything), headings
moved under the section's own heading.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

# Escaped wherever they are: each can start or end an inline construct or a table cell.
_ALWAYS = frozenset("\\`*[]<>#|~&!$^{}")
# Escaped at the start of a line only: there they open a block (list, setext heading).
_LINE_START = frozenset("-+=")
_ORDERED_MARKER = re.compile(r"^(\d{1,9})([.)])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def escape_text(text: str | None, *, multiline: bool = False, limit: int | None = None) -> str:
    """`text` as Markdown that renders as exactly these characters (whitespace aside).

    One line by default (newlines and runs of blanks become one space: table cells, list
    items); with `multiline`, lines are kept, each escaped on its own. `limit` cuts the
    text (before escaping, so an escape is never cut in half) and ends it with "…".
    """
    if not text:
        return ""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n") if multiline else [" ".join(text.split())]
    lines = [" ".join(line.split()) for line in lines]
    if limit is not None:
        lines = _cut(lines, limit)
    return "\n".join(_escape_line(line) for line in lines)


def _cut(lines: list[str], limit: int) -> list[str]:
    kept, used = [], 0
    for line in lines:
        if used + len(line) > limit:
            kept.append(line[: max(limit - used, 0)].rstrip() + "…")
            return kept
        kept.append(line)
        used += len(line) + 1
    return kept


def _escape_line(line: str) -> str:
    out = []
    marker = _ORDERED_MARKER.match(line)
    if marker:  # "1." / "1)" would start an ordered list
        out.append(marker.group(1) + "\\" + marker.group(2))
        line = line[marker.end():]
    elif line[:1] in _LINE_START:
        out.append("\\" + line[0])
        line = line[1:]
    for index, char in enumerate(line):
        if char in _ALWAYS or (char == "_" and not _inside_word(line, index)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _inside_word(line: str, index: int) -> bool:
    # "_" between two letters or digits can neither open nor close emphasis (CommonMark's
    # flanking rules), so snake_case ids stay readable.
    return 0 < index < len(line) - 1 and line[index - 1].isalnum() and line[index + 1].isalnum()


def escape_cell(text: str | None, *, limit: int | None = None) -> str:
    """Untrusted text for one cell of a Markdown table (one line, pipes escaped)."""
    return escape_text(text, limit=limit)


def safe_link(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) or mailto link without blanks; else None."""
    if not url:
        return None
    url = url.strip()
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return None
    return url if url.lower().startswith(_SAFE_SCHEMES) else None


def _validate_link(url: str) -> bool:
    # markdown-it hands over the normalised URL (entities decoded, percent-encoded).
    return safe_link(url) is not None


def _image_as_link(self, tokens, idx, options, env) -> str:  # noqa: ANN001
    """An image would make the document fetch a URL: show it as a link instead."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = token.attrGet("src") or ""
    return f'<a href="{escape(src)}" rel="nofollow noopener noreferrer">{escape(alt)}</a>'


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.add_render_rule("image", _image_as_link)
    return md


def render_markdown(text: str | None, *, heading_offset: int = 2) -> Markup:
    """A person's Markdown as safe HTML: raw HTML shown as text, links only http(s) and
    mailto (others stay as plain text), no images loaded, headings shifted down by
    `heading_offset` levels (h1 becomes h3 under a section's h2; at most h6)."""
    if not text or not text.strip():
        return Markup("")
    md = _renderer()
    env: dict = {}
    tokens = md.parse(text, env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(int(token.tag[1]) + heading_offset, 6)
            token.tag = f"h{level}"
        if token.type == "link_open":
            token.attrSet("rel", "nofollow noopener noreferrer")
        for child in token.children or ():
            if child.type == "link_open":
                child.attrSet("rel", "nofollow noopener noreferrer")
    # markdown-it escapes every text it outputs and drops raw HTML (html=False).
    return Markup(md.renderer.render(tokens, md.options, env))  # noqa: S704
