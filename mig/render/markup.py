"""The small markup of VGrid pages, wiki pages and forum posts, as HTML that
can hold no script: every character of the text is escaped first, and only
these become tags:

* ``# Title`` and ``## Title`` lines: headings;
* lines starting with ``- ``: a list;
* a blank line: a new paragraph;
* ``**bold**``, ```code```;
* ``[text](https://...)`` (also ``http:``, ``mailto:`` and addresses on this
  grid starting with ``/``): a link;
* ``[[Page name]]``: a link to that wiki page (when a wiki_link is given).
"""

import html
import re

_LINK = re.compile(r"\[([^\]\n]{1,200})\]\(((?:https?://|mailto:|/)[^)\s\"'<>]{0,2000})\)")
_WIKI = re.compile(r"\[\[([^\]\n|]{1,100})\]\]")
_BOLD = re.compile(r"\*\*([^*\n]{1,500})\*\*")
_CODE = re.compile(r"`([^`\n]{1,500})`")


def _inline(text, wiki_link):
    """One escaped line with its inline marks made tags (the marks work on escaped text,
    so nothing the user wrote becomes a tag of its own)."""
    out = html.escape(text, quote=True)
    out = _CODE.sub(lambda m: "<code>%s</code>" % m.group(1), out)
    out = _BOLD.sub(lambda m: "<strong>%s</strong>" % m.group(1), out)
    out = _LINK.sub(lambda m: '<a href="%s" rel="nofollow noopener">%s</a>'
                    % (m.group(2), m.group(1)), out)
    if wiki_link is not None:
        out = _WIKI.sub(lambda m: '<a href="%s">%s</a>'
                        % (html.escape(wiki_link(html.unescape(m.group(1))), quote=True),
                           m.group(1)), out)
    return out


def to_html(text, wiki_link=None):
    """The markup text as safe HTML."""
    blocks, paragraph, items = [], [], []

    def flush():
        if paragraph:
            blocks.append("<p>%s</p>" % "<br>".join(paragraph))
            paragraph.clear()
        if items:
            blocks.append("<ul>%s</ul>" % "".join("<li>%s</li>" % i for i in items))
            items.clear()
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if not stripped:
            flush()
        elif stripped.startswith("## "):
            flush()
            blocks.append("<h3>%s</h3>" % _inline(stripped[3:], wiki_link))
        elif stripped.startswith("# "):
            flush()
            blocks.append("<h2>%s</h2>" % _inline(stripped[2:], wiki_link))
        elif stripped.startswith("- "):
            if paragraph:
                flush()
            items.append(_inline(stripped[2:], wiki_link))
        else:
            if items:
                flush()
            paragraph.append(_inline(stripped, wiki_link))
    flush()
    return "\n".join(blocks)
