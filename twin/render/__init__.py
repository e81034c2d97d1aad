"""pydeck renderers of the twin's screens, shared by the service and the analysts' notebooks.

Each screen is a loader that reads what a role may see from a store, and a pure renderer of that data::

    import twin
    from twin.render import district_screen, load_district, standalone_html

    t = twin.open()
    screen = district_screen(load_district(t.store, figure="open_alarms"))
    screen.deck                                 # a pydeck.Deck, for a notebook
    html = standalone_html(screen)              # one HTML file, every script inline, nothing from a CDN

:mod:`~twin.render.district` (the command-centre screen), :mod:`~twin.render.tower` (one super high-rise in 3D),
:mod:`~twin.render.grid` (one management grid); :mod:`~twin.render.offline` writes the pages.
"""

from twin.render.basemap import Basemap, basemap_from_dem, hillshade_png
from twin.render.district import FIGURES, DistrictData, TileSource, district_screen, load_district
from twin.render.grid import GridData, grid_screen, load_grid
from twin.render.offline import page_html, standalone_html
from twin.render.screen import Screen
from twin.render.state import StateBoard, StateRules, building_states
from twin.render.tower import TowerData, load_tower, tower_screen

__all__ = [
    "FIGURES",
    "Basemap",
    "DistrictData",
    "GridData",
    "Screen",
    "StateBoard",
    "StateRules",
    "TileSource",
    "TowerData",
    "basemap_from_dem",
    "building_states",
    "district_screen",
    "grid_screen",
    "hillshade_png",
    "load_district",
    "load_grid",
    "load_tower",
    "page_html",
    "standalone_html",
    "tower_screen",
]
