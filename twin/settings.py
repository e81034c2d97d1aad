"""Typed settings, read from ``TWIN_*`` environment variables when an object is built (never at import time)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository's sample folder when running from a checkout; a per-user cache folder otherwise.
_CHECKOUT_SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_gis"
SAMPLE_FILENAME = "beizhan.gpkg"


def default_sample_dir() -> Path:
    """Where the built sample twin lives: ``sample_gis/`` in a checkout, else ``~/.cache/beizhan-twin``."""
    if _CHECKOUT_SAMPLE_DIR.is_dir():
        return _CHECKOUT_SAMPLE_DIR
    return Path.home() / ".cache" / "beizhan-twin"


class StoreSettings(BaseSettings):
    """Which store the twin uses.

    ``TWIN_DATABASE_URL`` (``postgresql+psycopg://…``) selects PostGIS; otherwise the embedded GeoPackage at
    ``TWIN_GPKG_PATH`` (default: the sample twin, built on first use).
    """

    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="ignore")

    database_url: str | None = None
    gpkg_path: Path | None = None
    sample_dir: Path = Field(default_factory=default_sample_dir)

    @property
    def uses_sample(self) -> bool:
        """True when neither a database nor a GeoPackage was configured."""
        return self.database_url is None and self.gpkg_path is None

    @property
    def sample_path(self) -> Path:
        """Path of the sample twin's GeoPackage."""
        return self.sample_dir / SAMPLE_FILENAME


class ApiSettings(BaseSettings):
    """The HTTP service."""

    model_config = SettingsConfigDict(env_prefix="TWIN_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    title: str = "深圳北站数字孪生 · Shenzhen North Station digital twin"
    default_limit: int = 10
    max_limit: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    #: ``numberMatched`` is counted exactly on layers up to this many rows and estimated by sampling above.
    exact_count_limit: int = 100_000

    @field_validator("max_limit")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("max_limit must be at least 1")
        return value


class Settings(BaseSettings):
    """Every setting of a running twin."""

    model_config = SettingsConfigDict(extra="ignore")

    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
