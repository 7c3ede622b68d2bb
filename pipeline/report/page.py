"""index.html: the answer first, then the evidence; works offline (relative links only)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 72em; color: #222;
       padding: 0 1em; line-height: 1.4; }
.answer { background: #eef5ff; border-left: 5px solid #3b75af; padding: 0.8em 1em;
          font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; text-align: left; } td.text { text-align: left; }
tr.best td { background: #e6f4e6; font-weight: 600; } tr.tied td { background: #f2f9f2; }
tr.flagged td.text:first-child::after { content: " ⚠"; }
figure { margin: 1em 0; } figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
img { max-width: 100%; border: 1px solid #eee; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(23em, 1fr));
         gap: 0.6em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.7em; font-size: 0.85em; }
.card h4 { margin: 0 0 0.3em 0; font-size: 1em; }
.card table { font-size: 0.9em; margin: 0; width: 100%; }
.card td, .card th { padding: 0.15em 0.3em; }
ul.why li { margin-bottom: 0.4em; }
.method { font-size: 0.9em; color: #444; }
nav.toc { margin: 0.8em 0; font-size: 0.9em; } a.more { font-size: 0.85em; }
.wide { overflow-x: auto; }  /* a wide table scrolls in place; the page does not */
"""


@dataclass(frozen=True)
class Figure:
    file: str
    title: str
    how_to_read: str  # two sentences: what is drawn, and what to look for


@dataclass(frozen=True)
class Link:
    text: str
    href: str


Line = str | tuple[str, str]  # a sentence, or (sentence, the heading of the section it sums up)


def render(title: str, answer: list[Line], sections: list[tuple[str, str]]) -> str:
    """The page: title, the answer (plain sentences, each linked to the section behind it),
    a table of contents, then (heading, html) sections."""
    lead = "".join(_answer_line(line) for line in answer)
    toc = " · ".join(f'<a href="#{anchor(h)}">{html.escape(h)}</a>' for h, _ in sections)
    body = "\n".join(f'<h2 id="{anchor(h)}">{html.escape(h)}</h2>\n{content}'
                     for h, content in sections)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1>\n<div class=\"answer\">{lead}</div>\n"
            f'<nav class="toc"><b>Contents:</b> {toc}</nav>\n{body}\n</body></html>\n')


def anchor(heading: str) -> str:
    """A section's id: its heading in lower case, words joined by hyphens."""
    return "-".join("".join(c if c.isalnum() else " " for c in heading.lower()).split())


def _answer_line(line: Line) -> str:
    if isinstance(line, str):
        return f"<p>{html.escape(line)}</p>"
    text, heading = line
    return (f'<p>{html.escape(text)} <a class="more" href="#{anchor(heading)}">'
            f"({html.escape(heading.split(':')[0])} ↓)</a></p>")


def figure(fig: Figure) -> str:
    return (f'<figure><img src="{html.escape(fig.file)}" alt="{html.escape(fig.title)}">'
            f"<figcaption><b>{html.escape(fig.title)}.</b> {html.escape(fig.how_to_read)}"
            "</figcaption></figure>")


def table(frame: pd.DataFrame, row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for k, (_, row) in enumerate(frame.iterrows()):
        cls = f' class="{html.escape(row_class[k])}"' if row_class else ""
        rows.append(f"<tr{cls}>{''.join(_cell(v) for v in row)}</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def paragraphs(lines: list[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return "".join(f"<p{cls}>{html.escape(line)}</p>" for line in lines)


def bullets(lines: list[str], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"


def card(title: str, frame: pd.DataFrame, note: str = "") -> str:
    extra = f"<p>{html.escape(note)}</p>" if note else ""
    return (f'<div class="card"><h4>{html.escape(title)}</h4>{table(frame)}{extra}</div>')


def _cell(value: object) -> str:
    if isinstance(value, tuple):  # text and links, in order
        parts = " ".join(f'<a href="{html.escape(v.href)}">{html.escape(v.text)}</a>'
                         if isinstance(v, Link) else html.escape(str(v)) for v in value)
        return f'<td class="text">{parts}</td>'
    if isinstance(value, float):
        return "<td></td>" if pd.isna(value) else f"<td>{value:.4g}</td>"
    return f'<td class="text">{html.escape(str(value))}</td>'


def write_page(path: Path, page: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
