"""Shared request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from layers import Layer, Role
from twin.auth import ANONYMOUS, Principal, authenticate
from twin.errors import Forbidden, InvalidQuery, Unauthorized
from twin.settings import Settings
from twin.store.base import Store
from twin.store.checks import known_layer


async def get_store(request: Request) -> Store:
    """The store opened by the app's lifespan (``async``: resolved without a thread hop)."""
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def current_principal(request: Request, store: StoreDep) -> Principal:
    """The caller, from ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; anonymous callers are ``public``.

    A key is looked up in the store on a worker thread; an anonymous call needs no thread hop.
    """
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("use 'Authorization: Bearer KEY' (or the X-API-Key header)")
        return await run_in_threadpool(authenticate, store, token.strip())
    key = request.headers.get("x-api-key")
    return ANONYMOUS if key is None else await run_in_threadpool(authenticate, store, key.strip())


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def current_role(principal: PrincipalDep) -> Role:
    """The caller's role (``async``: resolved without a thread hop)."""
    return principal.role


RoleDep = Annotated[Role, Depends(current_role)]


def require(role: Role, allowed: frozenset[Role], what: str) -> None:
    """``Unauthorized`` for an anonymous caller, ``Forbidden`` for a key whose role is not in ``allowed``."""
    if role in allowed or role is Role.ADMIN:
        return
    needed = ", ".join(sorted(r.value for r in allowed))
    if role is Role.PUBLIC:
        raise Unauthorized(f"{what} needs an API key with one of the roles: {needed}")
    raise Forbidden(f"{what} needs one of the roles {needed}; this key has the role {role.value}")

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
    require(role, layer.read_roles, f"collection {collection_id!r}")
    return layer


LayerDep = Annotated[Layer, Depends(readable_layer)]
