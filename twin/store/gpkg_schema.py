"""The GeoPackage layout of a twin: the OGC core tables, one table per catalogue layer, indexes and R-trees.

Everything here is DDL built from the catalogue, so the file QGIS and GDAL open always matches ``layers/``.
Feature tables follow GeoPackage 1.4: ``id INTEGER PRIMARY KEY AUTOINCREMENT``, a ``geom`` column registered in
``gpkg_geometry_columns`` (srs 4326), and the ``gpkg_rtree_index`` extension (``rtree_<t>_geom`` maintained by
the standard triggers, which call the ``ST_*`` functions of :mod:`twin.store.gpkg_geometry`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from layers import FieldType, GeometryType, Layer
from twin.errors import ValidationFailed

GEOMETRY_COLUMN = "geom"
SRS_ID = 4326
APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10400  # GeoPackage 1.4.0
_OLDER_APPLICATION_IDS = {0x47503130, 0x47503131}  # "GP10", "GP11" of GeoPackage 1.0/1.1
NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
RTREE_EXTENSION = "http://www.geopackage.org/spec140/index.html#extension_rtree"

SQL_TYPES = {
    FieldType.INTEGER: "INTEGER",
    FieldType.REAL: "REAL",
    FieldType.TEXT: "TEXT",
    FieldType.BOOLEAN: "BOOLEAN",
    FieldType.DATE: "DATE",
    FieldType.DATETIME: "DATETIME",
}
GEOMETRY_TYPE_NAMES = {
    GeometryType.POINT: "POINT",
    GeometryType.LINESTRING: "LINESTRING",
    GeometryType.POLYGON: "POLYGON",
    GeometryType.MULTIPOLYGON: "MULTIPOLYGON",
}
_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],'
    'AUTHORITY["EPSG","4326"]]'
)

CORE_DDL = (
    """CREATE TABLE gpkg_spatial_ref_sys (
        srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
        organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)""",
    f"""CREATE TABLE gpkg_contents (
        table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
        description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT ({NOW}),
        min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
        CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id))""",
    """CREATE TABLE gpkg_geometry_columns (
        table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
        srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
        CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
        CONSTRAINT uk_gc_table_name UNIQUE (table_name),
        CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
        CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id))""",
    """CREATE TABLE gpkg_extensions (
        table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
        scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))""",
)
SPATIAL_REF_SYS = (
    ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
    ("WGS 84 geodetic", SRS_ID, "EPSG", SRS_ID, _WGS84_WKT, "longitude/latitude coordinates in decimal degrees"),
)


def quote(name: str) -> str:
    """An SQL identifier in double quotes (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def rtree_name(layer: Layer) -> str:
    """Name of the layer's R-tree virtual table."""
    return f"rtree_{layer.id}_{GEOMETRY_COLUMN}"


def table_ddl(layer: Layer) -> str:
    """``CREATE TABLE`` for a layer: the key, the geometry (for spatial layers) and the catalogue fields."""
    columns = [f"{quote(layer.key)} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL"]
    if layer.is_spatial:
        columns.append(f"{quote(GEOMETRY_COLUMN)} {GEOMETRY_TYPE_NAMES[layer.geometry_type]} NOT NULL")
    for field in layer.fields:
        columns.append(f"{quote(field.name)} {SQL_TYPES[field.type]}{' NOT NULL' if field.required else ''}")
    return f"CREATE TABLE {quote(layer.id)} (\n  " + ",\n  ".join(columns) + "\n)"


def index_ddl(layer: Layer) -> list[str]:
    """B-tree indexes for the fields that need their own and the layer's unique natural key."""
    statements = [
        f"CREATE INDEX {quote(single_index_name(layer, f.name))} ON {quote(layer.id)} ({quote(f.name)})"
        for f in layer.single_indexed_fields
    ]
    if layer.unique_key:
        names = layer.unique_key
        statements.append(
            f"CREATE UNIQUE INDEX {quote(f'uq_{layer.id}_' + '_'.join(names))} ON {quote(layer.id)} "
            f"({', '.join(quote(n) for n in names)})"
        )
    return statements


def single_index_name(layer: Layer, field_name: str) -> str:
    """The name of the one-column index on ``field_name``."""
    return f"idx_{layer.id}_{field_name}"


def redundant_indexes(conn: sqlite3.Connection, layers: Sequence[Layer]) -> list[str]:
    """One-column indexes an older version made that the unique index now serves (``readings.sensor_id``)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return [name for layer in layers if layer.unique_key
            if (name := single_index_name(layer, layer.unique_key[0])) in present]


def rtree_ddl(layer: Layer) -> str:
    """The R-tree virtual table of a spatial layer."""
    return f"CREATE VIRTUAL TABLE {quote(rtree_name(layer))} USING rtree(id, minx, maxx, miny, maxy)"


def rtree_triggers(layer: Layer) -> list[str]:
    """The GeoPackage 1.4 triggers that keep ``rtree_<t>_geom`` in step with the table."""
    t, c, i, r = quote(layer.id), quote(GEOMETRY_COLUMN), quote(layer.key), quote(rtree_name(layer))
    name = rtree_name(layer)
    new_bounds = f"ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c})"
    new_full = f"NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})"
    new_none = f"NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})"
    old_full = f"OLD.{c} NOTNULL AND NOT ST_IsEmpty(OLD.{c})"
    old_none = f"OLD.{c} ISNULL OR ST_IsEmpty(OLD.{c})"
    return [
        f"""CREATE TRIGGER {quote(name + '_insert')} AFTER INSERT ON {t} WHEN ({new_full})
        BEGIN INSERT OR REPLACE INTO {r} VALUES (NEW.{i}, {new_bounds}); END""",
        f"""CREATE TRIGGER {quote(name + '_update6')} AFTER UPDATE OF {c} ON {t}
        WHEN OLD.{i} = NEW.{i} AND ({new_full}) AND ({old_full})
        BEGIN UPDATE {r} SET minx = ST_MinX(NEW.{c}), maxx = ST_MaxX(NEW.{c}), miny = ST_MinY(NEW.{c}),
        maxy = ST_MaxY(NEW.{c}) WHERE id = NEW.{i}; END""",
        f"""CREATE TRIGGER {quote(name + '_update7')} AFTER UPDATE OF {c} ON {t}
        WHEN OLD.{i} = NEW.{i} AND ({new_full}) AND ({old_none})
        BEGIN INSERT INTO {r} VALUES (NEW.{i}, {new_bounds}); END""",
        f"""CREATE TRIGGER {quote(name + '_update2')} AFTER UPDATE OF {c} ON {t}
        WHEN OLD.{i} = NEW.{i} AND ({new_none})
        BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END""",
        f"""CREATE TRIGGER {quote(name + '_update4')} AFTER UPDATE ON {t}
        WHEN OLD.{i} != NEW.{i} AND ({new_none})
        BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END""",
        f"""CREATE TRIGGER {quote(name + '_update5')} AFTER UPDATE ON {t}
        WHEN OLD.{i} != NEW.{i} AND ({new_full})
        BEGIN DELETE FROM {r} WHERE id = OLD.{i}; INSERT OR REPLACE INTO {r} VALUES (NEW.{i}, {new_bounds}); END""",
        f"""CREATE TRIGGER {quote(name + '_delete')} AFTER DELETE ON {t} WHEN OLD.{c} NOT NULL
        BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END""",
    ]


TRIGGER_SUFFIXES = ("insert", "update6", "update7", "update2", "update4", "update5", "delete")


def drop_rtree_triggers(layer: Layer) -> list[str]:
    """``DROP TRIGGER`` statements for the R-tree triggers (used around bulk loads)."""
    return [f"DROP TRIGGER IF EXISTS {quote(rtree_name(layer) + '_' + s)}" for s in TRIGGER_SUFFIXES]


#: Per-layer change counters (not part of the GeoPackage standard; readers ignore extra tables).
VERSIONS_DDL = ("CREATE TABLE IF NOT EXISTS twin_layer_versions "
                "(table_name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)")


def create_schema(conn: sqlite3.Connection, layers: Sequence[Layer]) -> None:
    """Write the core tables and every layer into an empty database (the caller holds the transaction)."""
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {USER_VERSION}")
    for statement in CORE_DDL:
        conn.execute(statement)
    conn.execute(VERSIONS_DDL)
    conn.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", SPATIAL_REF_SYS)
    for layer in layers:
        create_layer(conn, layer)


def missing_layers(conn: sqlite3.Connection, layers: Sequence[Layer]) -> list[Layer]:
    """Catalogue layers that have no table yet (a file made before the catalogue grew)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [layer for layer in layers if layer.id not in tables]


def create_layer(conn: sqlite3.Connection, layer: Layer) -> None:
    """Add one layer's table, indexes and registrations (the caller holds the transaction)."""
    conn.execute(table_ddl(layer))
    for statement in index_ddl(layer):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES (?, ?, ?, ?, ?)",
        (layer.id, "features" if layer.is_spatial else "attributes", f"{layer.title_zh} {layer.title_en}",
         layer.description, SRS_ID if layer.is_spatial else None),
    )
    if not layer.is_spatial:
        return
    conn.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, ?, 0)",
        (layer.id, GEOMETRY_COLUMN, GEOMETRY_TYPE_NAMES[layer.geometry_type], SRS_ID, int(layer.has_z)),
    )
    conn.execute(rtree_ddl(layer))
    for statement in rtree_triggers(layer):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', ?, 'write-only')",
        (layer.id, GEOMETRY_COLUMN, RTREE_EXTENSION),
    )


def upgrade_schema(conn: sqlite3.Connection, layers: Sequence[Layer]) -> None:
    """Bring a twin GeoPackage made by an older version up to the catalogue.

    Adds the change counters and new layers, and drops one-column indexes the unique key now serves.

    Other files (not GeoPackages, or GeoPackages that are not twins) are left for :func:`check_schema` to reject.
    """
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return
    if "gpkg_contents" not in tables or not {"grids", "buildings", "sensors"} <= tables:
        return  # not a twin GeoPackage: never add tables to someone else's file
    missing = missing_layers(conn, layers)
    if "twin_layer_versions" in tables and not missing and not redundant_indexes(conn, layers):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(VERSIONS_DDL)
        for layer in missing_layers(conn, layers):
            create_layer(conn, layer)
        for name in redundant_indexes(conn, layers):
            conn.execute(f"DROP INDEX {quote(name)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def check_schema(conn: sqlite3.Connection, layers: Sequence[Layer], source: str) -> None:
    """Raise ``ValidationFailed`` unless ``conn`` is a GeoPackage holding every catalogue layer as we lay it out."""
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    except sqlite3.DatabaseError as err:
        raise ValidationFailed(f"not a GeoPackage (SQLite says: {err})", source=source) from None
    if application_id != APPLICATION_ID and application_id not in _OLDER_APPLICATION_IDS:
        raise ValidationFailed("not a GeoPackage (its SQLite application_id is not 'GPKG')", source=source)
    if not {"gpkg_contents", "gpkg_geometry_columns", "gpkg_spatial_ref_sys"} <= tables:
        raise ValidationFailed("not a GeoPackage of features (gpkg_contents or gpkg_geometry_columns missing)",
                               source=source)
    missing = [layer.id for layer in layers if layer.id not in tables]
    if missing:
        raise ValidationFailed(f"lacks the catalogue tables {', '.join(missing)}; is this a twin GeoPackage?",
                               source=source)
    registered = dict(conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
    for layer in layers:
        info = {r[1]: r for r in conn.execute(f"PRAGMA table_info({quote(layer.id)})")}
        expected = [layer.key, *layer.field_names] + ([GEOMETRY_COLUMN] if layer.is_spatial else [])
        absent = [name for name in expected if name not in info]
        if absent:
            raise ValidationFailed(f"table {layer.id!r} lacks the columns {', '.join(absent)}", source=source)
        if not info[layer.key][5]:
            raise ValidationFailed(f"table {layer.id!r}: {layer.key!r} is not the primary key", source=source)
        if layer.is_spatial and registered.get(layer.id) != GEOMETRY_COLUMN:
            raise ValidationFailed(f"table {layer.id!r} has no registered {GEOMETRY_COLUMN!r} geometry column",
                                   source=source)
        if layer.is_spatial and rtree_name(layer) not in tables:
            raise ValidationFailed(f"table {layer.id!r} has no R-tree spatial index", source=source)
