"""Pages for the screens that load nothing from the internet.

pydeck's own ``to_html(offline=True)`` inlines deck.gl but still pulls mapbox-gl, its CSS and a CARTO basemap from
CDNs. These pages instead take deck.gl and ``@deck.gl/json`` from the folder ``scripts/ensure_assets.sh`` fills from
the npm registry at set-up time (``build/vendor/``, or ``TWIN_ASSETS_DIR``), and the page script and style from this
package:

* :func:`page_html` — the page the service serves: scripts from ``{root}/static/…``, the screen fetched as JSON.
* :func:`standalone_html` — one self-contained file (every script, style and the data inline) that opens from disk
  with the network cable pulled; a Content-Security-Policy in the page forbids any request at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from twin.errors import Unavailable
from twin.render.screen import Screen

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The page scripts of this package in load order (one concern each; ``screen.js`` last), served at
#: ``{root}/static/twin/{name}?v={digest}``.
OWN_SCRIPTS = ("core.js", "labels.js", "hit.js", "layers.js", "panels.js", "live.js", "screen.js")
OWN_FILES = (*OWN_SCRIPTS, "screen.css")
#: Browser bundles, in load order: (npm package, file).
VENDOR_SCRIPTS = (("deck.gl", "dist.min.js"), ("@deck.gl/json", "dist.min.js"))
#: Web workers the page hands to loaders.gl (else it would fetch them from a CDN): loader id → (package, file).
VENDOR_WORKERS = {"mvt": ("@loaders.gl/mvt", "dist/mvt-worker.js")}
_CHECKOUT = Path(__file__).resolve().parents[2]

#: Content-Security-Policy of served pages: every request goes to the service itself.
SERVED_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
              "connect-src 'self' data: blob:; worker-src 'self' blob:; font-src 'self'; object-src 'none'; "
              "base-uri 'self'; form-action 'self'")
#: Content-Security-Policy of standalone files: no request may leave the page.
STANDALONE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
                  "connect-src data: blob:; worker-src blob:; font-src data:; object-src 'none'; base-uri 'none'")


class AssetSettings(BaseSettings):
    """Where the vendored browser bundles are (``TWIN_ASSETS_DIR``; default ``build/vendor`` of the checkout)."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    assets_dir: Path | None = None

    @property
    def directory(self) -> Path:
        """The folder holding ``manifest.json`` and ``NAME@VERSION/`` folders."""
        if self.assets_dir is not None:
            return self.assets_dir
        checkout = _CHECKOUT / "build" / "vendor"
        if (_CHECKOUT / "package.json").is_file():
            return checkout
        return Path.home() / ".cache" / "beizhan-twin" / "vendor"


@dataclass(frozen=True)
class VendorFile:
    """One vendored file: its package, version, file name and path on disk."""

    package: str
    version: str
    name: str
    path: Path

    @property
    def url_path(self) -> str:
        """Path under ``/static/vendor/`` (versioned, so it can be cached for good)."""
        return f"{self.package}@{self.version}/{self.name}"


def vendor_files(directory: Path | None = None) -> dict[str, VendorFile]:
    """Every vendored file by its URL path; ``Unavailable`` when ``scripts/ensure_assets.sh`` has not run."""
    folder = directory or AssetSettings().directory
    return dict(_vendor_files(folder))


@cache
def _vendor_files(folder: Path) -> tuple[tuple[str, VendorFile], ...]:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise Unavailable(f"the screens' browser bundles are missing from {folder}: run scripts/ensure_assets.sh")
    packages = json.loads(manifest.read_text(encoding="utf-8"))["packages"]
    out = []
    for package, entry in packages.items():
        for name in entry["files"]:
            item = VendorFile(package, entry["version"], name, folder / f"{package}@{entry['version']}" / name)
            if not item.path.is_file():
                raise Unavailable(f"{item.path} is missing: run scripts/ensure_assets.sh")
            out.append((item.url_path, item))
    return tuple(out)


def scripts(directory: Path | None = None) -> list[VendorFile]:
    """The bundles a page loads, in order."""
    files = {(f.package, f.name): f for f in vendor_files(directory).values()}
    try:
        return [files[key] for key in VENDOR_SCRIPTS]
    except KeyError as err:
        raise Unavailable(f"{err.args[0][0]} is not vendored: run scripts/ensure_assets.sh") from None


def workers(directory: Path | None = None) -> dict[str, VendorFile]:
    """The loaders.gl worker scripts by loader id (only those vendored)."""
    files = {(f.package, f.name): f for f in vendor_files(directory).values()}
    return {loader: files[key] for loader, key in VENDOR_WORKERS.items() if key in files}


def own_file(name: str) -> Path:
    """Path of the package's page script or style."""
    return STATIC_DIR / name


def own_digest(name: str) -> str:
    """A short digest of one of the package's files (its URLs carry it, so they can be cached for good)."""
    path = own_file(name)
    return _digest(path, path.stat().st_mtime_ns)


@cache
def _digest(path: Path, _mtime: int) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()


def _inline_js(source: str) -> str:
    return source.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _json_block(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{csp}<link rel="icon" href="data:,">
<title>{title}</title>
{style}
</head>
<body class="{body_class}">
<div id="map"></div>
<header id="bar"><div id="heading"><h1 id="title">{title}</h1><div id="subtitle">{subtitle}</div></div>
<nav id="links"></nav><div id="clock"></div><div id="auth"></div></header>
<aside id="side"><section id="panel"></section><section id="floors"></section><section id="alarms"></section>
</aside>
<div id="legend"></div>
<div id="status" role="status"></div>
<script id="twin-boot" type="application/json">{boot}</script>
{scripts}
</body>
</html>
"""


def page_html(*, title: str, screen_url: str, root: str = "", subtitle: str = "", live: bool = False,
              kind: str = "district") -> str:
    """The page the service serves, loading the vendored bundles and ``screen.js`` from ``{root}/static/``.

    The script fetches ``screen_url`` (sending the API key it holds) and draws it; ``live`` follows the alarm stream.
    """
    base = root.rstrip("/")
    # the page scripts first: they request the screen JSON while the bundles download, and draw once those ran
    tags = [f'<script src="{escape(base)}/static/twin/{name}?v={own_digest(name)}"></script>' for name in OWN_SCRIPTS]
    tags += [f'<script src="{escape(base)}/static/vendor/{escape(f.url_path)}"></script>' for f in scripts()]
    worker_urls = {loader: f"{base}/static/vendor/{f.url_path}" for loader, f in workers().items()}
    boot = {"root": base, "screenUrl": screen_url, "live": live, "kind": kind, "workers": worker_urls}
    return _PAGE.format(csp="", title=escape(title), subtitle=escape(subtitle), body_class=escape(kind),
                        style=f'<link rel="stylesheet" href="{escape(base)}/static/twin/screen.css'
                              f'?v={own_digest("screen.css")}">',
                        boot=_json_block(boot), scripts="\n".join(tags))


def standalone_html(screen: Screen, *, kind: str = "standalone") -> str:
    """One self-contained HTML file of ``screen``: bundles, script, style and data inline; no request allowed."""
    bundles = [own_file(name).read_text(encoding="utf-8") for name in OWN_SCRIPTS]
    bundles += [f.path.read_text(encoding="utf-8") for f in scripts()]
    tags = "\n".join(f"<script>{_inline_js(source)}</script>" for source in bundles)
    boot = {"root": None, "screen": screen.to_dict(), "live": False, "kind": kind}
    csp = f'<meta http-equiv="Content-Security-Policy" content="{STANDALONE_CSP}">\n'
    return _PAGE.format(csp=csp, title=escape(screen.title), subtitle=escape(screen.subtitle),
                        body_class=escape(kind), style=f"<style>{own_file('screen.css').read_text('utf-8')}</style>",
                        boot=_json_block(boot), scripts=tags)
