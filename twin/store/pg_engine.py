"""Connections of the PostGIS store: URL, engine, pool sizing, timeouts and error translation.

The pool is sized from the server's ``max_connections`` (a share of the connections left after the superuser
reserve, so several API workers fit), checks connections before use (``pool_pre_ping``) and fails fast: a connect
timeout of a few seconds and a statement timeout (30 s by default). When the database goes away, requests raise
:class:`twin.errors.Unavailable` (HTTP 503 with ``Retry-After``) instead of hanging; SQLAlchemy invalidates the
pool on the first disconnect it sees and pre-ping replaces stale connections, so the store recovers by itself when
the database returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from pydantic_settings import BaseSettings, SettingsConfigDict

from twin.errors import Unavailable

DRIVER_SCHEME = "postgresql+psycopg"
log = logging.getLogger(__name__)


class PostGISSettings(BaseSettings):
    """Pool and timeout settings, from ``TWIN_PG_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TWIN_PG_", extra="ignore")

    statement_timeout_s: float = 30.0
    #: Statement timeout of bulk writes (``replace_layer``, imports of 100,000 rows or more); 0 means none.
    bulk_statement_timeout_s: float = 3600.0
    connect_timeout_s: int = 3
    pool_size: int = 10
    max_overflow: int = 10
    pool_timeout_s: float = 10.0
    #: Share of the server's usable connections one store (one process) may hold.
    pool_share: float = 0.25
    retry_after_s: int = 5
    #: Parallel workers per query (``max_parallel_workers_per_gather``) for ordinary reads; aggregates get more.
    parallel_workers: int = 0
    aggregate_parallel_workers: int = 2


def driver_url(url: str) -> str:
    """``url`` with the psycopg 3 driver (``postgresql://`` and ``postgres://`` are accepted too)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return DRIVER_SCHEME + "://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def _connect_args(settings: PostGISSettings) -> dict[str, Any]:
    timeout_ms = max(0, round(settings.statement_timeout_s * 1000))
    return {
        "connect_timeout": settings.connect_timeout_s,
        "application_name": "twin",
        # JIT compilation and parallel workers cost more than they save on the short queries a twin serves
        "options": (f"-c statement_timeout={timeout_ms} -c timezone=UTC -c jit=off "
                    f"-c max_parallel_workers_per_gather={settings.parallel_workers}"),
        # notice a dead server on an idle connection within seconds, not hours
        "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    }


def server_connection_limit(url: str, settings: PostGISSettings) -> int:
    """Connections the server lets ordinary users open: ``max_connections`` minus the superuser reserve."""
    probe = sa.create_engine(driver_url(url), poolclass=sa.NullPool, connect_args=_connect_args(settings))
    try:
        with translated(settings), probe.connect() as conn:
            total, reserved = conn.execute(sa.text(
                "SELECT current_setting('max_connections')::int, "
                "current_setting('superuser_reserved_connections')::int")).one()
    finally:
        probe.dispose()
    return max(1, int(total) - int(reserved))


def create_engine(url: str, settings: PostGISSettings) -> sa.Engine:
    """An engine whose pool (size + overflow) stays below the server's connection limit."""
    budget = max(1, int(server_connection_limit(url, settings) * settings.pool_share))
    size = max(1, min(settings.pool_size, budget))
    overflow = max(0, min(settings.max_overflow, budget - size))
    return sa.create_engine(
        driver_url(url),
        pool_size=size,
        max_overflow=overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=_connect_args(settings),
    )


_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, psycopg.OperationalError,
                psycopg.InterfaceError)


@contextmanager
def translated(settings: PostGISSettings) -> Iterator[None]:
    """Turn connection trouble (database down, restarting, pool exhausted, statement timeout) into ``Unavailable``."""
    try:
        yield
    except sa.exc.DBAPIError as err:
        if isinstance(err, _UNAVAILABLE) or err.connection_invalidated:
            raise _unavailable(err.orig, settings) from None
        raise
    except _UNAVAILABLE as err:
        raise _unavailable(err, settings) from None


def _unavailable(err: BaseException | None, settings: PostGISSettings) -> Unavailable:
    if isinstance(err, psycopg.errors.QueryCanceled):
        return Unavailable(f"the database did not answer within {settings.statement_timeout_s:g} s",
                           retry_after_s=settings.retry_after_s)
    if isinstance(err, sa.exc.TimeoutError):
        return Unavailable("every database connection is busy", retry_after_s=settings.retry_after_s)
    log.warning("database unavailable: %s", err)
    return Unavailable("the database is unavailable; try again shortly", retry_after_s=settings.retry_after_s)
