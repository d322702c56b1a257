"""Data connectors: today's market from yfinance or akshare, cached locally, as a Dataset.

Optional extras: ``pip install 'indexlab[yfinance]'`` or ``'indexlab[akshare]'``.

* :func:`update` fetches, per id, only the days the local cache (one Parquet file per source
  and id, :class:`Cache`) lacks, with retries, backoff and a rate limit, and returns an
  :class:`UpdateReport` naming every id, what was added, and what failed and why; a failed
  fetch never touches cached data. Offline, it raises :class:`~indexlab.DataError` at once.
* :func:`load_cached` builds a validated :class:`~indexlab.Dataset` from the cache, merged
  with your own securities master (industry, AI layer and score, Connect eligibility).
* :func:`fetch` does both.

From the shell: ``indexlab data update --source yfinance --ids 0700.HK ^HSI --until today``.
docs/data-sources.md describes each source's calls and fields.
"""

from indexlab.sources._cache import Cache, Cached, default_cache_dir
from indexlab.sources._dataset import DEFAULTS, FX_SYMBOLS, fetch, load_cached, total_return
from indexlab.sources._update import SOURCES, IdStatus, UpdateReport, get_connector, update

__all__ = [
    "DEFAULTS",
    "FX_SYMBOLS",
    "SOURCES",
    "Cache",
    "Cached",
    "IdStatus",
    "UpdateReport",
    "default_cache_dir",
    "fetch",
    "get_connector",
    "load_cached",
    "total_return",
    "update",
]
