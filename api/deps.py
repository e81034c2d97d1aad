"""Shared request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from layers import Layer, Role
from twin.errors import InvalidQuery, Unauthorized
from twin.settings import Settings
from twin.store.base import Store, known_layer


def get_store(request: Request) -> Store:
    """The store opened by the app's lifespan."""
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def current_role(request: Request) -> Role:
    """The caller's role. API keys arrive with the API issue; until then every caller is ``public``."""
    return Role.PUBLIC


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RoleDep = Annotated[Role, Depends(current_role)]

OutputFormat = Literal["json", "html"]


def output_format(request: Request, f: Annotated[str | None, Query(description="json or html")] = None) -> OutputFormat:
    """``f=json``/``f=html`` wins; otherwise HTML only when the Accept header prefers it over JSON."""
    if f is not None:
        if f not in ("json", "html"):
            raise InvalidQuery(f"unsupported format f={f!r}; use json or html")
        return "json" if f == "json" else "html"
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept.split("text/html")[0]:
        return "html"
    return "json"


FormatDep = Annotated[OutputFormat, Depends(output_format)]


def readable_layer(collection_id: str, role: RoleDep) -> Layer:
    """The catalogue layer for a path's ``collection_id``, if the caller's role may read it."""
    layer = known_layer(collection_id)
    if not layer.readable_by(role):
        needed = ", ".join(sorted(r.value for r in layer.read_roles))
        raise Unauthorized(f"collection {collection_id!r} needs an API key with one of the roles: {needed}")
    return layer


LayerDep = Annotated[Layer, Depends(readable_layer)]
