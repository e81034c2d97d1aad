"""Link objects and absolute URLs for OGC API documents."""

from __future__ import annotations

from fastapi import Request

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def base_url(request: Request) -> str:
    """The service root as the client sees it, without a trailing slash."""
    return str(request.base_url).rstrip("/")


def link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    """One link object."""
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def self_links(request: Request, path: str, title: str) -> list[dict[str, str]]:
    """``self`` (JSON) and ``alternate`` (HTML) links for a document at ``path``."""
    root = base_url(request)
    return [
        link(f"{root}{path}?f=json", "self", JSON, f"{title} (JSON)"),
        link(f"{root}{path}?f=html", "alternate", HTML, f"{title} (HTML)"),
    ]
