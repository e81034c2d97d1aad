"""API keys: made with `twin keys`, stored hashed, sent as Bearer or X-API-Key, roles enforced, revocable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.settings import Settings
from twin.store.base import Store


def twin_keys(store: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twin.cli", "keys", *args, "--store", str(store)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def keyed(private_sample: tuple[Store, str]) -> Iterator[tuple[str, Store, str, dict[str, str]]]:
    """A server over a private copy of the sample (backend's store) with an inspector key made by the CLI."""
    store, where = private_sample
    made = twin_keys(where, "create", "--role", "inspector", "--name", "test inspector")
    assert made.returncode == 0, made.stderr
    keys = {"inspector": made.stdout.strip()}
    for role in ("operator", "device"):
        keys[role] = create_key(store, role, f"test {role}")[1]
    with LiveServer(create_app(Settings(), store=store)) as live:
        yield live.url, store, where, keys


def test_key_is_printed_once_and_stored_only_as_a_hash(keyed) -> None:
    _, store, where, keys = keyed
    stored = store.query("api_keys")[["key_hash", "prefix", "role"]].to_records(index=False).tolist()
    assert len(stored) == 3
    text = repr(stored)
    for key in keys.values():
        assert key.startswith("twin_") and len(key) > 40
        assert key not in text
    listing = twin_keys(where, "list")
    assert listing.returncode == 0 and "inspector" in listing.stdout
    assert all(key not in listing.stdout for key in keys.values())


def test_roles_open_staff_collections(keyed) -> None:
    url, _, _, keys = keyed
    anonymous = httpx.get(f"{url}/collections/fire_facilities")
    assert anonymous.status_code == 401
    bearer = httpx.get(f"{url}/collections/fire_facilities", headers={"Authorization": f"Bearer {keys['inspector']}"})
    assert bearer.status_code == 200 and bearer.json()["id"] == "fire_facilities"
    header = httpx.get(f"{url}/collections/fire_facilities", headers={"X-API-Key": keys["inspector"]})
    assert header.status_code == 200
    listed = {c["id"] for c in httpx.get(f"{url}/collections", headers={"X-API-Key": keys["inspector"]})
              .json()["collections"]}
    assert {"fire_facilities", "levels", "sensors", "inspections"} <= listed
    assert "api_keys" not in listed


def test_a_device_key_cannot_read_fire_detail(keyed) -> None:
    url, _, _, keys = keyed
    response = httpx.get(f"{url}/collections/levels", headers={"X-API-Key": keys["device"]})
    assert response.status_code == 403
    assert "device" in response.json()["description"]


@pytest.mark.parametrize("header", [
    {"Authorization": "Bearer twin_not-a-real-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
    {"X-API-Key": "nonsense"},
])
def test_bad_credentials_are_401(sample_server: str, header: dict[str, str]) -> None:
    response = httpx.get(f"{sample_server}/collections", headers=header)
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized"


def test_revoked_key_stops_working(keyed) -> None:
    url, _, where, keys = keyed
    headers = {"X-API-Key": keys["operator"]}
    assert httpx.get(f"{url}/collections/sensors", headers=headers).status_code == 200
    prefix = keys["operator"][:11]
    revoked = twin_keys(where, "revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    response = httpx.get(f"{url}/collections/sensors", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["description"]


def test_unknown_role_is_a_clear_error(sample_copy: Path) -> None:
    result = twin_keys(sample_copy, "create", "--role", "mayor")
    assert result.returncode == 2 and "mayor" in result.stderr and "inspector" in result.stderr
