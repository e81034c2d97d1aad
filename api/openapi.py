"""An OpenAPI 3.0 rendering of the service's API definition, for OGC's ``service-desc`` (FastAPI emits 3.1).

OGC API – Features (conformance class ``oas30``) and clients such as GDAL and OWSLib expect OpenAPI 3.0. The
3.1 document FastAPI builds differs mainly in its JSON Schema dialect; :func:`downgrade` rewrites those parts:
``anyOf [X, null]`` and ``type: [X, "null"]`` become ``nullable``, ``const`` an ``enum``, numeric
``exclusiveMinimum``/``exclusiveMaximum`` the boolean form, ``examples`` arrays one ``example``, and keywords
OpenAPI 3.0 does not know (``$schema``, ``contentMediaType``, ``prefixItems`` …) are dropped or translated.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from api.features import queryables
from api.routes.tiles import TMS_ID
from layers import LAYERS, RASTERS
from twin.cql2.ast import GEOMETRY_PROPERTY

OPENAPI_VERSION = "3.0.3"
ITEMS_PATH = "/collections/{collection_id}/items"
_DROP = {"$schema", "$id", "contentMediaType", "contentEncoding", "$comment", "unevaluatedProperties",
         "dependentSchemas", "dependentRequired", "if", "then", "else", "propertyNames", "$defs"}
_SCHEMA_KEYS = {"properties", "patternProperties"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}
_SCHEMA_SINGLE = {"items", "additionalProperties", "not"}


def openapi_30(app: FastAPI) -> dict[str, Any]:
    """The app's API definition as OpenAPI 3.0.3 with one items path per collection, kept on ``app.state``."""
    cached: dict[str, Any] | None = getattr(app.state, "openapi_30", None)
    if cached is None:
        cached = downgrade(app.openapi())
        add_exception_responses(cached)
        add_path_enums(cached)
        add_collection_paths(cached)
        app.state.openapi_30 = cached
    return cached


EXCEPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "description"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}, "status": {"type": "integer"}},
}


def add_exception_responses(doc: dict[str, Any]) -> None:
    """Document every error as what the service sends (``api.errors``): an OGC exception body.

    FastAPI's generated ``422`` describes its own validation body, which the service never sends (bad parameters
    are ``400``, invalid writes ``422``, both as exception bodies); it is replaced, and a ``default`` response
    stands for the other error statuses.
    """
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["exception"] = EXCEPTION_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    error = {"description": "An OGC API exception", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/exception"}}}}
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = {**error, "description": "Invalid request body"}
            responses.setdefault("default", error)


def add_path_enums(doc: dict[str, Any]) -> None:
    """List the values a path's identifier may take (collections, rasters, tile matrix sets); others are ``404``."""
    values = {"collection_id": [layer.id for layer in LAYERS], "raster_id": [raster.id for raster in RASTERS],
              "tms_id": [TMS_ID]}
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else ():
                if parameter.get("in") == "path" and parameter.get("name") in values:
                    parameter["schema"] = {**parameter.get("schema", {}), "type": "string",
                                           "enum": values[parameter["name"]]}


def add_collection_paths(doc: dict[str, Any]) -> None:
    """Add ``/collections/{id}/items`` for every layer, listing its queryables as query parameters.

    OGC API – Features Part 3 (*queryables as query parameters*) asks for them in the API definition, and GDAL's
    OAPIF driver reads them there to send equality filters (``?use=office``) to the server.
    """
    generic = doc.get("paths", {}).get(ITEMS_PATH, {}).get("get")
    if generic is None:
        return
    for layer in LAYERS:
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"getItems_{layer.id}"
        operation["summary"] = f"{layer.title_zh} · {layer.title_en}"
        parameters = [p for p in operation.get("parameters", []) if p.get("in") != "path"]
        for name, schema in queryables(layer, "")["properties"].items():
            if name == GEOMETRY_PROPERTY:
                continue
            plain = {k: v for k, v in schema.items() if k in ("type", "format", "enum", "minimum", "maximum")}
            parameters.append({"name": name, "in": "query", "required": False, "style": "form", "explode": False,
                               "description": f"{schema['title']} equals (repeat for any of several values)",
                               "schema": plain})
        operation["parameters"] = parameters
        doc["paths"][f"/collections/{layer.id}/items"] = {"get": operation}


def downgrade(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of an OpenAPI 3.1 document rewritten as OpenAPI 3.0.3."""
    doc = copy.deepcopy(document)
    doc["openapi"] = OPENAPI_VERSION
    doc.pop("jsonSchemaDialect", None)
    doc.pop("webhooks", None)
    info = doc.setdefault("info", {})
    info.pop("summary", None)
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                _operation(operation)
    components = doc.get("components", {})
    for name, schema in list(components.get("schemas", {}).items()):
        components["schemas"][name] = _schema(schema)
    return doc


def _operation(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if "schema" in parameter:
            schema = parameter["schema"]
            examples = schema.get("examples") if isinstance(schema, dict) else None
            parameter["schema"] = _schema(schema)
            if isinstance(examples, list) and examples and "example" not in parameter and "examples" not in parameter:
                parameter["example"] = examples[0]
        if isinstance(parameter.get("examples"), list):
            values = parameter.pop("examples")
            if values:
                parameter.setdefault("example", values[0])
    body = operation.get("requestBody", {})
    for response in [body, *operation.get("responses", {}).values()]:
        for media in response.get("content", {}).values():
            if "schema" in media:
                media["schema"] = _schema(media["schema"])


def _schema(schema: Any) -> Any:
    """One JSON Schema (2020-12 dialect) rewritten for OpenAPI 3.0."""
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in _DROP}
    for key in _SCHEMA_KEYS & out.keys():
        out[key] = {name: _schema(value) for name, value in out[key].items()}
    for key in _SCHEMA_SINGLE & out.keys():
        out[key] = _schema(out[key])
    for key in _SCHEMA_LISTS & out.keys():
        out[key] = [_schema(item) for item in out[key]]
    out.pop("patternProperties", None)
    if "prefixItems" in out:
        items = [_schema(item) for item in out.pop("prefixItems")]
        out.setdefault("items", items[0] if len(set(map(repr, items))) == 1 else {"anyOf": items})
        out.setdefault("minItems", len(items))
        out.setdefault("maxItems", len(items))
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        values = out.pop("examples")
        if values:
            out.setdefault("example", values[0])
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[plain] = out[bound]
            out[bound] = True
    _nullable(out)
    if "$ref" in out and len(out) > 1:  # siblings of $ref are ignored in 3.0: wrap the reference
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    return out


def _nullable(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) == 1:
            out["type"] = kinds[0]
        elif kinds:
            out.pop("type")
            out["anyOf"] = [{"type": k} for k in kinds]
        else:
            out.pop("type")
    elif kind == "null":
        out.pop("type")
        out["nullable"] = True
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if not isinstance(options, list):
            continue
        rest = [o for o in options if o != {"type": "null"} and o != {"nullable": True}]
        if len(rest) == len(options):
            continue
        out["nullable"] = True
        if len(rest) == 1:
            out.pop(key)
            only = rest[0]
            if "$ref" in only:
                out["allOf"] = [only]
            else:
                for name, value in only.items():
                    out.setdefault(name, value)
        else:
            out[key] = rest
