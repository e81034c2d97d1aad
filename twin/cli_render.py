"""``twin render``: write a screen as one standalone HTML file that opens with the network cable pulled.

Every script (deck.gl, vendored by ``scripts/ensure_assets.sh``), the style and the data are inline, and the page's
Content-Security-Policy forbids any request, so the file shows the same screen as the service without one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from twin.render.basemap import basemap_from_dem
from twin.render.district import FIGURES, district_screen, load_district
from twin.render.grid import grid_screen, load_grid
from twin.render.offline import standalone_html
from twin.render.screen import Screen
from twin.render.tower import load_tower, tower_screen
from twin.settings import StoreSettings
from twin.store.base import Store
from twin.store.opening import open_store

render_app = typer.Typer(help="Write a screen (district, tower, grid) as a standalone offline HTML file.",
                         no_args_is_help=True)

StoreOption = Annotated[str | None, typer.Option("--store", help="GeoPackage path or PostgreSQL URL")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="the HTML file to write")]


def _write(screen: Screen, out: Path, kind: str) -> None:
    html = standalone_html(screen, kind=kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    print(f"wrote {out} ({len(html.encode()) / 1e6:.1f} MB): {screen.title}", file=sys.stderr)


def _open(store: str | None) -> Store:
    return open_store(store, settings=StoreSettings())


@render_app.command("district")
def district(out: OutOption, store: StoreOption = None,
             figure: Annotated[str, typer.Option(help=f"grid figure: {', '.join(FIGURES)}")] = "population") -> None:
    """The district screen: every building and sensor inline, coloured by its state now."""
    with _open(store) as source:
        data = load_district(source, figure=figure, inline=True, basemap=basemap_from_dem(source.raster_path("dem")))
        _write(district_screen(data), out, "district")


@render_app.command("tower")
def tower(building_id: Annotated[int, typer.Argument(help="building id")], out: OutOption,
          store: StoreOption = None) -> None:
    """One building's fire model in 3D: floors, refuge floors, facilities and sensors."""
    with _open(store) as source:
        data = load_tower(source, building_id, basemap=basemap_from_dem(source.raster_path("dem")))
        _write(tower_screen(data), out, "tower")


@render_app.command("grid")
def grid(code: Annotated[str, typer.Argument(help="grid code")], out: OutOption, store: StoreOption = None) -> None:
    """One management grid with its buildings, sensors and open alarms."""
    with _open(store) as source:
        data = load_grid(source, code, basemap=basemap_from_dem(source.raster_path("dem")))
        _write(grid_screen(data), out, "grid")
