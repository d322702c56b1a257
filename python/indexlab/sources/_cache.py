"""The local cache: one Parquet file per source and id, replaced atomically.

A file holds the id's daily rows (``date``, the fetched columns, ``retrieved``: the day each
row was fetched) and, in its schema metadata, the source, the vendor's symbol, the currency and
the library call behind each field. A write goes to a temporary file in the same folder and is
moved into place with ``os.replace``, so a reader sees the old file or the new one, never half
of one, and a failed fetch leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from indexlab.errors import DataError
from indexlab.sources._connector import COLUMNS

_META_KEY = b"indexlab:source"


def default_cache_dir() -> Path:
    """``$INDEXLAB_CACHE``, else ``$XDG_CACHE_HOME/indexlab``, else ``~/.cache/indexlab``.

    Examples
    --------
    >>> from indexlab.sources import default_cache_dir
    >>> default_cache_dir().is_absolute()
    True
    """
    if os.environ.get("INDEXLAB_CACHE"):
        return Path(os.environ["INDEXLAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "indexlab"


@dataclass(frozen=True)
class Cached:
    """One cached series: its rows and where they came from."""

    id: str
    source: str
    rows: pd.DataFrame
    symbol: str = ""
    currency: str | None = None
    #: Per field, the library call it came from.
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def last(self) -> pd.Timestamp | None:
        """The last cached day (None when the series is empty)."""
        return None if self.rows.empty else pd.Timestamp(self.rows["date"].iloc[-1])


class Cache:
    """A folder of cached series: ``<root>/<source>/<id>.parquet``."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, source: str, id: str) -> Path:
        """Where one source's series for ``id`` lives (the id percent-encoded: ``%5EHSI``)."""
        return self.root / source / f"{quote(id, safe='.-_')}.parquet"

    def read(self, source: str, id: str) -> Cached | None:
        """The cached series, or None when nothing is cached for it."""
        path = self.path(source, id)
        if not path.exists():
            return None
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise DataError(
                f"cache file {path} cannot be read ({err}); delete it and update again"
            ) from err
        raw = (table.schema.metadata or {}).get(_META_KEY)
        meta: dict[str, Any] = json.loads(raw) if raw else {}
        rows = table.to_pandas()
        missing = [c for c in ("date", *COLUMNS, "retrieved") if c not in rows.columns]
        if missing:
            raise DataError(f"cache file {path} lacks columns {missing}; delete it and update")
        return Cached(
            id=id,
            source=source,
            rows=rows,
            symbol=str(meta.get("symbol", "")),
            currency=meta.get("currency"),
            fields=dict(meta.get("fields", {})),
        )

    def write(self, cached: Cached) -> Path:
        """Replace the file of ``cached`` atomically (temporary file + ``os.replace``)."""
        path = self.path(cached.source, cached.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "id": cached.id,
            "source": cached.source,
            "symbol": cached.symbol,
            "currency": cached.currency,
            "fields": cached.fields,
        }
        table = pa.Table.from_pandas(cached.rows, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
        )
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def ids(self, source: str) -> list[str]:
        """Every id cached for ``source``."""
        from urllib.parse import unquote

        folder = self.root / source
        if not folder.is_dir():
            return []
        return sorted(unquote(p.name[: -len(".parquet")]) for p in folder.glob("*.parquet"))
