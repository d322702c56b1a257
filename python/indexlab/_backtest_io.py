"""One-file Parquet persistence of a :class:`~indexlab.backtest.BacktestResult`.

A single long table holds every frame, one row per cell::

    table        date         schedule   id        kind       value
    levels       2025-01-02   HSTECH     -         -          1000.0
    weights      2025-01-02   HSTECH     0700.HK   target     0.08
    metrics      -            HSTECH     sharpe    -          0.42
    metrics      2022-10-28   HSTECH     drawdown_trough   -  NaN

The schema metadata carries ``indexlab:kind`` (``backtest``; the report command dispatches on it)
and ``indexlab:backtest``, a JSON record of column orders, index names and metric dtypes, so the
frames come back equal to what was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from indexlab.errors import DataError

KIND_KEY = b"indexlab:kind"
META_KEY = b"indexlab:backtest"
FORMAT_VERSION = 1
WIDE = ("levels", "turnover", "ai_exposure")
WEIGHT_COLUMNS = ["schedule", "date", "id", "kind", "weight"]
SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("date", pa.timestamp("ns")),
        ("schedule", pa.string()),
        ("id", pa.string()),
        ("kind", pa.string()),
        ("value", pa.float64()),
    ]
)


def _wide_rows(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    n, k = frame.shape
    return pd.DataFrame(
        {
            "table": name,
            "date": np.repeat(pd.DatetimeIndex(frame.index).to_numpy("datetime64[ns]"), k),
            "schedule": np.tile(np.asarray(frame.columns, dtype=object), n),
            "id": None,
            "kind": None,
            "value": frame.to_numpy(dtype=np.float64).reshape(-1),
        }
    )


def _metric_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    dtypes: dict[str, str] = {}
    parts = []
    for col in frame.columns:
        series = frame[col]
        is_date = pd.api.types.is_datetime64_any_dtype(series)
        dtypes[str(col)] = "datetime" if is_date else str(series.dtype)
        parts.append(
            pd.DataFrame(
                {
                    "table": "metrics",
                    "date": pd.to_datetime(series.to_numpy()) if is_date else pd.NaT,
                    "schedule": [str(i) for i in frame.index],
                    "id": str(col),
                    "kind": None,
                    "value": np.nan if is_date else series.to_numpy(dtype=np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True), dtypes


def open_new(path: Any, overwrite: bool, what: str = "file") -> Any:
    """Open ``path`` for binary writing; without ``overwrite`` an existing file is refused
    (atomically: mode ``"x"``) with a :class:`DataError` naming it. Missing folders are
    created."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return out.open("wb" if overwrite else "xb")
    except FileExistsError:
        raise DataError(
            f"{what} {out} exists: expected a new file name; pass overwrite=True to replace it"
        ) from None
    except OSError as err:
        raise DataError(f"cannot write {what} {out}: {err.strerror or err}") from None


def parquet_error(path: Any, err: BaseException, what: str) -> DataError:
    """A :class:`DataError` naming the file for a reader's parser or I/O failure."""
    if isinstance(err, FileNotFoundError):
        return DataError(f"{path}: no such file (expected a {what} Parquet file)")
    if isinstance(err, OSError) and not isinstance(err, pa.ArrowException):
        return DataError(f"cannot read {path}: {err.strerror or err}")
    detail = str(err).strip().splitlines()
    found = detail[0] if detail else type(err).__name__
    return DataError(f"{path}: expected a {what} Parquet file; the reader says: {found}")


#: What a reader may raise on a bad or foreign file (Arrow, JSON, pandas, I/O).
READ_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError)


def write(result: Any, path: Any, overwrite: bool = False) -> None:
    """Write ``result`` to ``path``; an existing file is refused unless ``overwrite``."""
    w = result.weights
    if list(w.columns) != WEIGHT_COLUMNS:
        raise DataError(f"weights must have columns {WEIGHT_COLUMNS}, found {list(w.columns)}")
    weights = pd.DataFrame(
        {
            "table": "weights",
            "date": pd.to_datetime(w["date"]),
            "schedule": w["schedule"].astype(str),
            "id": w["id"].astype(str),
            "kind": w["kind"].astype(str),
            "value": w["weight"].to_numpy(dtype=np.float64),
        }
    )
    metrics, dtypes = _metric_rows(result.metrics)
    parts = [_wide_rows(name, getattr(result, name)) for name in WIDE]
    long = pd.concat([*parts, weights, metrics], ignore_index=True)
    meta = {
        "version": FORMAT_VERSION,
        "columns": {name: [str(c) for c in getattr(result, name).columns] for name in WIDE},
        "index_names": {name: getattr(result, name).index.name for name in WIDE},
        "metrics": {"rows": [str(i) for i in result.metrics.index], "dtypes": dtypes},
    }
    table = pa.Table.from_pandas(long, schema=SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata(
        {KIND_KEY: b"backtest", META_KEY: json.dumps(meta).encode()}
    )
    write_table(table, path, overwrite, "backtest result")


def write_table(table: pa.Table, path: Any, overwrite: bool, what: str) -> None:
    """Write an Arrow table as Parquet through :func:`open_new`; a failed write leaves no
    partial file behind."""
    with open_new(path, overwrite, what) as f:
        try:
            pq.write_table(table, f)
        except BaseException:
            f.close()
            Path(path).unlink(missing_ok=True)
            raise


def kind(path: Any) -> str | None:
    """The ``indexlab:kind`` of a Parquet file (``None`` when it has none).

    Raises
    ------
    DataError
        When ``path`` is missing or not a Parquet file (naming the file).
    """
    try:
        meta = pq.read_schema(path).metadata or {}
        raw = meta.get(KIND_KEY)
        return raw.decode() if raw is not None else None
    except READ_ERRORS as err:
        raise parquet_error(path, err, "indexlab") from None


def read(path: Any) -> dict[str, pd.DataFrame]:
    """The frames of a file :func:`write` wrote; any other or damaged file is a
    :class:`DataError` naming it."""
    try:
        return _read(path)
    except DataError:
        raise
    except READ_ERRORS as err:
        raise parquet_error(path, err, "BacktestResult") from None


def _read(path: Any) -> dict[str, pd.DataFrame]:
    table = pq.read_table(path)
    meta_raw = (table.schema.metadata or {}).get(META_KEY)
    if meta_raw is None:
        found = kind(path)
        raise DataError(
            f"{path} is not a BacktestResult file: expected schema metadata 'indexlab:kind' = "
            f"'backtest', found {found!r}"
        )
    meta = json.loads(meta_raw)
    if meta.get("version") != FORMAT_VERSION:
        raise DataError(f"{path}: backtest file version {meta.get('version')}, expected 1")
    long = table.to_pandas()
    groups = {name: g for name, g in long.groupby("table", sort=False)}
    out: dict[str, pd.DataFrame] = {}
    for name in WIDE:
        g = groups.get(name, long.iloc[:0])
        cols = meta["columns"][name]
        wide = g.pivot(index="date", columns="schedule", values="value")
        wide = wide.reindex(columns=cols)
        wide.columns = pd.Index(cols)
        wide.index = pd.DatetimeIndex(wide.index, name=meta["index_names"][name])
        out[name] = wide
    g = groups.get("weights", long.iloc[:0])
    out["weights"] = pd.DataFrame(
        {
            "schedule": g["schedule"].to_numpy(dtype=object),
            "date": g["date"].to_numpy(),
            "id": g["id"].to_numpy(dtype=object),
            "kind": g["kind"].to_numpy(dtype=object),
            "weight": g["value"].to_numpy(dtype=np.float64),
        }
    )
    g = groups.get("metrics", long.iloc[:0])
    rows = meta["metrics"]["rows"]
    metrics = pd.DataFrame(index=pd.Index(rows))
    for col, dtype in meta["metrics"]["dtypes"].items():
        cell = g[g["id"] == col].set_index("schedule").reindex(rows)
        if dtype == "datetime":
            metrics[col] = pd.to_datetime(cell["date"].to_numpy())
        else:
            metrics[col] = cell["value"].to_numpy().astype(dtype)
    out["metrics"] = metrics
    return out
