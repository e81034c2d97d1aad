"""``twin keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from twin.auth import create_key, list_keys, revoke_key
from twin.settings import StoreSettings
from twin.store.opening import open_store

keys_app = typer.Typer(help="API keys (stored hashed; a key is printed once, when it is made).", no_args_is_help=True)

StoreOption = Annotated[str | None, typer.Option("--store", help="GeoPackage path or PostgreSQL URL")]


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="public, inspector, operator, device or admin")],
    name: Annotated[str | None, typer.Option(help="who or what the key is for")] = None,
    store: StoreOption = None,
) -> None:
    """Make a key and print it (this is the only time it is shown)."""
    with open_store(store, settings=StoreSettings()) as target:
        key_id, key = create_key(target, role, name)
    typer.echo(key)
    typer.echo(f"key {key_id} ({role}) created; store it now, it cannot be shown again", err=True)


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="the key's id or prefix (see `twin keys list`)")],
    store: StoreOption = None,
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    with open_store(store, settings=StoreSettings()) as target:
        key_id = revoke_key(target, key)
    typer.echo(f"key {key_id} revoked", err=True)


@keys_app.command("list")
def list_(store: StoreOption = None) -> None:
    """The keys, without their secrets."""
    with open_store(store, settings=StoreSettings()) as target:
        frame = list_keys(target)
    for key_id, row in frame.iterrows():
        revoked = "" if pd.isna(row["revoked_at"]) else f"  revoked {row['revoked_at']}"
        typer.echo(f"{key_id:>5}  {row['prefix']:<12} {row['role']:<10} {row['name']}{revoked}")
