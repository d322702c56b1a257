"""Index rules over a long history: indexlab (Rust review loop) vs plain pandas.

One rule set (HSTECH with fast entry off, so that a plain screen-and-rank loop reproduces it)
over ``synthetic(N securities)`` with quarterly reviews. The pandas baseline computes the same
screens (monthly velocity by groupby, listing history, suspension, buffer ranking) and the
bench asserts that both select the same names at every review. Target: under 50 ms
for 3000 securities x 10 years. The note also gives the extrapolated time of 1,000 variants
from ``rules.grid`` (arrays prepared once and shared, as a search would).

Default size: 1000 securities x 5 years; ``INDEXLAB_BENCH_FULL=1``: 3000 x 10.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import indexlab
import numpy as np
import pandas as pd
import pytest
from indexlab import rules
from indexlab.rules.engine import PreparedData, review_calendar

FULL = os.environ.get("INDEXLAB_BENCH_FULL") == "1"
N_SEC, YEARS = (3000, 10) if FULL else (1000, 5)
RULES = rules.HSTECH.replace(**{"selection.fast_entry_top": 0})


@lru_cache(maxsize=1)
def dataset() -> indexlab.Dataset:
    return indexlab.datasets.synthetic(n_securities=N_SEC, years=YEARS, seed=42)


def pandas_rules(ds: indexlab.Dataset, r: rules.IndexRules) -> dict[pd.Timestamp, set[str]]:
    """The same screens and buffer selection written with plain pandas, review by review."""
    el, sel, u = r.eligibility, r.selection, r.universe
    sec = ds.securities
    ids = sec["id"].to_numpy()
    dates = pd.DatetimeIndex(ds.dates.astype("datetime64[ns]"))
    close = pd.DataFrame(ds.field("close"), index=dates, columns=ids)
    mcap = pd.DataFrame(ds.market_cap(free_float=False), index=dates, columns=ids).ffill()
    vol = pd.DataFrame(ds.field("turnover_shares"), index=dates, columns=ids)
    ffs = pd.DataFrame(
        ds.field("shares_outstanding") * ds.field("free_float_factor"), index=dates, columns=ids
    )
    month = dates.to_period("M")
    days_in_month = pd.Series(1, index=dates).groupby(month).size()
    last_ffs = ffs.groupby(month).last()
    med = vol.groupby(month).median().fillna(0.0)
    velocity = (med.mul(days_in_month, axis=0) / last_ffs).where(last_ffs > 0)
    passed = velocity >= el.velocity_threshold
    available = velocity.notna()

    tech = sec["ai_layer"].ne("none") | sec["industry"].isin(
        ["Information Technology", "Consumer Discretionary"]
    )
    universe = sec["market"].isin(u.markets) & sec["industry"].isin(u.industries) & tech
    universe = pd.Series(universe.to_numpy(), index=ids)
    first_trade = close.notna().idxmax().where(close.notna().any())
    delisted = pd.to_datetime(sec["delisting_date"]).set_axis(ids)
    listing = pd.to_datetime(sec["listing_date"]).set_axis(ids)
    last_trade_pos = (
        pd.DataFrame(np.arange(len(dates))[:, None] * np.ones(len(ids)), index=dates, columns=ids)
        .where(close.notna())
        .ffill()
    )

    cal = review_calendar(ds.dates, r)
    out: dict[pd.Timestamp, set[str]] = {}
    members: set[str] = set()
    upper, lower = round(sel.n * (1 + sel.buffer)), round(sel.n * (1 - sel.buffer))
    for row in cal.itertuples():
        cut = row.cutoff
        members = {m for m in members if not (delisted[m] <= cut)}
        inc = pd.Series(ids, index=ids).isin(members)
        listed = (first_trade <= cut) & ~(delisted <= cut)
        since = row.cutoff_idx - last_trade_pos.loc[cut].fillna(-(10**12))
        seasoned = inc | ((cut - listing).dt.days >= el.min_listing_days)
        window = velocity.loc[: cut.to_period("M")].tail(el.velocity_window)
        pw, aw = passed.loc[window.index], available.loc[window.index]
        n_pass, n_avail = pw.sum(), aw.sum()
        req = np.where(inc, el.incumbent_required, el.velocity_required)
        fails_ok = (n_avail - n_pass) <= (el.velocity_window - req)
        recent_n = np.where(inc, el.incumbent_recent, el.velocity_recent)
        recent_ok = pd.Series(True, index=ids)
        # The latest `recent` available months must all pass (vectorised per recent count).
        for k in set(recent_n.tolist()):
            if k == 0:
                continue
            ranks_back = aw[::-1].cumsum()
            in_recent = aw[::-1] & (ranks_back <= k)
            ok_k = ~(in_recent & ~pw[::-1]).any()
            recent_ok = recent_ok.where(recent_n != k, ok_k)
        vel_ok = (n_avail > 0) & fails_ok & recent_ok
        eligible = (
            universe & listed & (since <= el.max_suspension_days) & seasoned & vel_ok
        ) & mcap.loc[cut].notna()
        key = mcap.loc[cut][eligible].sort_values(ascending=False, kind="stable")
        ranked = pd.DataFrame({"key": key, "pos": np.arange(1, len(key) + 1)})
        ranked["order"] = (
            pd.Series(ids, index=ids).reindex(ranked.index).map({i: k for k, i in enumerate(ids)})
        )
        ranked = ranked.sort_values(["key", "order"], ascending=[False, True])
        ranked["pos"] = np.arange(1, len(ranked) + 1)
        is_inc = ranked.index.isin(list(members))
        band = np.where(is_inc, ranked["pos"] <= upper, ranked["pos"] <= lower)
        order = list(ranked.index[band]) + list(ranked.index[~band])
        chosen = order[: sel.n]
        impl = dates[row.impl_idx] if row.impl_idx < len(dates) else cut
        chosen = [c for c in chosen if not (delisted[c] <= impl)]
        members = set(chosen)
        out[cut] = members
    return out


def indexlab_sets(hist: rules.IndexHistory) -> dict[pd.Timestamp, set[str]]:
    r = hist.reviews[hist.reviews["event"] == "review"]
    return {k: set(g["id"]) for k, g in r.groupby("review_date")}


@pytest.mark.parametrize("role", ["indexlab", "baseline"])
def bench_rules_one_ruleset(benchmark, role: str) -> None:
    ds = dataset()
    benchmark.group = f"rules HSTECH {N_SEC} sec x {YEARS}y"
    if role == "indexlab":
        # Cold: arrays (market caps, velocity, masks) prepared inside the timed call.
        hist = benchmark(lambda: indexlab.build_index(PreparedData(ds), RULES))
        prep = PreparedData(ds)
        indexlab.build_index(prep, RULES)
        variants = list(rules.grid(RULES, cap=[0.06, 0.08, 0.1, 0.12], n=[20, 25, 30, 35, 40]))
        t0 = time.perf_counter()
        for v in variants:
            indexlab.build_index(prep, v)
        per = (time.perf_counter() - t0) / len(variants)
        note = (
            f"warm (prepared arrays) {per * 1e3:.1f} ms/rule set; 1000 variants ~ "
            f"{per * 1000:.1f} s"
        )
        benchmark.extra_info.update(role=role, baseline="pandas", note=note)
        got = indexlab_sets(hist)
        assert len(got) >= 4 * YEARS - 2
    else:
        benchmark.extra_info.update(role=role, baseline="pandas")
        expected = benchmark.pedantic(lambda: pandas_rules(ds, RULES), rounds=1, iterations=1)
        got = indexlab_sets(indexlab.build_index(ds, RULES))
        assert set(got) == set(expected)
        for cut in expected:
            assert got[cut] == expected[cut], cut
