"""The ``twin`` command: build the sample, serve the API, import and export layers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from layers import LAYERS
from twin.cli_db import db_app
from twin.cli_iot import ingest
from twin.cli_keys import keys_app
from twin.cli_render import render_app
from twin.errors import TwinError
from twin.settings import Settings, StoreSettings
from twin.store.base import Store
from twin.store.opening import open_store

app = typer.Typer(add_completion=False, no_args_is_help=True, help="深圳北站数字孪生 · the North Station twin.")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="GeoPackage path or PostgreSQL URL (default: TWIN_DATABASE_URL, TWIN_GPKG_PATH or the sample)",
    ),
]


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _open(location: str | None) -> Store:

    return open_store(location, settings=StoreSettings())


@app.command()
def sample(
    directory: Annotated[Path | None, typer.Option("--dir", help="output folder (default: sample_gis/)")] = None,
    scale: Annotated[
        str, typer.Option(help="district (the North Station sample) or shenzhen (benchmark scale)")
    ] = "district",
    buildings: Annotated[int | None, typer.Option(help="override the number of buildings")] = None,
    sensors: Annotated[int | None, typer.Option(help="override the number of sensors")] = None,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same twin")] = 20261125,
    name: Annotated[str, typer.Option(help="GeoPackage file name")] = "beizhan.gpkg",
) -> None:
    """Build the sample twin (a GeoPackage plus COG rasters)."""
    from twin.samplebuild import build_sample

    if scale not in ("district", "shenzhen"):
        raise TwinErrorExit(f"--scale must be district or shenzhen, not {scale!r}")
    started = time.perf_counter()
    path = build_sample(
        directory or StoreSettings().sample_dir, seed=seed, scale=scale, n_buildings=buildings,
        n_sensors=sensors, filename=name, progress=_say,
    )
    _say(f"sample twin ready: {path} ({time.perf_counter() - started:.1f} s)")


@app.command()
def serve(
    store: StoreOption = None,
    host: Annotated[str | None, typer.Option(help="interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level (info logs every request)")] = "info",
) -> None:
    """Serve the twin's API (the sample twin unless a store is given)."""
    import uvicorn

    from api.main import create_app
    from twin.store.opening import is_database_url

    settings = Settings()
    if store is not None:
        if is_database_url(store):
            settings.store.database_url = store
        else:
            settings.store.gpkg_path = Path(store)
    if settings.store.uses_sample:
        from twin.samplebuild import ensure_sample

        ensure_sample(settings.store.sample_dir, progress=_say)
    opened = _open(store)
    app_ = create_app(settings, store=opened)
    try:
        uvicorn.run(app_, host=host or settings.api.host, port=port or settings.api.port, log_level=log_level)
    finally:
        opened.close()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="GeoPackage, GeoJSON, GeoParquet, Shapefile or CSV")],
    layer: Annotated[str, typer.Option("--layer", "-l", help="catalogue layer to load into")],
    store: StoreOption = None,
    mode: Annotated[str, typer.Option(help="append or replace")] = "append",
    crs: Annotated[
        str | None, typer.Option(help="CRS of a file that has none (EPSG:4547, GCJ-02, a PROJ string …)")
    ] = None,
    source_layer: Annotated[str | None, typer.Option(help="layer inside a multi-layer file")] = None,
) -> None:
    """Load a file into a layer; every row is checked first, so bad input changes nothing."""
    from twin.transfer import import_file

    bar = tqdm(total=3, desc=f"import {layer}", file=sys.stderr, leave=False, disable=None)
    with _open(store) as target, bar:
        def step(message: str) -> None:
            bar.update(1)
            bar.set_postfix_str(message)

        rows = import_file(target, file, layer, mode=mode, crs=crs, source_layer=source_layer, progress=step)
    _say(f"imported {rows:,} rows into {layer} ({mode})")


@app.command()
def export(
    layer: Annotated[str, typer.Argument(help="catalogue layer to export")],
    out: Annotated[Path, typer.Argument(help="output file; the suffix picks the format")],
    store: StoreOption = None,
    fmt: Annotated[str | None, typer.Option("--format", help="gpkg, geojson, parquet, shp or csv")] = None,
    crs: Annotated[str, typer.Option(help="output CRS (EPSG:4326, EPSG:4547, GCJ-02, BD-09 …)")] = "EPSG:4326",
) -> None:
    """Write a layer to a file."""
    from twin.transfer import export_layer

    bar = tqdm(total=2, desc=f"export {layer}", file=sys.stderr, leave=False, disable=None)
    with _open(store) as source, bar:
        def step(message: str) -> None:
            bar.update(1)
            bar.set_postfix_str(message)

        rows = export_layer(source, layer, out, fmt=fmt, crs=crs, progress=step)
    _say(f"exported {rows:,} rows of {layer} to {out}")


@app.command()
def info(store: StoreOption = None) -> None:
    """Row counts of every layer."""
    with _open(store) as source:
        for layer in LAYERS:
            typer.echo(f"{layer.id:18} {source.count(layer.id):>10,}  {layer.title_zh}")


app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(render_app, name="render")
app.command("ingest")(ingest)


class TwinErrorExit(TwinError):
    """A usage error raised by the command itself."""


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit status 2, never a traceback."""
    try:
        app(standalone_mode=False)
    except TwinError as err:
        print(f"twin: error: {err}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as err:  # click usage errors carry their own message
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":
    main()
