"""Plain HTML views of the JSON documents, for people browsing the service."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;margin:2rem;max-width:60rem}}
td,th{{padding:.2rem .6rem;text-align:left}} code{{background:#eee}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def page(title: str, body: str) -> HTMLResponse:
    """A complete page with an escaped title and a body of trusted markup."""
    return HTMLResponse(_PAGE.format(title=escape(title), body=body))


def links_list(links: list[dict[str, Any]]) -> str:
    """An HTML list of link objects."""
    items = "".join(
        f'<li><a href="{escape(str(item["href"]))}">{escape(str(item.get("title", item["href"])))}</a>'
        f' <small>({escape(str(item["rel"]))})</small></li>'
        for item in links
    )
    return f"<ul>{items}</ul>"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """An HTML table of ``rows`` restricted to ``columns``, every cell escaped."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
