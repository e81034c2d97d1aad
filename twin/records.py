"""Frames to JSON-ready records, column by column: dates and datetimes as RFC 3339 text, missing values as None."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def json_column(column: pd.Series) -> list[Any]:
    """One column as JSON-ready Python values."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
        stamps = column.dt.tz_convert("UTC") if isinstance(column.dtype, pd.DatetimeTZDtype) else column
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.slice(0, 23) + "Z"
        return [None if missing else value for value, missing in zip(text, column.isna(), strict=True)]
    values = column.astype(object).where(column.notna(), None).tolist()
    if values and any(isinstance(v, dt.date) for v in values):
        return [v.isoformat() if isinstance(v, dt.date) else v for v in values]
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def json_records(frame: pd.DataFrame, columns: Sequence[str] | None = None, *, key: str = "id") -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts with the index under ``key`` (geometry columns are left out)."""
    names = [c for c in (columns if columns is not None else frame.columns) if c != "geometry" and c in frame.columns]
    data = {name: json_column(frame[name]) for name in names}
    ids = [int(i) if isinstance(i, int | np.integer) else i for i in frame.index]
    return [{key: ids[i], **{name: data[name][i] for name in names}} for i in range(len(frame))]
