"""index.html: the leaderboard and figures on one page that works offline (relative links only)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; text-align: left; } td.text { text-align: left; }
tr.diverged td { background: #fff4e0; } tr.failed td { background: #fde8e8; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""

SHOWN = ["hidden_activation", "output_activation", "loss", "initializer",
         "optimizer", "test_accuracy", "test_loss", "best_val_accuracy", "best_val_epoch",
         "epochs_run", "train_seconds", "samples_per_sec", "status"]


def render(title: str, board: pd.DataFrame, images: dict[str, str], notes: list[str]) -> str:
    """The page as a string; ``images`` maps a caption to a file name beside index.html."""
    figures = "\n".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for cap, src in images.items())
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<ul>{items}</ul>\n"
        f"<h2>Leaderboard</h2>\n{_table(board)}\n"
        '<p>Also as <a href="leaderboard.csv">CSV</a> and '
        '<a href="leaderboard.md">Markdown</a>.</p>\n'
        f"<h2>Figures</h2>\n{figures}\n</body></html>\n"
    )


def _table(board: pd.DataFrame) -> str:
    cols = [c for c in SHOWN if c in board.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["#", *cols])
    rows = []
    for rank, (_, row) in enumerate(board.iterrows(), 1):
        cells = [f"<td>{rank}</td>"] + [_cell(row[c]) for c in cols]
        rows.append(f'<tr class="{html.escape(str(row.get("status", "")))}">{"".join(cells)}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "<td></td>" if pd.isna(value) else f"<td>{value:.4g}</td>"
    return f'<td class="text">{html.escape(str(value))}</td>'


def write_page(path: Path, page: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
