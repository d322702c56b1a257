"""Sample markets: a real-price Hong Kong tech sample and a seeded synthetic generator.

* :func:`hk_tech` loads the bundled real-price sample (offline, shipped in the wheel). Its
  provenance, cleaning and caveats are in ``hk_tech/PROVENANCE.md`` beside this file.
* :func:`synthetic` generates a point-in-time HK + A-share market of any size.
* :func:`published_changes` returns the published HSTECH and HSI constituent changes
  (docs/hang-seng-rules.md 1.6 and 2.2b), one row per change, with their sources.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import pandas as pd

from indexlab.data import Dataset, load
from indexlab.datasets.synthetic import synthetic, synthetic_arrays
from indexlab.errors import DataError

__all__ = [
    "HK_TECH_PATH",
    "PUBLISHED_PATH",
    "hk_tech",
    "published_changes",
    "published_weights",
    "synthetic",
    "synthetic_arrays",
]

HK_TECH_PATH = Path(__file__).with_name("hk_tech")
PUBLISHED_PATH = Path(__file__).with_name("published")
_PUBLISHED_FILES = {"HSTECH": "hstech_changes.csv", "HSI": "hsi_changes.csv"}
_PUBLISHED_DATES = ("review_cutoff", "announced", "effective")


@lru_cache(maxsize=1)
def _hk_tech_shared() -> Dataset:
    """The one cached load of the sample: for read-only internal use (the API), never handed
    to a caller (:func:`hk_tech` returns copies of it)."""
    return load(HK_TECH_PATH)


def hk_tech() -> Dataset:
    """The bundled real-price Hong Kong tech + AI-chain sample.

    Hang Seng TECH and HSI members (yfinance adjusted daily prices), six A-share AI-chain names,
    HSI and HSTECH index levels, CNY/HKD rates and a securities master with the project's own
    AI-chain classification (``ai_layer``, ``ai_score``, ``ai_rationale``; override them freely).
    Market caps are approximate: one dated share count per name times the daily close. See
    ``HK_TECH_PATH / "PROVENANCE.md"`` for every source and caveat.

    The files are read once per process; every call returns its own copy: the frames
    (``securities``, ``fx``, ``benchmarks``, ``classification``), the dates and the field
    mapping are copied, so an edit to one caller's copy never reaches another caller or the
    API. The panel arrays are read-only and shared (a copy costs well under a millisecond).
    Keep one copy for repeated work: the market layer and the rules engine's prepared arrays
    are cached per dataset object.

    Examples
    --------
    >>> import indexlab
    >>> ds = indexlab.datasets.hk_tech()
    >>> "0700.HK" in set(ds.ids)
    True
    >>> ds.securities.loc[0, "name"] = "edited"  # changes this copy only
    >>> indexlab.datasets.hk_tech().securities.loc[0, "name"] != "edited"
    True
    """
    shared = _hk_tech_shared()
    return dataclasses.replace(
        shared,
        securities=shared.securities.copy(deep=True),
        dates=shared.dates.copy(),
        fields=dict(shared.fields),
        fx=shared.fx.copy(deep=True),
        benchmarks=shared.benchmarks.copy(deep=True),
        classification=None
        if shared.classification is None
        else shared.classification.copy(deep=True),
        fundamentals=None if shared.fundamentals is None else shared.fundamentals.copy(deep=True),
    )


_WEIGHT_FILES = {"HSTECH": "hstech_weights.csv"}


def published_weights(index: str) -> pd.DataFrame:
    """Published (estimated) constituent weights around reviews of a Hang Seng index.

    Transcribed from docs/hang-seng-rules.md 4.1 for ``"HSTECH"``: CICC's estimates of the
    weights just before (``pre``) and just after (``post``) the rebalances effective on
    2025-06-09 and 2025-12-08, for the names it listed (not every constituent). Columns:
    ``index``, ``effective`` (date), ``id``, ``name``, ``pre`` and ``post`` (fractions; ``pre``
    NaN for a new constituent, 0 for a name not held before), ``note``, ``source``. These are
    broker estimates, not official HSIL weights. Each call returns a fresh copy.

    Examples
    --------
    >>> import indexlab, pandas as pd
    >>> w = indexlab.datasets.published_weights("HSTECH")
    >>> june = w[w["effective"] == pd.Timestamp("2025-06-09")].set_index("id")
    >>> float(june.loc["1211.HK", "post"])          # BYD entered at the 8% cap
    0.08
    """
    key = str(index).upper()
    if key not in _WEIGHT_FILES:
        raise DataError(f"no published weights for index {index!r}; known: {sorted(_WEIGHT_FILES)}")
    frame = pd.read_csv(PUBLISHED_PATH / _WEIGHT_FILES[key], dtype={"id": str, "note": str})
    frame["effective"] = pd.to_datetime(frame["effective"], format="%Y-%m-%d")
    frame["note"] = frame["note"].fillna("")
    return frame


@lru_cache(maxsize=len(_PUBLISHED_FILES))
def _read_published(index: str) -> pd.DataFrame:
    frame = pd.read_csv(PUBLISHED_PATH / _PUBLISHED_FILES[index], dtype=str, keep_default_na=False)
    for column in _PUBLISHED_DATES:
        frame[column] = pd.to_datetime(frame[column].mask(frame[column] == ""), format="%Y-%m-%d")
    frame["id"] = frame["id"].mask(frame["id"] == "")
    return frame


def published_changes(index: str) -> pd.DataFrame:
    """The published constituent changes of a Hang Seng index, one row per change.

    Transcribed from docs/hang-seng-rules.md: section 1.6 for ``"HSTECH"`` (the 2023-09 review,
    2024-06, every 2025 review, 2026-03 and 2026-06) and section 2.2b for ``"HSI"`` (2024-2026).
    Columns: ``index``, ``review_cutoff``, ``announced`` and ``effective`` (dates; NaT where the
    source gives none), ``id`` (e.g. ``"1797.HK"``), ``name``, ``change``, ``note`` and
    ``source`` (the citation in the doc). ``change`` is ``"add"`` or ``"delete"``, ``"none"``
    for a review that changed nothing (``id`` missing), or ``"delete_unknown"`` for a review
    whose deletions were not found (``id`` missing): :meth:`IndexHistory.compare
    <indexlab.rules.IndexHistory.compare>` then counts no deletion of that review as missed or
    extra. HSI's Hang Seng Bank delisting has no
    known effective date (NaT). Each call returns a fresh copy.

    Parameters
    ----------
    index
        ``"HSTECH"`` or ``"HSI"`` (case-insensitive).

    Raises
    ------
    DataError
        For any other index name.

    Examples
    --------
    >>> import indexlab
    >>> ch = indexlab.datasets.published_changes("HSTECH")
    >>> ch.loc[ch["effective"] == "2025-06-09", ["id", "change"]].values.tolist()
    [['1211.HK', 'add'], ['0772.HK', 'delete']]
    """
    key = index.upper() if isinstance(index, str) else index
    if key not in _PUBLISHED_FILES:
        raise DataError(
            f"no published changes for index {index!r}; known: {sorted(_PUBLISHED_FILES)}"
        )
    return _read_published(key).copy(deep=True)
