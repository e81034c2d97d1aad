"""API keys: created once (the key is shown only then), stored as SHA-256 hashes with a role, revocable.

Keys are 256-bit random tokens, so a plain SHA-256 is the right hash: there is nothing to brute-force that a slow
password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from layers import Role
from twin.errors import InvalidQuery, NotFound, Unauthorized
from twin.store.base import FeatureQuery, Filter, Op, Store

KEY_PREFIX = "twin_"
LAYER = "api_keys"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, and its role."""

    role: Role
    key_id: int | None = None
    name: str = "anonymous"


ANONYMOUS = Principal(Role.PUBLIC)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_role(value: str) -> Role:
    """A role by name, or ``InvalidQuery`` listing the valid ones."""
    try:
        return Role(value)
    except ValueError:
        raise InvalidQuery(f"unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


def create_key(store: Store, role: str | Role, name: str | None = None) -> tuple[int, str]:
    """Make a key for ``role``; returns ``(id, key)``. The key itself is not stored and cannot be shown again."""
    chosen = parse_role(role) if isinstance(role, str) else role
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = pd.DataFrame([{
        "name": name or f"{chosen.value} key", "role": chosen.value, "key_hash": hash_key(key),
        "prefix": key[: len(KEY_PREFIX) + 6], "created_at": pd.Timestamp(datetime.now(UTC)), "revoked_at": None,
    }])
    [key_id] = store.insert(LAYER, row)
    return key_id, key


def authenticate(store: Store, key: str) -> Principal:
    """The principal holding ``key``; ``Unauthorized`` for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise Unauthorized("the API key is not valid")
    found = store.query(LAYER, FeatureQuery(filters=(Filter("key_hash", Op.EQ, hash_key(key)),), limit=1))
    if found.empty:
        raise Unauthorized("the API key is not valid")
    row = found.iloc[0]
    if not pd.isna(row["revoked_at"]):
        raise Unauthorized("the API key has been revoked")
    return Principal(Role(row["role"]), int(found.index[0]), str(row["name"]))


def revoke_key(store: Store, key_id_or_prefix: str) -> int:
    """Revoke a key by id or by the prefix ``twin keys list`` shows; returns its id."""
    if key_id_or_prefix.isdigit():
        target = Filter("id", Op.EQ, int(key_id_or_prefix))
    else:
        target = Filter("prefix", Op.EQ, key_id_or_prefix)
    found = store.query(LAYER, FeatureQuery(filters=(target,)))
    if found.empty:
        raise NotFound(f"no API key {key_id_or_prefix!r}")
    if len(found) > 1:
        raise InvalidQuery(f"prefix {key_id_or_prefix!r} matches {len(found)} keys; revoke by id")
    key_id = int(found.index[0])
    store.update(LAYER, key_id, {"revoked_at": pd.Timestamp(datetime.now(UTC))})
    return key_id


def list_keys(store: Store) -> pd.DataFrame:
    """Every key (without hashes): id, name, role, prefix, created and revoked times."""
    return store.query(LAYER).drop(columns=["key_hash"])
