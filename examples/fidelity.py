"""How faithfully the HSTECH and HSI presets rebuild the published indices on the bundled sample.

Run from a source checkout (or anywhere indexlab is installed)::

    python3 examples/fidelity.py

Prints, for HSTECH and HSI, the published constituent changes the rebuild reproduces per year
(``IndexHistory.compare`` against ``indexlab.datasets.published_changes``; reviews whose
cut-off falls after the sample's complete universe are counted apart as ``partial``), then the
HSTECH weights around the two reviews CICC published estimates for
(``indexlab.rules.compare_weights``), then the annualised tracking error of the rebuilt HSTECH
price level (divisor method) against the published level from 2021 to the end of the complete
universe, on all days and on days when at
least 95% of the index's value had a recorded close (``IndexLevels.tracking_error``), per
calendar year, and the rebuilt 2025 price return against the published +23.45%.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import indexlab
import numpy as np
import pandas as pd
from indexlab.market import Market

PUBLISHED_2025 = 0.2345
STARTS = {"HSTECH": "2020-06-01", "HSI": "2021-01-01"}


def history(ds: indexlab.Dataset, name: str) -> indexlab.IndexHistory:
    """The preset's history through the published record, partial reviews included."""
    rules = getattr(indexlab.rules, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", indexlab.DataWarning)
        return indexlab.build_index(
            ds, rules, start=STARTS[name], end="2026-07-31", partial_universe=True, warn=False
        )


def comparison_table(ds: indexlab.Dataset, name: str) -> pd.DataFrame:
    """Matched / missed / extra published changes per year."""
    # The 31 Dec 2020 review took effect a week later than the calendar HSIL has kept since
    # (docs/hang-seng-rules.md 1.6): match each published review to the nearest within 7 days.
    cmp = history(ds, name).compare(indexlab.datasets.published_changes(name), tolerance_days=7)
    table = cmp.summary(by="year")
    total = cmp.summary(by="all").rename(index={"all": "all"})
    return pd.concat([table, total])


def weights(ds: indexlab.Dataset) -> None:
    """The rebuilt HSTECH's weights around the reviews CICC published estimates for."""
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start=STARTS["HSTECH"])
    t = indexlab.rules.compare_weights(hist, ds, indexlab.datasets.published_weights("HSTECH"))
    print("HSTECH weights around reviews: rebuilt vs CICC's published estimates")
    for day, g in t.groupby("effective"):
        post = (g["post_rebuilt"] - g["post_published"]).abs()
        pre = (g["pre_rebuilt"] - g["pre_published"]).abs()
        print(
            f"  {day.date()}: {len(g)} names; mean |difference| after the review "
            f"{post.mean():.2%}, before it {pre.mean():.2%}"
        )
        worst = g.assign(gap=post).nlargest(3, "gap")
        for _, r in worst.iterrows():
            print(
                f"    {r['id']} {r['name']}: rebuilt {r['post_rebuilt']:.2%}, "
                f"published {r['post_published']:.2%}"
            )


def tracking(ds: indexlab.Dataset) -> None:
    hist = indexlab.build_index(ds, indexlab.rules.HSTECH, start=STARTS["HSTECH"])
    published = ds.benchmarks["HSTECH"]
    lv = indexlab.index_levels(ds, hist, "price", start="2021-01-01")
    print(
        f"rebuilt HSTECH (price, divisor method) vs published, {lv.levels.index[0].date()} .. "
        f"{lv.levels.index[-1].date()}"
    )
    print(
        f"  annualised tracking error: {lv.tracking_error(published):.2%} on observed days, "
        f"{lv.tracking_error(published, min_observed=0.0):.2%} on all days"
    )
    for year in sorted(set(lv.levels.index.year)):
        # Each year's returns start from the previous year's last close.
        before = lv.levels.loc[: f"{year - 1}-12-31"].index
        span = slice(before[-1] if len(before) else None, f"{year}-12-31")
        part = replace(lv, levels=lv.levels.loc[span], observed=lv.observed.loc[span])
        print(f"  {year}: {part.tracking_error(published):.2%}")

    full = indexlab.index_levels(ds, hist, "price", end="2025-12-31", carry_last_price=True)
    lv_all = full.levels
    ret = lv_all.loc[:"2025-12-31"].iloc[-1] / lv_all.loc[:"2024-12-31"].iloc[-1] - 1
    pub = published.loc[:"2025-12-31"].iloc[-1] / published.loc[:"2024-12-31"].iloc[-1] - 1
    upto = ds.universe_complete_until
    ours_part = lv_all.loc[: str(upto)].iloc[-1] / lv_all.loc[:"2024-12-31"].iloc[-1] - 1
    pub_part = published.loc[: str(upto)].iloc[-1] / published.loc[:"2024-12-31"].iloc[-1] - 1
    print(
        f"2025 calendar price return: rebuilt {ret:+.2%}, published {PUBLISHED_2025:+.2%} "
        f"(dataset's HSTECH levels: {pub:+.2%}); to {upto}: rebuilt {ours_part:+.2%}, "
        f"published {pub_part:+.2%}"
    )
    market = Market.of(ds)
    dates, _, w = hist.weights_matrix()
    t_end = ds.date_index("2025-12-31")
    rows = np.flatnonzero(dates <= np.datetime64("2025-12-31"))
    days = np.array([ds.date_index(d) for d in dates[rows]], dtype=np.int64)
    carried = market.carried_after_end(w[rows], days, t_end)
    late = sorted({f"{c['id']} (last {c['last_observation']})" for c in carried})
    print(f"  held at their last price until 2025-12-31: {', '.join(late) or 'none'}")


def main() -> None:
    ds = indexlab.datasets.hk_tech()
    pd.set_option("display.width", 120)
    for name in ("HSTECH", "HSI"):
        print(f"{name}: published changes reproduced per year")
        print(comparison_table(ds, name).to_string(float_format=lambda x: f"{x:.2f}"))
        print()
    weights(ds)
    print()
    tracking(ds)


if __name__ == "__main__":
    main()
