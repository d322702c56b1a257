"""Sample markets: a real-price Hong Kong tech sample and a seeded synthetic generator.

* :func:`hk_tech` loads the bundled real-price sample (offline, shipped in the wheel). Its
  provenance, cleaning and caveats are in ``hk_tech/PROVENANCE.md`` beside this file.
* :func:`synthetic` generates a point-in-time HK + A-share market of any size.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from indexlab.data import Dataset, load
from indexlab.datasets.synthetic import synthetic, synthetic_arrays

__all__ = ["HK_TECH_PATH", "hk_tech", "synthetic", "synthetic_arrays"]

HK_TECH_PATH = Path(__file__).with_name("hk_tech")


@lru_cache(maxsize=1)
def hk_tech() -> Dataset:
    """The bundled real-price Hong Kong tech + AI-chain sample.

    Hang Seng TECH and HSI members (yfinance adjusted daily prices), six A-share AI-chain names,
    HSI and HSTECH index levels, CNY/HKD rates and a securities master with the project's own
    AI-chain classification (``ai_layer``, ``ai_score``, ``ai_rationale``; override them freely).
    Market caps are approximate: one dated share count per name times the daily close. See
    ``HK_TECH_PATH / "PROVENANCE.md"`` for every source and caveat.

    The dataset is immutable, so one cached instance is shared.

    Examples
    --------
    >>> import indexlab
    >>> ds = indexlab.datasets.hk_tech()
    >>> "0700.HK" in set(ds.ids)
    True
    """
    return load(HK_TECH_PATH)
