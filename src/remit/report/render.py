"""Render the report's blocks to Markdown and to one self-contained HTML file (images as base64).

A block is a tuple: ``("h1"|"h2"|"h3"|"p", text)``, ``("list", [text, ...])``,
``("table", header, rows)``, ``("img", path, caption)``, ``("html", fragment)`` (HTML only) or
``("md", text)`` (Markdown only). Text may use ``**bold**`` and ```code``` (converted for HTML).
"""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from remit.report.heatmap import STYLE


def _inline(text: str) -> str:
    out = html.escape(str(text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_md(blocks: list[tuple], root: Path) -> str:
    lines: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + b[1], ""]
        elif kind in ("p", "md"):
            lines += [b[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            header, rows = b[1], b[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            lines.append("")
        elif kind == "img":
            rel = os.path.relpath(b[1], root)
            lines += [f"![{b[2]}]({rel})", "", f"*{b[2]}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _img_tag(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption, quote=True)}'>"
            f"<figcaption>{_inline(caption)}</figcaption></figure>")


CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
  padding: 0 16px; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: 6px; } h2 { border-bottom: 1px solid #eee; margin-top: 32px; }
table.r { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.r td, table.r th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
table.r th { background: #f4f4f4; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; } code { background: #f4f4f4; padding: 0 3px; border-radius: 3px; }
"""


def render_html(blocks: list[tuple], root: Path, *, title: str) -> str:
    body: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table class='r'><tr>{head}</tr>{rows}</table>")
        elif kind == "img":
            body.append(_img_tag(b[1], b[2]))
        elif kind == "html":
            body.append(b[1])
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
