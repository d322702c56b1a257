"""Loading the bundled sample: ``indexlab.load`` (validated, point in time) vs plain pandas.

Target: ``hk_tech()`` loads in under 1 s. The baseline reads the same Parquet files and pivots
the panel to wide ``(T, N)`` frames, with no validation; both must give the same closes.
"""

from __future__ import annotations

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab.datasets import HK_TECH_PATH


def pandas_load() -> dict[str, pd.DataFrame]:
    panel = pd.read_parquet(HK_TECH_PATH / "panel.parquet")
    wide = {
        f: panel.pivot(index="date", columns="id", values=f)
        for f in ("close", "total_return", "shares_outstanding")
    }
    wide["securities"] = pd.read_parquet(HK_TECH_PATH / "securities.parquet")
    wide["classification"] = pd.read_parquet(HK_TECH_PATH / "classification.parquet")
    return wide


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_load_hk_tech(benchmark, role: str) -> None:
    fn = (lambda: indexlab.load(HK_TECH_PATH)) if role == "indexlab" else pandas_load
    benchmark.group = "load hk_tech (512 names x 1,935 days)"
    benchmark.extra_info.update(role=role, baseline="pandas read + pivot")
    out = benchmark.pedantic(fn, rounds=3, iterations=1)
    ref = pandas_load()["close"]
    if role == "indexlab":
        got = out.frame("close")
        np.testing.assert_array_equal(
            got.to_numpy(), ref.reindex(index=got.index, columns=got.columns).to_numpy()
        )
